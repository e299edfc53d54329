/* ConfigureNetwork: IPv4 address, netmask and default route on one
 * interface through rtnetlink, plus loopback up. Repeating a request
 * replaces what the previous one set instead of failing. */
#include <arpa/inet.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>

#include "base/escape.h"
#include "base/log.h"
#include "common.pb-c.h"
#include "guest.pb-c.h"
#include "vmtools.h"
#include "net/rtnl.h"

/* -1 when the mask has holes. */
static int netmask_prefix(uint32_t mask_be)
{
	uint32_t m = ntohl(mask_be);
	int n = __builtin_popcount(m);
	return (n == 0 ? 0 : (uint32_t)(~0u << (32 - n))) == m ? n : -1;
}

static void fail(struct rpc_call *call, int code, const char *what, int err)
{
	log_info("ConfigureNetwork from %s: %s: %s%s%s", rpc_call_peer(call), rpc_code_name(code), ESCAPED(what),
		 err ? ": " : "", err ? strerror(err) : "");
	if (err)
		rpc_call_fail(call, code, "%s: %s", what, strerror(err));
	else
		rpc_call_fail(call, code, "%s", what);
}

void maitred_configure_network(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__NetworkConfigRequest *req = (const VmTools__NetworkConfigRequest *)request;
	const VmTools__IPv4Config *cfg = req->ipv4_config;
	struct vmtools_net *m = userdata;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	char a[INET_ADDRSTRLEN], n[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
	_cleanup_close_ int fd = -1;
	int prefix, ifindex, lo, r;

	/* Same checks, order and messages as the original. */
	if (!cfg || cfg->address == 0)
		return fail(call, RPC_INVALID_ARGUMENT, "IPv4 address cannot be 0", 0);
	if (cfg->netmask == 0)
		return fail(call, RPC_INVALID_ARGUMENT, "IPv4 netmask cannot be 0", 0);
	if (cfg->gateway == 0)
		return fail(call, RPC_INVALID_ARGUMENT, "IPv4 gateway cannot be 0", 0);
	/* The fields hold s_addr as inet_pton gives it: no byte swap. */
	inet_ntop(AF_INET, &cfg->address, a, sizeof(a));
	inet_ntop(AF_INET, &cfg->netmask, n, sizeof(n));
	inet_ntop(AF_INET, &cfg->gateway, g, sizeof(g));
	prefix = netmask_prefix(cfg->netmask);
	if (prefix < 0) {
		char msg[64];
		snprintf(msg, sizeof(msg), "IPv4 netmask %s is not contiguous", n);
		return fail(call, RPC_INVALID_ARGUMENT, msg, 0);
	}
	/* Field 2 (added later): checked before anything changes. */
	if (req->resolv_config) {
		char msg[256];
		if (maitred_resolv_check(req->resolv_config, msg, sizeof(msg)) < 0)
			return fail(call, RPC_INVALID_ARGUMENT, msg, 0);
	}

	ifindex = (int)if_nametoindex(m->core->opts.interface);
	if (ifindex == 0)
		return fail(call, RPC_INTERNAL, "failed to set IPv4 address", errno);
	r = rtnl_open(&fd);
	if (r < 0)
		return fail(call, RPC_INTERNAL, "failed to create socket", -r);
	r = rtnl_addr_replace_ipv4(fd, ifindex, cfg->address, (uint8_t)prefix);
	if (r < 0)
		return fail(call, RPC_INTERNAL, "failed to set IPv4 address", -r);
	r = rtnl_link_set_up(fd, ifindex);
	if (r < 0)
		return fail(call, RPC_INTERNAL, "failed to enable network interface", -r);
	lo = (int)if_nametoindex("lo");
	r = lo ? rtnl_link_set_up(fd, lo) : -errno;
	if (r < 0)
		return fail(call, RPC_INTERNAL, "failed to enable loopback interface", -r);
	r = rtnl_route_replace_default_ipv4(fd, ifindex, cfg->gateway);
	if (r < 0)
		return fail(call, RPC_INTERNAL, "failed to set IPv4 gateway", -r);
	m->net = (struct maitred_net_state){
		.configured = true, .address_be = cfg->address, .gateway_be = cfg->gateway, .prefixlen = (uint8_t)prefix
	};
	if (req->resolv_config) {
		const char *path;
		r = maitred_resolv_write(m->core->opts.resolv_conf, req->resolv_config, &path);
		if (r < 0)
			return fail(call, RPC_INTERNAL, "failed to write resolv.conf", -r);
		log_info("ConfigureNetwork from %s: %s written", rpc_call_peer(call), path);
	}

	log_info("ConfigureNetwork from %s: OK: %s address %s/%d, gateway %s, lo up", rpc_call_peer(call),
		 m->core->opts.interface, a, prefix, g);
	rpc_call_reply(call, &resp.base);
}
