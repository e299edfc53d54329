/* valet.v1.Process' method table, what is remembered and for how long
 * (docs/process.md). */
#include "service.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attach.h"
#include "base/list.h"
#include "base/macro.h"
#include "base/time-util.h"
#include "proc.h"
#include "process.pb-c.h"
#include "request.h"
#include "rpc/status.h"

static struct pproc *find_id(struct process_service *s, uint64_t id)
{
	for (struct pproc *p = s->procs; p; p = p->next)
		if (p->id == id)
			return p;
	return NULL;
}

/* The running process with this tag, else the newest one that had it
 * (the list is the newest first). */
static struct pproc *find_tag(struct process_service *s, const char *tag)
{
	struct pproc *found = NULL;

	for (struct pproc *p = s->procs; p; p = p->next)
		if (strcmp(p->tag, tag) == 0) {
			if (!p->reaped)
				return p;
			if (!found)
				found = p;
		}
	return found;
}

static bool tag_running(struct process_service *s, const char *tag)
{
	for (struct pproc *p = s->procs; p; p = p->next)
		if (!p->reaped && strcmp(p->tag, tag) == 0)
			return true;
	return false;
}

static void forget(struct process_service *s, struct pproc *p)
{
	LIST_REMOVE(s->procs, p);
	s->n_procs--;
	pproc_free(p);
}

/* Makes room for a Start in a full table: forgets the oldest exited
 * process whose end a Start call was sent and that no call holds
 * (`maitctl exec` run 1000s of times leaves such ones). False when there
 * is none. */
static bool evict_one(struct process_service *s)
{
	struct pproc *oldest = NULL;

	for (struct pproc *p = s->procs; p; p = p->next)
		if (p->ended && !p->attached && (p->start_saw_end || p->seen))
			oldest = p; /* the list is the newest first */
	if (!oldest)
		return false;
	forget(s, oldest);
	return true;
}

/* Forgets what has ended, is held by no call, and was seen or has
 * expired; arms the expiry for the next one. */
static void on_gc(struct loop_defer *d, void *userdata)
{
	struct process_service *s = userdata;
	uint64_t now = now_usec(), keep = s->core->opts.process_keep_exited_usec, next = USEC_INFINITY;
	struct pproc *p, *n;

	for (p = s->procs; p; p = n) {
		n = p->next;
		if (!p->ended)
			continue;
		if (!p->attached && (p->seen || now >= p->ended_usec + keep))
			forget(s, p);
		else if (!p->seen && p->ended_usec + keep < next)
			next = p->ended_usec + keep;
	}
	loop_timer_set(s->expiry, next);
}

static void on_expiry(struct loop_timer *t, void *userdata)
{
	struct process_service *s = userdata;
	loop_defer_schedule(s->gc);
}

static void on_changed(struct pproc *p)
{
	pattach_pump_all(p);
	if (p->ended)
		loop_defer_schedule(p->svc->gc);
}

/* --- Start, Connect ------------------------------------------------------- */

static void h_start(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	const Valet__V1__StartRequest *req = (const Valet__V1__StartRequest *)msg;
	struct process_service *s = ud;
	const struct maitred_options *o = &s->core->opts;
	_cleanup_free_ struct pattach *a = NULL;
	struct pproc *p;
	char err[512];
	size_t buffer;
	int code;

	if (s->stopping)
		return rpc_call_fail(call, RPC_UNAVAILABLE, "maitred is stopping");
	code = process_check_start(req, o->process_buffer_max, &buffer, err, sizeof(err));
	if (code)
		return rpc_call_fail(call, code, "%s", err);
	if (s->n_procs >= o->max_processes && !evict_one(s))
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED,
				     "%u processes remembered, the limit of this guest (--max-processes)", s->n_procs);
	if (s->budget.used >= s->budget.total)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED,
				     "output buffers use %zu bytes, the limit of this guest (--process-buffer-total)",
				     s->budget.used);
	if (req->tag[0] && tag_running(s, req->tag))
		return rpc_call_fail(call, RPC_ALREADY_EXISTS, "tag: a running process has the tag %s", req->tag);
	/* What the service needs at all, made on its first Start. */
	if (!s->gc && loop_add_defer(s->core->loop, on_gc, s, &s->gc) < 0)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "no memory");
	if (!s->expiry && loop_add_timer(s->core->loop, USEC_INFINITY, on_expiry, s, &s->expiry) < 0)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "no memory");
	a = pattach_new();
	if (!a)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "no memory");
	code = pproc_start(s, req, buffer, &p, err, sizeof(err));
	if (code)
		return rpc_call_fail(call, code, "%s", err);
	pattach_attach(TAKE_PTR(a), p, call, 0, 0, true);
}

