#include <getopt.h>
#include <malloc.h>
#include <stdio.h>
#include <string.h>

#include "base/parse.h"
#include "maitctl.h"

static const struct maitctl_command *const commands[] = {
	&maitctl_cmd_network,
	&maitctl_cmd_launch,
	&maitctl_cmd_mount,
	&maitctl_cmd_shutdown,
	&maitctl_cmd_wait_ready,
	&maitctl_cmd_set_time,
	&maitctl_cmd_set_timezone,
	&maitctl_cmd_set_dns,
	&maitctl_cmd_kernel_version,
	&maitctl_cmd_space,
	&maitctl_cmd_resize,
	&maitctl_cmd_resize_status,
	&maitctl_cmd_resize_bounds,
	&maitctl_cmd_suspend_prep,
	&maitctl_cmd_network_changed,
	&maitctl_cmd_cp,
	&maitctl_cmd_stat,
	&maitctl_cmd_ls,
	&maitctl_cmd_mkdir,
	&maitctl_cmd_rm,
	&maitctl_cmd_mv,
	&maitctl_cmd_exec,
	&maitctl_cmd_attach,
	&maitctl_cmd_ps,
	&maitctl_cmd_kill,
	&maitctl_cmd_freeze,
	&maitctl_cmd_thaw,
	&maitctl_cmd_restored,
	&maitctl_cmd_forward,
};

static void usage(FILE *f)
{
	fputs("Usage: maitctl [--addr ADDR | --cid N] [--timeout SECONDS] [--json] COMMAND [ARGS...]\n"
	      "\n"
	      "Calls vm_tools.Maitred and valet.v1's Files, Process, Snapshot and Tunnel in a guest.\n"
	      "\n"
	      "  --addr ADDR        the guest's maitred: " ADDR_SYNTAX "\n"
	      "  --cid N            shorthand for --addr vsock:N:8888\n"
	      "  --timeout SECONDS  deadline of the call (default 30, none for cp; 0 for none)\n"
	      "  --json             print results as JSON on stdout\n"
	      "\n"
	      "Commands:\n",
	      f);
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "  %-15s %s\n", commands[i]->name, commands[i]->summary);
	fputs("\nRun 'maitctl COMMAND --help' for a command's options.\n"
	      "Exit status: 0 on success, 1 on an RPC error, 2 on a usage error;\n"
	      "'launch --wait', 'exec' and 'attach' exit with the process's status (128+N if\n"
	      "killed by signal N); 'exec' and 'attach' exit 123 when the connection is lost.\n",
	      f);
}

int main(int argc, char **argv)
{
	enum { OPT_ADDR = 0x100, OPT_CID, OPT_TIMEOUT, OPT_JSON };
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "cid", required_argument, NULL, OPT_CID },
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "json", no_argument, NULL, OPT_JSON },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct maitctl ctl = { .timeout_usec = 30 * 1000000ull };
	char buf[64];
	uint32_t cid;
	int c;

	/* A copy sends and receives messages of 126 KiB, one allocated and
	 * freed after another: with glibc's default thresholds the heap's
	 * top was given back after each and faulted in again for the next
	 * (24 000 page faults per GiB sent). Fixed thresholds: blocks up to
	 * 1 MiB from the heap, and up to 4 MiB free kept at its top (a
	 * forward that served a burst gives back what is above). */
	(void)mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 4 * 1024 * 1024);

	/* '+': options after the command name belong to the command. */
	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		switch (c) {
		case OPT_ADDR:
			if (addr_parse(optarg, &ctl.addr) < 0) {
				fprintf(stderr, "maitctl: invalid --addr '%s': expected %s\n", optarg, ADDR_SYNTAX);
				return MAITCTL_EXIT_USAGE;
			}
			ctl.have_addr = true;
			break;
		case OPT_CID:
			if (parse_u32(optarg, &cid) < 0) {
				fprintf(stderr, "maitctl: invalid --cid '%s': expected a number\n", optarg);
				return MAITCTL_EXIT_USAGE;
			}
			snprintf(buf, sizeof(buf), "vsock:%u:8888", cid);
			(void)addr_parse(buf, &ctl.addr);
			ctl.have_addr = true;
			break;
		case OPT_TIMEOUT:
			if (maitctl_parse_seconds(optarg, &ctl.timeout_usec) < 0) {
				fprintf(stderr, "maitctl: invalid --timeout '%s': expected seconds\n", optarg);
				return MAITCTL_EXIT_USAGE;
			}
			ctl.timeout_set = true;
			break;
		case OPT_JSON: ctl.json = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return MAITCTL_EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return MAITCTL_EXIT_USAGE;
	}
	const char *name = argv[optind];
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++) {
		if (strcmp(commands[i]->name, name) != 0)
			continue;
		bool help = argc - optind > 1 &&
			    (strcmp(argv[optind + 1], "--help") == 0 || strcmp(argv[optind + 1], "-h") == 0);
		if (!ctl.have_addr && !help && !commands[i]->local) {
			fprintf(stderr, "maitctl: no guest given: use --addr ADDR or --cid N\n");
			return MAITCTL_EXIT_USAGE;
		}
		/* Each command parses its own options from its name on. */
		int sub_argc = argc - optind;
		char **sub_argv = argv + optind;
		optind = 0;
		if (!commands[i]->run)
			return maitctl_run_query(&ctl, sub_argc, sub_argv, commands[i]->query);
		return commands[i]->run(&ctl, sub_argc, sub_argv);
	}
	fprintf(stderr, "maitctl: unknown command '%s' (try --help)\n", name);
	return MAITCTL_EXIT_USAGE;
}
