/* SetResolvConfig: validated entries, written atomically to --resolv-conf
 * (default /etc/resolv.conf) by the agent's code that ConfigureNetwork's
 * resolv_config also uses (agent/network.c). Refused while the file
 * systems are frozen. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/escape.h"
#include "base/log.h"
#include "common.pb-c.h"
#include "agent/network.h"
#include "guest.pb-c.h"
#include "vmtools.h"

void maitred_set_resolv_config(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__SetResolvConfigRequest *req = (const VmTools__SetResolvConfigRequest *)request;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	const struct maitred_options *opts = &((struct vmtools_net *)userdata)->core->opts;
	const char *path = NULL;
	char err[256];
	int r;

	if (!req->resolv_config) {
		log_info("SetResolvConfig from %s: INVALID_ARGUMENT: no resolv_config", rpc_call_peer(call));
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "resolv_config is missing");
	}
	if (maitred_resolv_check(req->resolv_config, err, sizeof(err)) < 0) {
		log_info("SetResolvConfig from %s: INVALID_ARGUMENT: %s", rpc_call_peer(call), ESCAPED(err));
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "%s", err);
	}
	if (maitred_refuse_if_frozen(((struct vmtools_net *)userdata)->core, call))
		return;
	r = maitred_resolv_write(opts->resolv_conf, req->resolv_config, &path);
	if (r < 0) {
		log_info("SetResolvConfig from %s: could not write %s: %s", rpc_call_peer(call), opts->resolv_conf,
			 strerror(-r));
		return rpc_call_fail(call, RPC_INTERNAL, "could not write %s: %s", opts->resolv_conf, strerror(-r));
	}
	log_info("SetResolvConfig from %s: OK: %s has %zu nameserver(s), %zu search domain(s)", rpc_call_peer(call),
		 path, req->resolv_config->n_nameservers, req->resolv_config->n_search_domains);
	rpc_call_reply(call, &resp.base);
}