static void h_connect(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	const Valet__V1__ConnectRequest *req = (const Valet__V1__ConnectRequest *)msg;
	struct process_service *s = ud;
	struct pproc *p = NULL;
	struct pattach *a;

	if (s->stopping)
		return rpc_call_fail(call, RPC_UNAVAILABLE, "maitred is stopping");
	if (req->target_case == VALET__V1__CONNECT_REQUEST__TARGET_ID) {
		p = find_id(s, req->id);
		if (!p)
			return rpc_call_fail(call, RPC_NOT_FOUND, "id: no process %llu", (unsigned long long)req->id);
	} else if (req->target_case == VALET__V1__CONNECT_REQUEST__TARGET_TAG && req->tag[0]) {
		p = find_tag(s, req->tag);
		if (!p)
			return rpc_call_fail(call, RPC_NOT_FOUND, "tag: no process has the tag %s", req->tag);
	} else
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "target: an id or a tag is needed");
	if (req->stdout_offset > p->ring[PROC_STDOUT].end)
		return rpc_call_fail(call, RPC_OUT_OF_RANGE,
				     "stdout_offset: %llu is beyond the %llu bytes written so far",
				     (unsigned long long)req->stdout_offset,
				     (unsigned long long)p->ring[PROC_STDOUT].end);
	if (req->stderr_offset > p->ring[PROC_STDERR].end)
		return rpc_call_fail(call, RPC_OUT_OF_RANGE,
				     "stderr_offset: %llu is beyond the %llu bytes written so far%s",
				     (unsigned long long)req->stderr_offset,
				     (unsigned long long)p->ring[PROC_STDERR].end,
				     p->pty ? " (a PTY has one stream, as stdout)" : "");
	a = pattach_new();
	if (!a)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "no memory");
	pattach_attach(a, p, call, req->stdout_offset, req->stderr_offset, false);
}

/* --- List ----------------------------------------------------------------- */

struct list_entry {
	Valet__V1__ProcessInfo info;
	Valet__V1__ProcessEvent__Exited exited;
	Google__Protobuf__Timestamp started, ended;
};

static void h_list(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	const Valet__V1__ListProcessesRequest *req = (const Valet__V1__ListProcessesRequest *)msg;
	Valet__V1__ListProcessesResponse resp = VALET__V1__LIST_PROCESSES_RESPONSE__INIT;
	struct process_service *s = ud;
	_cleanup_free_ struct list_entry *e = NULL;
	_cleanup_free_ Valet__V1__ProcessInfo **v = NULL;
	size_t n = 0;

	if (s->n_procs) {
		e = calloc(s->n_procs, sizeof(*e));
		v = calloc(s->n_procs, sizeof(*v));
		if (!e || !v)
			return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "no memory for %u processes", s->n_procs);
	}
	for (struct pproc *p = s->procs; p; p = p->next) {
		if (p->reaped && !req->include_exited)
			continue;
		Valet__V1__ProcessInfo *i = &e[n].info;
		*i = (Valet__V1__ProcessInfo)VALET__V1__PROCESS_INFO__INIT;
		i->id = p->id;
		i->pid = p->pid;
		i->tag = p->tag;
		for (i->n_argv = 0; p->argv[i->n_argv]; i->n_argv++)
			;
		i->argv = p->argv;
		i->running = !p->reaped;
		i->pty = p->pty;
		i->user = p->user;
		pproc_timestamp_pb(&p->started, &e[n].started);
		i->started = &e[n].started;
		if (p->reaped) {
			pproc_exited_pb(p, &e[n].exited, &e[n].ended);
			i->exited = &e[n].exited;
		}
		v[n++] = i;
	}
	/* The list is the newest first; the answer in id order. */
	for (size_t j = 0; j < n / 2; j++) {
		Valet__V1__ProcessInfo *t = v[j];
		v[j] = v[n - 1 - j];
		v[n - 1 - j] = t;
	}
	resp.processes = v;
	resp.n_processes = n;
	int r = rpc_call_send(call, &resp.base);
	if (r < 0)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "cannot send the list: %s", strerror(-r));
	/* Their end is seen: forgotten once no call holds them. */
	if (req->include_exited)
		for (struct pproc *p = s->procs; p; p = p->next)
			if (p->reaped) {
				p->seen = true;
				loop_defer_schedule(s->gc);
			}
	rpc_call_finish(call, RPC_OK, NULL);
}

