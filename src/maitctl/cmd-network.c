#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/parse.h"
#include "guest.pb-c.h"
#include "maitctl.h"

static const char help[] = "Usage: maitctl network --address A[/PREFIX] [--netmask M] --gateway G\n"
			   "\n"
			   "Sets the guest's IPv4 address, netmask and default route.\n"
			   "  --address A[/PREFIX]  IPv4 address, optionally with a prefix length\n"
			   "  --netmask M           dotted netmask (instead of /PREFIX)\n"
			   "  --gateway G           default gateway\n";

/* Dotted quad to s_addr as the wire carries it (no byte swap). */
static int parse_ipv4(const char *cmd, const char *opt, const char *s, uint32_t *ret)
{
	struct in_addr in;
	if (inet_pton(AF_INET, s, &in) != 1) {
		fprintf(stderr, "maitctl %s: invalid %s '%s': expected a dotted IPv4 address\n", cmd, opt, s);
		return -EINVAL;
	}
	*ret = in.s_addr;
	return 0;
}

int maitctl_net_option(const char *cmd, int c, const char *arg, struct maitctl_net_opts *o)
{
	switch (c) {
	case 'a': {
		char addr[64];
		snprintf(addr, sizeof(addr), "%s", arg);
		char *slash = strchr(addr, '/');
		if (slash) {
			uint64_t prefix;
			*slash = 0;
			if (parse_u64(slash + 1, 32, &prefix) < 0 || prefix == 0) {
				fprintf(stderr, "maitctl %s: invalid prefix in '%s': expected 1-32\n", cmd, arg);
				return -EINVAL;
			}
			o->cfg.netmask = htonl((uint32_t)(~0ull << (32 - prefix)));
			o->have_mask = true;
		}
		if (parse_ipv4(cmd, "--address", addr, &o->cfg.address) < 0)
			return -EINVAL;
		o->have_addr = true;
		return 0;
	}
	case 'n':
		if (parse_ipv4(cmd, "--netmask", arg, &o->cfg.netmask) < 0)
			return -EINVAL;
		o->have_mask = true;
		return 0;
	case 'g':
		if (parse_ipv4(cmd, "--gateway", arg, &o->cfg.gateway) < 0)
			return -EINVAL;
		o->have_gw = true;
		return 0;
	}
	return -ENOENT;
}

int maitctl_net_check(const char *cmd, const struct maitctl_net_opts *o)
{
	if (o->have_addr && o->have_mask && o->have_gw)
		return 0;
	fprintf(stderr, "maitctl %s: --address, a netmask (--netmask or /PREFIX) and --gateway are required\n", cmd);
	return -EINVAL;
}

static int run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		MAITCTL_NET_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	VmTools__NetworkConfigRequest req = VM_TOOLS__NETWORK_CONFIG_REQUEST__INIT;
	struct maitctl_net_opts o = { .cfg = VM_TOOLS__IPV4_CONFIG__INIT };
	int c;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		int r = maitctl_net_option("network", c, optarg, &o);
		if (r == -ENOENT)
			return maitctl_help(help, c);
		if (r < 0)
			return MAITCTL_EXIT_USAGE;
	}
	int r = maitctl_no_stray(argc, argv);
	if (r >= 0)
		return r;
	if (maitctl_net_check("network", &o) < 0)
		return MAITCTL_EXIT_USAGE;
	req.ipv4_config = &o.cfg;
	return maitctl_call_ok(ctl, "/vm_tools.Maitred/ConfigureNetwork", &req.base);
}

const struct maitctl_command maitctl_cmd_network = { .name = "network",
						     .summary = "configure the guest's IPv4 network",
						     .run = run };
