#include "attach.h"

#include <signal.h>
#include <stdlib.h>

#include "base/list.h"
#include "base/macro.h"
#include "proc.h"
#include "rpc/server-session.h"
#include "rpc/status.h"

/* Queued per call before it waits for its client: enough to keep the
 * connection busy; many calls at once hold little each. */
#define SEND_HIGH (256 * 1024)
#define SEND_LOW (64 * 1024)

struct pattach *pattach_new(void)
{
	return calloc(1, sizeof(struct pattach));
}

/* Forgets the call, which has ended (finished, failed or cancelled: its
 * memory is gone); the process goes on (its output read again if this
 * call held it), and the service's gc sees whether it may be forgotten
 * too. */
static void detach(struct pattach *a)
{
	struct pproc *p = a->p;

	LIST_REMOVE(p->attached, a);
	free(a);
	pproc_resume_output(p);
	loop_defer_schedule(p->svc->gc);
}

static void on_cancel(struct rpc_call *call, void *userdata)
{
	struct pattach *a = userdata;
	struct pproc *p = a->p;

	if (a->starter && p->kill_on_disconnect)
		pproc_kill_group(p, SIGKILL);
	detach(a);
}

static Valet__V1__ProcessEvent__Stream stream_of(const struct pproc *p, int k)
{
	if (p->pty)
		return VALET__V1__PROCESS_EVENT__STREAM__PTY;
	return k == PROC_STDERR ? VALET__V1__PROCESS_EVENT__STREAM__STDERR : VALET__V1__PROCESS_EVENT__STREAM__STDOUT;
}

static int send_event(struct pattach *a, Valet__V1__ProcessEvent *ev)
{
	return rpc_call_send(a->call, &ev->base);
}

/* One Output from the cursor of stream k: 0, 1 (queue full) or -errno. */
static int send_output(struct pattach *a, int k)
{
	const struct ring *r = &a->p->ring[k];
	Valet__V1__ProcessEvent__Output o = VALET__V1__PROCESS_EVENT__OUTPUT__INIT;
	Valet__V1__ProcessEvent ev = VALET__V1__PROCESS_EVENT__INIT;
	uint64_t from = a->cursor[k];
	const uint8_t *data;
	size_t len;

	if (from < ring_start(r)) {
		o.dropped = ring_start(r) - from;
		from = ring_start(r);
	}
	ring_peek(r, from, &data, &len);
	if (len > PROCESS_CHUNK)
		len = PROCESS_CHUNK;
	if (len == 0 && o.dropped == 0)
		return 0;
	o.stream = stream_of(a->p, k);
	o.offset = from;
	o.data.data = (uint8_t *)data;
	o.data.len = len;
	ev.event_case = VALET__V1__PROCESS_EVENT__EVENT_OUTPUT;
	ev.output = &o;
	int ret = send_event(a, &ev);
	if (ret >= 0)
		a->cursor[k] = from + len;
	return ret;
}

static void on_writable(struct rpc_call *call, void *userdata);

/* Sends what the call can take; once the process has ended and the call
 * has all of it, Exited, and the call ends. False when a is gone. */
static bool pump(struct pattach *a)
{
	struct pproc *p = a->p;
	bool sent = false;
	int r = 0;

	while (!a->blocked) {
		bool more = false;
		for (int k = 0; k < PROC_N_STREAMS && r == 0; k++)
			if (a->cursor[k] < p->ring[k].end) {
				r = send_output(a, k);
				more = true;
			}
		if (r < 0) {
			rpc_call_set_cancel(a->call, NULL, NULL);
			rpc_call_fail(a->call, RPC_RESOURCE_EXHAUSTED, "cannot send the output: %s", strerror(-r));
			detach(a);
			return false;
		}
		if (!more)
			break;
		sent = true;
		if (r == 1)
			a->blocked = true; /* queued, and the queue is full */
	}
	/* The cursor moved: the process may have been waiting for it. */
	if (sent)
		pproc_resume_output(p);
	if (a->blocked || !p->ended)
		return true;
	Google__Protobuf__Timestamp ts;
	Valet__V1__ProcessEvent__Exited x;
	Valet__V1__ProcessEvent ev = VALET__V1__PROCESS_EVENT__INIT;
	pproc_exited_pb(p, &x, &ts);
	ev.event_case = VALET__V1__PROCESS_EVENT__EVENT_EXITED;
	ev.exited = &x;
	r = send_event(a, &ev);
	struct rpc_call *call = a->call;
	rpc_call_set_cancel(call, NULL, NULL);
	if (r < 0)
		rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "cannot send the end: %s", strerror(-r));
	else {
		/* A Start call's Exited may be queued as its client goes
		 * (`maitctl exec -d`): only a List or a Connect makes the end
		 * seen; a Start's makes the process evictable (service.c). */
		if (a->starter)
			p->start_saw_end = true;
		else
			p->seen = true;
		rpc_call_finish(call, RPC_OK, NULL);
	}
	detach(a);
	return false;
}

static void on_writable(struct rpc_call *call, void *userdata)
{
	struct pattach *a = userdata;

	a->blocked = false;
	(void)pump(a);
}

void pattach_attach(struct pattach *a, struct pproc *p, struct rpc_call *call, uint64_t stdout_from,
		    uint64_t stderr_from, bool starter)
{
	Valet__V1__ProcessEvent__Started st = VALET__V1__PROCESS_EVENT__STARTED__INIT;
	Valet__V1__ProcessEvent ev = VALET__V1__PROCESS_EVENT__INIT;

	a->p = p;
	a->call = call;
	a->cursor[PROC_STDOUT] = stdout_from;
	a->cursor[PROC_STDERR] = stderr_from;
	a->starter = starter;
	LIST_PREPEND(p->attached, a);
	rpc_call_set_cancel(call, on_cancel, a);
	rpc_call_set_writable(call, on_writable, a);
	rpc_call_set_send_marks(call, SEND_HIGH, SEND_LOW);
	st.id = p->id;
	st.pid = p->pid;
	st.tag = p->tag;
	ev.event_case = VALET__V1__PROCESS_EVENT__EVENT_STARTED;
	ev.started = &st;
	int r = send_event(a, &ev);
	if (r < 0) {
		rpc_call_set_cancel(call, NULL, NULL);
		rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "cannot send Started: %s", strerror(-r));
		if (starter) {
			/* A Start that fails leaves no process: nobody knows its id. */
			pproc_kill_group(p, SIGKILL);
			p->seen = true;
		}
		detach(a);
		return;
	}
	a->blocked = r == 1;
	(void)pump(a);
}

void pattach_pump_all(struct pproc *p)
{
	struct pattach *a = p->attached, *next;

	for (; a; a = next) {
		next = a->next;
		(void)pump(a);
	}
}

void pattach_end_all(struct pproc *p, int code, const char *msg)
{
	while (p->attached) {
		struct pattach *a = p->attached;
		rpc_call_set_cancel(a->call, NULL, NULL);
		rpc_call_fail(a->call, code, "%s", msg);
		detach(a);
	}
}
