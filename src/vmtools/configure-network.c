/* ConfigureNetwork: IPv4 address, netmask and default route on one
 * interface through rtnetlink, plus loopback up, and resolv.conf when the
 * request has one; the work is the agent's (agent/network.c), which
 * valet.v1.Snapshot/Restored shares. */
#include "base/escape.h"
#include "base/log.h"
#include "common.pb-c.h"
#include "guest.pb-c.h"
#include "vmtools.h"
#include "agent/network.h"

void maitred_configure_network(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__NetworkConfigRequest *req = (const VmTools__NetworkConfigRequest *)request;
	struct vmtools_net *m = userdata;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	struct maitred_net_error err;
	const char *resolv;
	char summary[128];
	int r;

	r = maitred_network_configure(m->core, req, &resolv, summary, sizeof(summary), &err);
	if (r < 0) {
		log_info("ConfigureNetwork from %s: %s: %s", rpc_call_peer(call), rpc_code_name(err.code),
			 ESCAPED(err.message));
		return rpc_call_fail(call, err.code, "%s", err.message);
	}
	if (resolv)
		log_info("ConfigureNetwork from %s: %s written", rpc_call_peer(call), resolv);
	log_info("ConfigureNetwork from %s: OK: %s", rpc_call_peer(call), summary);
	rpc_call_reply(call, &resp.base);
}
