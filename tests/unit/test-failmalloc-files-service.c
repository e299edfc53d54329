/* Allocation-failure sweep over valet.v1.Files in maitred's process: the
 * real server and the service (src/files-service/) with its worker
 * processes, driven by rpc/stream.c clients in the same loop. For every N
 * the N-th allocation of maitred's side fails (the workers are forked
 * disarmed: an idle worker kept for the next call would otherwise carry
 * the armed count into it; a Stat is answered in maitred itself, see
 * files-service/stat-here.h): a Write, a Stat and a Read must each end with
 * a status, never hang, the target must be either the old file or the
 * whole new one, nothing may leak, and the service must serve the same
 * calls correctly right after. Each call's deadline (5 s) is the hang
 * detector: a call must end before it. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "agent/agent.h"
#include "base/time-util.h"
#include "failmalloc.h"
#include "files-service/service.h"
#include "files/names.h"
#include "files.pb-c.h"
#include "rpc/server.h"
#include "rpc/stream.h"
#include "test.h"

#define GUARD_USEC (10 * USEC_PER_SEC)
#define DATA_SIZE (200 * 1024)

static struct loop *L;
static char dir[64], spec[128], target[128];
static uint8_t data[DATA_SIZE];

struct call {
	int done, code;
	size_t bytes; /* Read's data */
	int messages;
};

static void on_message(struct rpc_stream_call *sc, const uint8_t *d, size_t len, void *ud)
{
	struct call *c = ud;
	Valet__V1__ReadResponse *m;

	c->messages++;
	failmalloc_hold(true);
	m = valet__v1__read_response__unpack(NULL, len, d);
	if (m && m->part_case == VALET__V1__READ_RESPONSE__PART_DATA)
		c->bytes += m->data.len;
	if (m)
		valet__v1__read_response__free_unpacked(m, NULL);
	failmalloc_hold(false);
}

static void on_done(int code, const char *message, void *ud)
{
	struct call *c = ud;

	c->done = 1;
	c->code = code;
	if (code != RPC_OK && getenv("FM_DEBUG"))
		fprintf(stderr, "# call ended %d: %s\n", code, message);
	loop_exit(L, 0);
}

static const struct rpc_stream_call_ops ops = { .on_message = on_message, .on_done = on_done };

static void on_guard(struct loop_timer *t, void *ud)
{
	*(bool *)ud = true;
	loop_exit(L, 0);
}

/* Runs the loop until the call is done (or the guard fires). */
static void run_until(struct call *c)
{
	bool hung = false;
	struct loop_timer *guard;

	failmalloc_hold(true); /* the test's own guard */
	CHECK_EQ(loop_add_timer(L, now_usec() + GUARD_USEC, on_guard, &hung, &guard), 0);
	failmalloc_hold(false);
	(void)loop_run(L);
	loop_timer_free(guard);
	CHECK(!hung);
}

static struct files_service *FS;

static void on_tick(struct loop_timer *t, void *ud)
{
	loop_exit(L, 0);
}

/* Runs the loop until no worker is busy (at most the guard's time). A
 * Write that failed on maitred's side after its COMMIT was sent still has
 * its worker renaming the file: what a later Read sees is settled once
 * that worker is done (under load it could come after the Read). */
static void settle_workers(void)
{
	uint64_t end = now_usec() + GUARD_USEC;
	struct loop_timer *tick;

	while (FS->busy > 0 && now_usec() < end) {
		failmalloc_hold(true);
		CHECK_EQ(loop_add_timer(L, now_usec() + 5 * USEC_PER_MSEC, on_tick, NULL, &tick), 0);
		failmalloc_hold(false);
		(void)loop_run(L);
		loop_timer_free(tick);
	}
	CHECK_EQ(FS->busy, 0u);
}

