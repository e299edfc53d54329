/* Mount: mount(2) with the request's five fields; the outcome travels as a
 * positive errno in the response, the RPC itself succeeds. */
#include <string.h>
#include <sys/mount.h>

#include "base/log.h"
#include "guest.pb-c.h"
#include "maitred.h"

void maitred_mount(struct rpc_call *call, const ProtobufCMessage *request, void *userdata _unused_)
{
	const VmTools__MountRequest *req = (const VmTools__MountRequest *)request;
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;

	if (mount(req->source, req->target, req->fstype, (unsigned long)req->mountflags, req->options) < 0) {
		resp.error = errno;
		log_info("Mount from %s: \"%s\" on \"%s\" (%s, flags 0x%llx): failed: %s", rpc_call_peer(call),
			 req->source, req->target, req->fstype, (unsigned long long)req->mountflags,
			 strerror(resp.error));
	} else
		log_info("Mount from %s: \"%s\" on \"%s\" (%s, flags 0x%llx): OK", rpc_call_peer(call), req->source,
			 req->target, req->fstype, (unsigned long long)req->mountflags);
	rpc_call_reply(call, &resp.base);
}
