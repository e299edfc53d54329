/* Allocation-failure sweep over valet.v1.Process in maitred's process: the
 * real server and the service (src/process-service/), driven by
 * rpc/stream.c clients in the same loop. For every N the N-th allocation
 * fails: a Start (a process writing to stdout and stderr, then exiting 3)
 * and a List must each end with a status, never hang; a Start that fails
 * before its Started leaves no process; nothing may leak; and right after,
 * without failures, the same calls give the whole output and the exit
 * code. Each call's deadline (5 s) is the hang detector. */
#include <signal.h>
#include <sys/wait.h>

#include "agent/agent.h"
#include "base/time-util.h"
#include "failmalloc-service.h"
#include "failmalloc.h"
#include "process-service/service.h"
#include "process.pb-c.h"
#include "rpc/server.h"
#include "rpc/stream.h"
#include "test.h"

#define GUARD_USEC (10 * USEC_PER_SEC)

static struct loop *L;
static char dir[64], spec[128];

struct call {
	struct fm_end end; /* first: fm_on_done */
	bool started, exited;
	int exit_code;
	size_t out, err;
	size_t listed;
};

static void on_message(struct rpc_stream_call *sc, const uint8_t *d, size_t len, void *ud)
{
	struct call *c = ud;

	failmalloc_hold(true);
	Valet__V1__ProcessEvent *ev = valet__v1__process_event__unpack(NULL, len, d);
	if (ev) {
		switch (ev->event_case) {
		case VALET__V1__PROCESS_EVENT__EVENT_STARTED: c->started = true; break;
		case VALET__V1__PROCESS_EVENT__EVENT_OUTPUT:
			if (ev->output->stream == VALET__V1__PROCESS_EVENT__STREAM__STDERR)
				c->err += ev->output->data.len;
			else
				c->out += ev->output->data.len;
			break;
		case VALET__V1__PROCESS_EVENT__EVENT_EXITED:
			c->exited = true;
			c->exit_code = ev->exited->exit_code;
			break;
		default: break;
		}
		valet__v1__process_event__free_unpacked(ev, NULL);
	}
	failmalloc_hold(false);
}

static void on_list(struct rpc_stream_call *sc, const uint8_t *d, size_t len, void *ud)
{
	struct call *c = ud;

	failmalloc_hold(true);
	Valet__V1__ListProcessesResponse *m = valet__v1__list_processes_response__unpack(NULL, len, d);
	if (m) {
		c->listed = m->n_processes;
		valet__v1__list_processes_response__free_unpacked(m, NULL);
	}
	failmalloc_hold(false);
}

static const struct rpc_stream_call_ops start_ops = { .on_message = on_message, .on_done = fm_on_done };
static const struct rpc_stream_call_ops list_ops = { .on_message = on_list, .on_done = fm_on_done };

static void call(const char *method, const ProtobufCMessage *msg, const struct rpc_stream_call_ops *ops, struct call *c)
{
	struct rpc_stream_call *sc;
	struct addr a;
	int r;

	*c = (struct call){ .end.loop = L };
	CHECK_EQ(addr_parse(spec, &a), 0);
	r = rpc_stream_call_start(L, &a, method, 5 * USEC_PER_SEC, ops, c, &sc);
	if (r < 0) {
		CHECK_EQ(r, -ENOMEM);
		return;
	}
	if (rpc_stream_call_send(sc, msg) < 0)
		rpc_stream_call_cancel(sc);
	(void)rpc_stream_call_close_send(sc);
	fm_run_until(&c->end, GUARD_USEC);
	CHECK(c->end.code != RPC_DEADLINE_EXCEEDED);
}

/* Start, then List with the exited ones; *ok: how many answered OK. */
static void two_calls(int *ok)
{
	static char *argv[] = { "sh", "-c", "printf hello; printf oops >&2; exit 3" };
	Valet__V1__StartRequest st = VALET__V1__START_REQUEST__INIT;
	Valet__V1__ListProcessesRequest ls = VALET__V1__LIST_PROCESSES_REQUEST__INIT;
	struct call c;

	st.argv = argv;
	st.n_argv = 3;
	ls.include_exited = true;
	*ok = 0;
	call("/valet.v1.Process/Start", &st.base, &start_ops, &c);
	if (c.end.done && c.end.code == RPC_OK) {
		CHECK(c.started && c.exited);
		CHECK_EQ(c.exit_code, 3);
		CHECK_EQ(c.out, 5);
		CHECK_EQ(c.err, 4);
		*ok += 1;
	}
	call("/valet.v1.Process/List", &ls.base, &list_ops, &c);
	*ok += c.end.done && c.end.code == RPC_OK;
}

static void on_tick(struct loop_timer *t, void *ud)
{
	loop_exit(L, 0);
}

/* Runs the loop until every process has ended and what may be forgotten
 * is (at most GUARD_USEC). */
static void settle(struct process_service *ps)
{
	uint64_t until = now_usec() + GUARD_USEC;
	struct loop_timer *t;
	bool busy = true;

	CHECK_EQ(loop_add_timer(L, USEC_INFINITY, on_tick, NULL, &t), 0);
	while (busy && now_usec() < until) {
		loop_timer_set(t, now_usec() + 20 * 1000);
		(void)loop_run(L);
		busy = false;
		for (struct pproc *p = ps->procs; p; p = p->next)
			busy |= !p->ended;
	}
	loop_timer_set(t, now_usec() + 20 * 1000);
	(void)loop_run(L);
	loop_timer_free(t);
	CHECK(!busy);
}

static void scenario(unsigned long n, unsigned long *ret_count)
{
	struct agent a = { 0 };
	struct process_service ps;
	struct rpc_server *srv;

	CHECK_EQ(loop_new(&L), 0);
	a.core.loop = L;
	a.core.opts.max_processes = 16;
	a.core.opts.process_buffer_max = 1 << 20;
	a.core.opts.process_buffer_total = 4 << 20;
	a.core.opts.process_keep_exited_usec = 600 * USEC_PER_SEC;
	CHECK_EQ(process_service_register(&a, &ps), 0);
	CHECK_EQ(fm_serve(L, &a, spec, &srv), 0);

	int ok;
	failmalloc_arm(n);
	two_calls(&ok);
	*ret_count = failmalloc_disarm();
	/* A Start refused leaves nothing; one whose Started could not be
	 * queued kills what it started; one whose Started was queued (the
	 * client may not have it: its connection may have died of the
	 * failure) ran on like any process whose client went away, to its
	 * end, and is remembered until seen. Nothing runs on. */
	settle(&ps);
	CHECK(ps.n_procs <= 1);
	/* And right after, without failures: both answer, in full. */
	two_calls(&ok);
	CHECK_EQ(ok, 2);

	rpc_server_free(srv);
	process_service_free(&ps);
	loop_free(L);
	while (waitpid(-1, NULL, WNOHANG) > 0)
		;
}

TEST(sweep_process_service_start_list)
{
	snprintf(dir, sizeof(dir), "/tmp/valet-fm-proc-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "unix:%s/s", dir);
	unsigned long total = failmalloc_sweep(NULL, scenario, 0);
	CHECK(total > 100);
	char sock[96];
	snprintf(sock, sizeof(sock), "%s/s", dir);
	(void)unlink(sock);
	(void)rmdir(dir);
}