/* One call; c->done stays 0 when it could not even start (no memory). */
static void call(const char *method, const ProtobufCMessage *const *msgs, size_t n, struct call *c)
{
	struct rpc_stream_call *sc;
	struct addr a;
	int r;

	*c = (struct call){ 0 };
	CHECK_EQ(addr_parse(spec, &a), 0);
	r = rpc_stream_call_start(L, &a, method, 5 * USEC_PER_SEC, &ops, c, &sc);
	if (r < 0) {
		CHECK_EQ(r, -ENOMEM);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (rpc_stream_call_send(sc, msgs[i]) < 0) {
			rpc_stream_call_cancel(sc);
			break;
		}
	(void)rpc_stream_call_close_send(sc);
	run_until(c);
	/* Ended by a status of its own, never by waiting for its deadline
	 * (a window never given back once kept a Write waiting for it). */
	CHECK(c->code != RPC_DEADLINE_EXCEEDED);
}

static bool file_is(const uint8_t *want, size_t len)
{
	uint8_t buf[DATA_SIZE + 1];
	int fd = open(target, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n == (ssize_t)len && memcmp(buf, want, len) == 0;
}

/* Write, Stat, Read; *ok: how many answered OK. */
static void three_calls(int *ok)
{
	Valet__V1__WriteHeader hdr = VALET__V1__WRITE_HEADER__INIT;
	Valet__V1__WriteRequest h = VALET__V1__WRITE_REQUEST__INIT, d1 = VALET__V1__WRITE_REQUEST__INIT;
	Valet__V1__StatRequest st = VALET__V1__STAT_REQUEST__INIT;
	Valet__V1__ReadRequest rd = VALET__V1__READ_REQUEST__INIT;
	const ProtobufCMessage *w[] = { &h.base, &d1.base }, *s[] = { &st.base }, *r[] = { &rd.base };
	struct call c;

	hdr.path = target;
	h.part_case = VALET__V1__WRITE_REQUEST__PART_HEADER;
	h.header = &hdr;
	d1.part_case = VALET__V1__WRITE_REQUEST__PART_DATA;
	d1.data.data = data;
	d1.data.len = sizeof(data);
	st.path = target;
	rd.path = target;

	*ok = 0;
	call("/valet.v1.Files/Write", w, 2, &c);
	if (c.done) {
		*ok += c.code == RPC_OK;
		/* Atomic: the old (empty) file or all of the new one. */
		CHECK(file_is(data, sizeof(data)) || file_is(data, 0));
		if (c.code == RPC_OK)
			CHECK(file_is(data, sizeof(data)));
	}
	settle_workers();
	call("/valet.v1.Files/Stat", s, 1, &c);
	*ok += c.done && c.code == RPC_OK;
	call("/valet.v1.Files/Read", r, 1, &c);
	if (c.done && c.code == RPC_OK) {
		if (file_is(data, sizeof(data)))
			CHECK_EQ(c.bytes, sizeof(data));
		*ok += 1;
	}
}

static void scenario(unsigned long n, unsigned long *ret_count)
{
	struct agent a = { 0 };
	struct files_service fs;
	struct rpc_server_config cfg;
	struct rpc_server *srv;
	struct addr addr;
	int fd;

	CHECK_EQ(loop_new(&L), 0);
	a.core.loop = L;
	CHECK_EQ(files_service_register(&a, &fs), 0);
	FS = &fs;
	rpc_server_config_init(&cfg, a.services);
	CHECK_EQ(rpc_server_new(L, &cfg, &srv), 0);
	CHECK_EQ(addr_parse(spec, &addr), 0);
	CHECK_EQ(rpc_server_listen(srv, &addr), 0);
	fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	close(fd);

	int ok;
	/* A Stat answered in maitred's loop looks the names up here, in
	 * this process: from nothing every run, its allocations swept too. */
	files_forget_names();
	failmalloc_arm(n);
	three_calls(&ok);
	*ret_count = failmalloc_disarm();
	/* And right after, without failures: all three answer. */
	three_calls(&ok);
	CHECK_EQ(ok, 3);

	rpc_server_free(srv);
	files_service_free(&fs);
	loop_free(L);
}

static void disarm_in_child(void)
{
	(void)failmalloc_disarm();
}

TEST(sweep_files_service_write_stat_read)
{
	CHECK_EQ(pthread_atfork(NULL, NULL, disarm_in_child), 0);
	snprintf(dir, sizeof(dir), "/tmp/valet-fm-files-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "unix:%s/s", dir);
	snprintf(target, sizeof(target), "%s/target", dir);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
	/* The calls' connections, sessions, messages and the service's jobs:
	 * hundreds. */
	unsigned long total = failmalloc_sweep(NULL, scenario, 0);
	CHECK(total > 100);
	(void)unlink(target);
	char sock[96];
	snprintf(sock, sizeof(sock), "%s/s", dir);
	(void)unlink(sock);
	(void)rmdir(dir);
}
