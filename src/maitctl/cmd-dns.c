/* set-dns: the guest's resolv.conf (SetResolvConfig). */
#include <getopt.h>
#include <stdio.h>

#include "guest.pb-c.h"
#include "maitctl.h"

#define MAX_ENTRIES 64 /* more than resolv.conf allows: the guest says no */

static const char help[] = "Usage: maitctl set-dns [--nameserver IP]... [--search DOMAIN]...\n"
			   "\n"
			   "Writes the guest's resolv.conf (SetResolvConfig) with exactly these entries,\n"
			   "in this order. The guest checks them (IPv4/IPv6 literals, host names, at\n"
			   "most 3 nameservers and 6 search domains).\n";

static void json_list(const char *name, char **v, size_t n)
{
	printf("\"%s\":[", name);
	for (size_t i = 0; i < n; i++) {
		if (i)
			putchar(',');
		maitctl_json_string(v[i]);
	}
	putchar(']');
}

static int run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "nameserver", required_argument, NULL, 'n' },
		{ "search", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	VmTools__SetResolvConfigRequest req = VM_TOOLS__SET_RESOLV_CONFIG_REQUEST__INIT;
	VmTools__ResolvConfig rc = VM_TOOLS__RESOLV_CONFIG__INIT;
	char *ns[MAX_ENTRIES], *search[MAX_ENTRIES];
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
		if (c != 'n' && c != 's')
			return maitctl_help(help, c);
		size_t *n = c == 'n' ? &rc.n_nameservers : &rc.n_search_domains;
		if (*n == MAX_ENTRIES) {
			fprintf(stderr, "maitctl set-dns: too many entries (at most %d each)\n", MAX_ENTRIES);
			return MAITCTL_EXIT_USAGE;
		}
		(c == 'n' ? ns : search)[(*n)++] = optarg;
	}
	int r = maitctl_no_stray(argc, argv);
	if (r >= 0)
		return r;
	rc.nameservers = ns;
	rc.search_domains = search;
	req.resolv_config = &rc;
	if (maitctl_call_empty(ctl, "/vm_tools.Maitred/SetResolvConfig", &req.base) != 0)
		return MAITCTL_EXIT_RPC_ERROR;
	if (ctl->json) {
		putchar('{');
		json_list("nameservers", ns, rc.n_nameservers);
		putchar(',');
		json_list("search_domains", search, rc.n_search_domains);
		puts("}");
	} else
		puts("OK");
	return 0;
}

const struct maitctl_command maitctl_cmd_set_dns = { .name = "set-dns",
						     .summary = "write the guest's resolv.conf",
						     .run = run };