/* --- SendInput, SendSignal, Resize ---------------------------------------- */

static struct pproc *target(struct process_service *s, struct rpc_call *call, uint64_t id)
{
	struct pproc *p = find_id(s, id);
	if (!p)
		rpc_call_fail(call, RPC_NOT_FOUND, "id: no process %llu", (unsigned long long)id);
	return p;
}

static void reply_empty(struct rpc_call *call)
{
	Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
	rpc_call_reply(call, &e.base);
}

static void h_send_input(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	const Valet__V1__SendInputRequest *req = (const Valet__V1__SendInputRequest *)msg;
	struct pproc *p = target(ud, call, req->id);
	char err[256];

	if (!p)
		return;
	int code = pproc_send_input(p, call, req, err, sizeof(err));
	if (code)
		rpc_call_fail(call, code, "%s", err);
}

static void h_send_signal(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	const Valet__V1__SendSignalRequest *req = (const Valet__V1__SendSignalRequest *)msg;
	struct pproc *p = target(ud, call, req->id);
	char err[256];

	if (!p)
		return;
	int code = pproc_send_signal(p, req->signal, req->group, err, sizeof(err));
	if (code)
		return rpc_call_fail(call, code, "%s", err);
	reply_empty(call);
}

static void h_resize(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	const Valet__V1__ResizeRequest *req = (const Valet__V1__ResizeRequest *)msg;
	struct pproc *p = target(ud, call, req->id);
	char err[256];

	if (!p)
		return;
	int code = pproc_resize(p, req->rows, req->cols, err, sizeof(err));
	if (code)
		return rpc_call_fail(call, code, "%s", err);
	reply_empty(call);
}

static const struct rpc_method methods[] = {
	{ "/valet.v1.Process/Start", &valet__v1__start_request__descriptor, h_start, .server_streaming = true },
	{ "/valet.v1.Process/Connect", &valet__v1__connect_request__descriptor, h_connect, .server_streaming = true },
	{ "/valet.v1.Process/List", &valet__v1__list_processes_request__descriptor, h_list },
	{ "/valet.v1.Process/SendInput", &valet__v1__send_input_request__descriptor, h_send_input },
	{ "/valet.v1.Process/SendSignal", &valet__v1__send_signal_request__descriptor, h_send_signal },
	{ "/valet.v1.Process/Resize", &valet__v1__resize_request__descriptor, h_resize },
};

/* The orderly end begins: the attached calls end (the stop does not wait
 * for processes), and every process is asked to end (SIGTERM to its
 * group); process_service_free() kills what is left. */
static void on_stopping(void *userdata)
{
	struct process_service *s = userdata;

	s->stopping = true;
	for (struct pproc *p = s->procs; p; p = p->next) {
		pattach_end_all(p, RPC_UNAVAILABLE, "maitred is stopping");
		pproc_kill_group(p, SIGTERM);
	}
}

/* cold: placed with the other code run once (.text.unlikely), so that
 * registering does not fault in a 64 KiB window of the service's code
 * that an idle maitred never runs (about 70 KiB of the static maitred's
 * idle RSS, measured). */
__attribute__((cold)) int process_service_register(struct agent *a, struct process_service *s)
{
	*s = (struct process_service){
		.core = &a->core,
		.table = { methods, ARRAY_SIZE(methods), s },
		.stop_hook = { .fn = on_stopping, .userdata = s },
		.budget = { .total = a->core.opts.process_buffer_total },
		.changed = on_changed,
	};
	int r = maitred_add_service(a, &s->table);
	if (r < 0)
		return r;
	maitred_add_stop_hook(a, &s->stop_hook);
	return 0;
}

void process_service_free(struct process_service *s)
{
	while (s->procs) {
		struct pproc *p = s->procs;
		while (p->attached) {
			struct pattach *at = p->attached;
			rpc_call_set_cancel(at->call, NULL, NULL);
			rpc_call_set_writable(at->call, NULL, NULL);
			p->attached = at->next;
			free(at);
		}
		/* Processes end with maitred (docs/process.md). */
		pproc_kill_group(p, SIGKILL);
		forget(s, p);
	}
	loop_defer_free(TAKE_PTR(s->gc));
	loop_timer_free(TAKE_PTR(s->expiry));
}
