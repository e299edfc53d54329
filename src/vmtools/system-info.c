/* GetKernelVersion (uname) and GetAvailableSpace (statvfs of the main
 * writable filesystem). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <sys/utsname.h>

#include "base/log.h"
#include "common.pb-c.h"
#include "guest.pb-c.h"
#include "vmtools.h"

void maitred_get_kernel_version(struct rpc_call *call, const ProtobufCMessage *request,
				void *userdata)
{
	VmTools__GetKernelVersionResponse resp = VM_TOOLS__GET_KERNEL_VERSION_RESPONSE__INIT;
	struct utsname u;

	if (uname(&u) < 0)
		return rpc_call_fail(call, RPC_INTERNAL, "uname: %s", strerror(errno));
	resp.kernel_release = u.release;
	resp.kernel_version = u.version;
	rpc_call_reply(call, &resp.base);
}

void maitred_get_available_space(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	VmTools__GetAvailableSpaceResponse resp = VM_TOOLS__GET_AVAILABLE_SPACE_RESPONSE__INIT;
	const char *fs = maitred_main_fs(userdata);
	struct statvfs st;

	if (statvfs(fs, &st) < 0) {
		int err = errno;
		log_info("GetAvailableSpace from %s: statvfs %s: %s", rpc_call_peer(call), fs, strerror(err));
		return rpc_call_fail(call, RPC_INTERNAL, "statvfs %s: %s", fs, strerror(err));
	}
	/* What an unprivileged writer can still use, as df's "Avail". */
	resp.available_space = (uint64_t)st.f_bavail * st.f_frsize;
	rpc_call_reply(call, &resp.base);
}
