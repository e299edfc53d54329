/* Mount: mount(2) with the request's five fields; the outcome travels as a
 * positive errno in the response, the RPC itself succeeds. Fields 6-8
 * (create_target, permissions, mkfs_if_needed) are in mount-extras.c. */
#include <errno.h>
#include <string.h>
#include <sys/mount.h>

#include "base/escape.h"
#include "base/log.h"
#include "guest.pb-c.h"
#include "vmtools.h"

void maitred_mount(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__MountRequest *req = (const VmTools__MountRequest *)request;
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;
	_cleanup_close_ int lock = -1;
	int r = 0;

	if (req->permissions > 07777)
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "permissions 0%o: not a mode (at most 07777)",
				     req->permissions);
	/* Creating the target writes to the filesystem it is on. */
	if (req->create_target && maitred_refuse_if_frozen(((struct vmtools_storage *)userdata)->core, call))
		return;
	/* The mount attempt opens the device exclusively for a moment: not
	 * while a format of it runs (mount-extras.c). */
	lock = maitred_mount_lock(req);
	if (lock == -EWOULDBLOCK && req->mkfs_if_needed) {
		log_info("Mount from %s: \"%s\" on \"%s\": refused, the device is locked (being formatted?)",
			 rpc_call_peer(call), ESCAPED(req->source), ESCAPED(req->target));
		return rpc_call_fail(call, RPC_FAILED_PRECONDITION,
				     "not formatting \"%s\": it is being formatted or probed (the device is locked, by an "
				     "earlier mkfs_if_needed or another program)",
				     req->source);
	}
	if (lock == -EWOULDBLOCK)
		r = -EBUSY;
	else if (req->create_target)
		r = maitred_mount_prepare_target(req);
	if (r < 0 || mount(req->source, req->target, req->fstype, (unsigned long)req->mountflags, req->options) < 0) {
		resp.error = r < 0 ? -r : errno;
		if (r == 0 && req->mkfs_if_needed && maitred_mount_mkfs_and_retry(userdata, call, req, resp.error,
											 lock >= 0 ? TAKE_FD(lock) : -1))
			return; /* answered there, now or once mkfs is done */
		log_info("Mount from %s: \"%s\" on \"%s\" (%s, flags 0x%llx): failed: %s", rpc_call_peer(call),
			 ESCAPED(req->source), ESCAPED(req->target), ESCAPED(req->fstype),
			 (unsigned long long)req->mountflags, strerror(resp.error));
	} else {
		r = maitred_mount_chmod(req);
		resp.error = -r;
		log_info("Mount from %s: \"%s\" on \"%s\" (%s, flags 0x%llx): OK%s%s", rpc_call_peer(call),
			 ESCAPED(req->source), ESCAPED(req->target), ESCAPED(req->fstype),
			 (unsigned long long)req->mountflags, r < 0 ? "; chmod failed: " : "",
			 r < 0 ? strerror(-r) : "");
	}
	rpc_call_reply(call, &resp.base);
}
