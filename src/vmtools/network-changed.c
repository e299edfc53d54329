/* OnHostNetworkChanged (and ResetIPv6, its deprecated predecessor): the
 * host's network changed under the VM. With the static IPv4 setup that
 * ConfigureNetwork gives, what can be stale in the guest is:
 *  - neighbour entries (the gateway's MAC may now be another): flushed;
 *  - the address and default route, if something removed them: the last
 *    ConfigureNetwork's values are set again;
 *  - IPv6 addresses and routes learned by SLAAC from the old network:
 *    IPv6 is switched off and on again on the interface (disable_ipv6),
 *    which drops them and starts autoconfiguration afresh.
 * There is no DNS cache in a valet guest (no nscd, no resolved); the
 * host sends SetResolvConfig if DNS changed. */
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "common.pb-c.h"
#include "vmtools.h"
#include "net/rtnl.h"

static int write_sysctl(const char *path, const char *value)
{
	_cleanup_close_ int fd = open(path, O_WRONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (write(fd, value, strlen(value)) < 0)
		return -errno;
	return 0;
}

/* Off and on again, only when IPv6 is on there now. 1 when done, 0 when
 * there was nothing to do. */
static int reset_ipv6(const char *ifname)
{
	char path[128], v = 0;
	_cleanup_close_ int fd = -1;
	int r;

	snprintf(path, sizeof(path), "/proc/sys/net/ipv6/conf/%s/disable_ipv6", ifname);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* no IPv6 in this kernel */
	if (read(fd, &v, 1) != 1 || v != '0')
		return 0;
	r = write_sysctl(path, "1");
	if (r < 0)
		return r;
	r = write_sysctl(path, "0");
	return r < 0 ? r : 1;
}

static void fail(struct rpc_call *call, const char *name, int code, const char *what, int err)
{
	log_info("%s from %s: %s: %s: %s", name, rpc_call_peer(call), rpc_code_name(code), what, strerror(err));
	rpc_call_fail(call, code, "%s: %s", what, strerror(err));
}

void maitred_on_host_network_changed(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	struct vmtools_net *m = userdata;
	const char *name = strrchr(rpc_call_method(call), '/') + 1;
	const char *ifname = m->core->opts.interface;
	_cleanup_close_ int fd = -1;
	unsigned flushed = 0;
	int ifindex, r, v6;
	char what[96];

	ifindex = (int)if_nametoindex(ifname);
	if (ifindex == 0) {
		snprintf(what, sizeof(what), "interface %s", ifname);
		return fail(call, name, RPC_FAILED_PRECONDITION, what, errno);
	}
	r = rtnl_open(&fd);
	if (r < 0)
		return fail(call, name, RPC_INTERNAL, "could not open rtnetlink", -r);
	if (m->core->net.configured) {
		r = rtnl_addr_replace_ipv4(fd, ifindex, m->core->net.address_be, m->core->net.prefixlen);
		if (r >= 0)
			r = rtnl_link_set_up(fd, ifindex);
		if (r >= 0)
			r = rtnl_route_replace_default_ipv4(fd, ifindex, m->core->net.gateway_be);
		if (r < 0)
			return fail(call, name, RPC_INTERNAL, "could not set the IPv4 configuration again", -r);
	}
	r = rtnl_neigh_flush(fd, ifindex, &flushed);
	if (r == -EAGAIN)
		return fail(call, name, RPC_UNAVAILABLE,
			    "learned neighbour entries still there after 65536 were flushed", -r);
	if (r < 0)
		return fail(call, name, RPC_INTERNAL, "could not flush neighbour entries", -r);
	v6 = reset_ipv6(ifname);
	if (v6 < 0)
		return fail(call, name, RPC_INTERNAL, "could not reset IPv6", -v6);
	log_info("%s from %s: OK: %s: %s, %u neighbour entr%s flushed, IPv6 %s", name, rpc_call_peer(call), ifname,
		 m->core->net.configured ? "IPv4 set again" : "no IPv4 configured yet", flushed, flushed == 1 ? "y" : "ies",
		 v6 ? "reset" : "off");
	rpc_call_reply(call, &resp.base);
}
