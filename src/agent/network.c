/* Repeating a request replaces what the previous one set instead of
 * failing. resolv.conf is written atomically to --resolv-conf (default
 * /etc/resolv.conf); a symlink there is followed one level (an image may
 * point /etc/resolv.conf at /run/resolv.conf); a read-only /etc makes us
 * write /run/resolv.conf. */
#include "network.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/macro.h"
#include "guest-config.h"
#include "net/rtnl.h"
#include "rpc/status.h"

#define RUN_RESOLV_CONF "/run/resolv.conf"

_printf_(4, 5) static int fail(struct maitred_net_error *err, int r, int code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return r;
}

/* -1 when the mask has holes. */
static int netmask_prefix(uint32_t mask_be)
{
	uint32_t m = ntohl(mask_be);
	int n = __builtin_popcount(m);
	return (n == 0 ? 0 : (uint32_t)(~0u << (32 - n))) == m ? n : -1;
}

/* The checks, as the original makes them (same order and messages); the
 * prefix length of a good netmask. */
static int check(const struct maitred *m, const VmTools__NetworkConfigRequest *req, struct maitred_net_error *err)
{
	const VmTools__IPv4Config *cfg = req->ipv4_config;
	char n[INET_ADDRSTRLEN];
	int prefix;

	if (!cfg || cfg->address == 0)
		return fail(err, -EINVAL, RPC_INVALID_ARGUMENT, "IPv4 address cannot be 0");
	if (cfg->netmask == 0)
		return fail(err, -EINVAL, RPC_INVALID_ARGUMENT, "IPv4 netmask cannot be 0");
	if (cfg->gateway == 0)
		return fail(err, -EINVAL, RPC_INVALID_ARGUMENT, "IPv4 gateway cannot be 0");
	/* The fields hold s_addr as inet_pton gives it: no byte swap. */
	inet_ntop(AF_INET, &cfg->netmask, n, sizeof(n));
	prefix = netmask_prefix(cfg->netmask);
	if (prefix < 0)
		return fail(err, -EINVAL, RPC_INVALID_ARGUMENT, "IPv4 netmask %s is not contiguous", n);
	/* Field 2 (added later): checked before anything changes. */
	if (req->resolv_config) {
		char why[sizeof(err->message)];
		if (maitred_resolv_check(req->resolv_config, why, sizeof(why)) < 0)
			return fail(err, -EINVAL, RPC_INVALID_ARGUMENT, "%s", why);
		if (m->frozen)
			return fail(err, -EBUSY, RPC_FAILED_PRECONDITION, "resolv_config: %s", MAITRED_FROZEN_MESSAGE);
	}
	return prefix;
}

int maitred_network_check(const struct maitred *m, const VmTools__NetworkConfigRequest *req,
			  struct maitred_net_error *err)
{
	int r = check(m, req, err);
	return r < 0 ? r : 0;
}

int maitred_network_configure(struct maitred *m, const VmTools__NetworkConfigRequest *req,
			      const char **ret_resolv_path, char *summary, size_t summary_len,
			      struct maitred_net_error *err)
{
	const VmTools__IPv4Config *cfg = req->ipv4_config;
	char a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
	const char *ifname = m->opts.interface;
	const char *path = NULL;
	_cleanup_close_ int fd = -1;
	int prefix, ifindex, lo, r;

	prefix = check(m, req, err);
	if (prefix < 0)
		return prefix;
	inet_ntop(AF_INET, &cfg->address, a, sizeof(a));
	inet_ntop(AF_INET, &cfg->gateway, g, sizeof(g));

	ifindex = (int)if_nametoindex(ifname);
	if (ifindex == 0)
		return fail(err, -errno, RPC_INTERNAL, "failed to set IPv4 address: %s", strerror(errno));
	r = rtnl_open(&fd);
	if (r < 0)
		return fail(err, r, RPC_INTERNAL, "failed to create socket: %s", strerror(-r));
	r = rtnl_addr_replace_ipv4(fd, ifindex, cfg->address, (uint8_t)prefix);
	if (r < 0)
		return fail(err, r, RPC_INTERNAL, "failed to set IPv4 address: %s", strerror(-r));
	r = rtnl_link_set_up(fd, ifindex);
	if (r < 0)
		return fail(err, r, RPC_INTERNAL, "failed to enable network interface: %s", strerror(-r));
	lo = (int)if_nametoindex("lo");
	r = lo ? rtnl_link_set_up(fd, lo) : -errno;
	if (r < 0)
		return fail(err, r, RPC_INTERNAL, "failed to enable loopback interface: %s", strerror(-r));
	r = rtnl_route_replace_default_ipv4(fd, ifindex, cfg->gateway);
	if (r < 0)
		return fail(err, r, RPC_INTERNAL, "failed to set IPv4 gateway: %s", strerror(-r));
	m->net = (struct maitred_net_state){
		.configured = true, .address_be = cfg->address, .gateway_be = cfg->gateway, .prefixlen = (uint8_t)prefix
	};
	if (req->resolv_config) {
		r = maitred_resolv_write(m->opts.resolv_conf, req->resolv_config, &path);
		if (r < 0)
			return fail(err, r, RPC_INTERNAL, "failed to write resolv.conf: %s", strerror(-r));
	}
	snprintf(summary, summary_len, "%s address %s/%d, gateway %s, lo up", ifname, a, prefix, g);
	*ret_resolv_path = path;
	return 0;
}

int maitred_resolv_check(const VmTools__ResolvConfig *rc, char *err, size_t errlen)
{
	return guest_check_resolv(rc->nameservers, rc->n_nameservers, rc->search_domains, rc->n_search_domains, err,
				  errlen);
}

int maitred_resolv_write(const char *resolv_conf, const VmTools__ResolvConfig *rc, const char **ret_path)
{
	static char target[PATH_MAX];
	_cleanup_free_ char *text = NULL;
	const char *path = resolv_conf;
	ssize_t n;
	int r;

	r = guest_render_resolv(rc->nameservers, rc->n_nameservers, rc->search_domains, rc->n_search_domains, &text);
	if (r < 0)
		return r;
	n = readlink(path, target, sizeof(target) - 1);
	if (n > 0 && target[0] == '/') {
		target[n] = 0;
		path = target;
	}
	r = guest_write_file_atomic(path, text, strlen(text), 0644);
	if (r == -EROFS && strcmp(resolv_conf, "/etc/resolv.conf") == 0) {
		path = RUN_RESOLV_CONF;
		r = guest_write_file_atomic(path, text, strlen(text), 0644);
	}
	if (r < 0)
		return r;
	*ret_path = path;
	return 0;
}
