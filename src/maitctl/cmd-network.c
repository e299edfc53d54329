#include <arpa/inet.h>
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
static int parse_ipv4(const char *opt, const char *s, uint32_t *ret)
{
	struct in_addr in;
	if (inet_pton(AF_INET, s, &in) != 1) {
		fprintf(stderr, "maitctl network: invalid %s '%s': expected a dotted IPv4 address\n", opt, s);
		return -EINVAL;
	}
	*ret = in.s_addr;
	return 0;
}

static int run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "address", required_argument, NULL, 'a' },
		{ "netmask", required_argument, NULL, 'n' },
		{ "gateway", required_argument, NULL, 'g' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	VmTools__IPv4Config cfg = VM_TOOLS__IPV4_CONFIG__INIT;
	VmTools__NetworkConfigRequest req = VM_TOOLS__NETWORK_CONFIG_REQUEST__INIT;
	bool have_addr = false, have_mask = false, have_gw = false;
	char addr[64];
	int c;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		switch (c) {
		case 'a': {
			snprintf(addr, sizeof(addr), "%s", optarg);
			char *slash = strchr(addr, '/');
			if (slash) {
				uint64_t prefix;
				*slash = 0;
				if (parse_u64(slash + 1, 32, &prefix) < 0 || prefix == 0) {
					fprintf(stderr, "maitctl network: invalid prefix in '%s': expected 1-32\n",
						optarg);
					return MAITCTL_EXIT_USAGE;
				}
				cfg.netmask = htonl((uint32_t)(~0ull << (32 - prefix)));
				have_mask = true;
			}
			if (parse_ipv4("--address", addr, &cfg.address) < 0)
				return MAITCTL_EXIT_USAGE;
			have_addr = true;
			break;
		}
		case 'n':
			if (parse_ipv4("--netmask", optarg, &cfg.netmask) < 0)
				return MAITCTL_EXIT_USAGE;
			have_mask = true;
			break;
		case 'g':
			if (parse_ipv4("--gateway", optarg, &cfg.gateway) < 0)
				return MAITCTL_EXIT_USAGE;
			have_gw = true;
			break;
		default: return maitctl_help(help, c);
		}
	}
	int r = maitctl_no_stray(argc, argv);
	if (r >= 0)
		return r;
	if (!have_addr || !have_mask || !have_gw) {
		fprintf(stderr,
			"maitctl network: --address, a netmask (--netmask or /PREFIX) and --gateway are required\n");
		return MAITCTL_EXIT_USAGE;
	}
	req.ipv4_config = &cfg;
	return maitctl_call_ok(ctl, "/vm_tools.Maitred/ConfigureNetwork", &req.base);
}

const struct maitctl_command maitctl_cmd_network = { .name = "network",
						     .summary = "configure the guest's IPv4 network",
						     .run = run };
