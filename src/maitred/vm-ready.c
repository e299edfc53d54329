/* VmReady: one call to the host's StartupListener once maitred serves, with
 * a deadline. Failure is logged and harmless, as in the original. */
#include "base/log.h"
#include "common.pb-c.h"
#include "maitred.h"
#include "rpc/unary.h"

#define VM_READY_TIMEOUT_USEC (5 * 1000000ull)

static void vm_ready_done(int code, const char *message, ProtobufCMessage *response, void *userdata)
{
	struct maitred *m = userdata;

	if (response)
		protobuf_c_message_free_unpacked(response, NULL);
	if (code == RPC_OK)
		log_info("Told the host (%s) that the VM is ready", m->opts.vm_ready);
	else
		log_warning("Failed to notify host system that VM is ready: %s: %s", rpc_code_name(code),
			    message ? message : "");
}

void maitred_notify_ready(struct maitred *m)
{
	VmTools__EmptyMessage req = VM_TOOLS__EMPTY_MESSAGE__INIT;
	struct addr a;
	int r;

	if (!m->opts.vm_ready)
		return;
	if (addr_parse(m->opts.vm_ready, &a) < 0)
		return (void)log_warning("Failed to notify host system that VM is ready: bad address %s",
					 m->opts.vm_ready);
	r = rpc_unary_call(m->loop, &a, "/vm_tools.StartupListener/VmReady", &req.base,
			   &vm_tools__empty_message__descriptor, VM_READY_TIMEOUT_USEC, vm_ready_done, m);
	if (r < 0)
		log_warning_errno(r, "Failed to notify host system that VM is ready");
}
