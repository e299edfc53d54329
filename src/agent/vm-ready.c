/* VmReady: the call to the host's StartupListener once maitred serves.
 * The host's listener may come up after the guest, restart, or (under a
 * service manager) be unreachable until the route exists: each attempt has
 * a 5 s deadline, and failures are retried with a growing pause until
 * --vm-ready-timeout has passed. The first failure and the final give-up
 * are logged, once each; serving never waits for any of it. */
#include <stdio.h>
#include <stdlib.h>

#include "base/escape.h"
#include "base/log.h"
#include "base/time-util.h"
#include "common.pb-c.h"
#include "agent.h"
#include "net/sock.h"
#include "rpc/unary.h"

#define VM_READY_ATTEMPT_USEC (5 * USEC_PER_SEC)
#define VM_READY_FIRST_PAUSE_USEC (250 * USEC_PER_MSEC)
#define VM_READY_MAX_PAUSE_USEC (5 * USEC_PER_SEC)

struct vm_ready {
	struct maitred *m;
	struct vm_ready **slot;
	struct addr addr;
	uint64_t give_up_at;
	uint64_t pause;
	unsigned attempts;
	bool calling; /* an attempt is in flight: its callback frees us if asked */
	bool cancelled;
	struct loop_timer *retry;
};

static void vm_ready_attempt(struct vm_ready *v);

static void vm_ready_done(int code, const char *message, ProtobufCMessage *response, void *userdata)
{
	struct vm_ready *v = userdata;
	struct maitred *m = v->m;

	v->calling = false;
	if (response)
		protobuf_c_message_free_unpacked(response, NULL);
	if (v->cancelled)
		return free(v);
	if (code == RPC_OK) {
		if (v->attempts == 1)
			log_info("Told the host (%s) that the VM is ready", m->opts.vm_ready);
		else
			log_info("Told the host (%s) that the VM is ready, at attempt %u", m->opts.vm_ready,
				 v->attempts);
		return maitred_vm_ready_free(v->slot);
	}
	uint64_t now = now_usec();
	if (now + v->pause >= v->give_up_at) {
		log_warning("Failed to notify host system that VM is ready: %s: %s; gave up after %u attempts",
			    rpc_code_name(code), ESCAPED(message ? message : ""), v->attempts);
		return maitred_vm_ready_free(v->slot);
	}
	if (v->attempts == 1)
		log_warning("Failed to notify host system that VM is ready: %s: %s; retrying for up to %.0f s",
			    rpc_code_name(code), ESCAPED(message ? message : ""),
			    (double)m->opts.vm_ready_timeout_usec / USEC_PER_SEC);
	loop_timer_set(v->retry, now + v->pause);
	v->pause = MIN(v->pause * 2, VM_READY_MAX_PAUSE_USEC);
}

static void on_retry(struct loop_timer *t, void *userdata)
{
	vm_ready_attempt(userdata);
}

static void vm_ready_attempt(struct vm_ready *v)
{
	VmTools__EmptyMessage req = VM_TOOLS__EMPTY_MESSAGE__INIT;
	uint64_t left = v->give_up_at > now_usec() ? v->give_up_at - now_usec() : 1;

	v->attempts++;
	int r = rpc_unary_call(v->m->loop, &v->addr, "/vm_tools.StartupListener/VmReady", &req.base,
			       &vm_tools__empty_message__descriptor, MIN(VM_READY_ATTEMPT_USEC, left), vm_ready_done,
			       v);
	if (r >= 0) {
		v->calling = true;
		return;
	}
	/* Could not even start (no such socket file yet, no memory): the
	 * same as a failed attempt. */
	char msg[300];
	snprintf(msg, sizeof(msg), "cannot connect to %s: %s", v->m->opts.vm_ready, sock_connect_strerror(&v->addr, r));
	vm_ready_done(RPC_UNAVAILABLE, msg, NULL, v);
}

void maitred_vm_ready_free(struct vm_ready **slot)
{
	struct vm_ready *v = TAKE_PTR(*slot);

	if (!v)
		return;
	loop_timer_free(v->retry);
	v->retry = NULL;
	/* An attempt in flight ends in its callback, which frees us then. */
	if (v->calling)
		v->cancelled = true;
	else
		free(v);
}

void maitred_notify_ready(struct maitred *m, struct vm_ready **slot)
{
	struct vm_ready *v;
	struct addr a;
	int r;

	if (!m->opts.vm_ready || *slot)
		return;
	if (addr_parse(m->opts.vm_ready, &a) < 0)
		return (void)log_warning("Failed to notify host system that VM is ready: bad address %s",
					 m->opts.vm_ready);
	v = calloc(1, sizeof(*v));
	if (!v)
		return (void)log_warning_errno(-ENOMEM, "Failed to notify host system that VM is ready");
	*v = (struct vm_ready){ .m = m,
				.slot = slot,
				.addr = a,
				.give_up_at = now_usec() + m->opts.vm_ready_timeout_usec,
				.pause = VM_READY_FIRST_PAUSE_USEC };
	r = loop_add_timer(m->loop, USEC_INFINITY, on_retry, v, &v->retry);
	if (r < 0) {
		free(v);
		return (void)log_warning_errno(r, "Failed to notify host system that VM is ready");
	}
	*slot = v;
	vm_ready_attempt(v);
}
