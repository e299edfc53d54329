/* set-time and set-timezone: the guest's clock and time zone. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest.pb-c.h"
#include "maitctl.h"

static const char set_time_help[] = "Usage: maitctl set-time [--now | SECONDS]\n"
				    "\n"
				    "Sets the guest's wall clock (SetTime): to this host's time (--now, the\n"
				    "default), or to SECONDS since the epoch (fractions allowed).\n";

static int set_time(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "now", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	VmTools__SetTimeRequest req = VM_TOOLS__SET_TIME_REQUEST__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	bool now = false;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
		if (c != 'n')
			return maitctl_help(set_time_help, c);
		now = true;
	}
	if (argc - optind > 1 || (now && argc - optind == 1)) {
		fprintf(stderr, "maitctl set-time: expected --now or one SECONDS argument\n");
		return MAITCTL_EXIT_USAGE;
	}
	if (argc - optind == 1) {
		if (maitctl_parse_epoch(argv[optind], &ts.seconds, &ts.nanos) < 0) {
			fprintf(stderr, "maitctl set-time: invalid SECONDS '%s': expected seconds since the epoch\n",
				argv[optind]);
			return MAITCTL_EXIT_USAGE;
		}
	} else {
		struct timespec t;
		(void)clock_gettime(CLOCK_REALTIME, &t);
		ts.seconds = t.tv_sec;
		ts.nanos = (int32_t)t.tv_nsec;
	}
	req.time = &ts;
	if (maitctl_call_empty(ctl, "/vm_tools.Maitred/SetTime", &req.base) != 0)
		return MAITCTL_EXIT_RPC_ERROR;
	if (ctl->json)
		printf("{\"seconds\":%lld,\"nanos\":%d}\n", (long long)ts.seconds, ts.nanos);
	else
		puts("OK");
	return 0;
}

static const char set_timezone_help[] =
	"Usage: maitctl set-timezone [--bind-mount] NAME\n"
	"\n"
	"Sets the guest's time zone (SetTimezone) to NAME, a zone under the guest's\n"
	"/usr/share/zoneinfo such as UTC or Europe/Paris.\n"
	"  --bind-mount   bind-mount the zone file on /etc/localtime instead of a symlink\n";

static int set_timezone(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "bind-mount", no_argument, NULL, 'b' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	VmTools__SetTimezoneRequest req = VM_TOOLS__SET_TIMEZONE_REQUEST__INIT;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
		if (c != 'b')
			return maitctl_help(set_timezone_help, c);
		req.use_bind_mount = true;
	}
	if (argc - optind != 1) {
		fprintf(stderr, "maitctl set-timezone: expected one zone NAME, got %d argument(s)\n", argc - optind);
		return MAITCTL_EXIT_USAGE;
	}
	req.timezone_name = argv[optind];
	if (maitctl_call_empty(ctl, "/vm_tools.Maitred/SetTimezone", &req.base) != 0)
		return MAITCTL_EXIT_RPC_ERROR;
	if (ctl->json) {
		printf("{\"timezone\":");
		maitctl_json_string(req.timezone_name);
		printf(",\"bind_mount\":%s}\n", req.use_bind_mount ? "true" : "false");
	} else
		puts("OK");
	return 0;
}

const struct maitctl_command maitctl_cmd_set_time = { .name = "set-time",
						      .summary = "set the guest's clock",
						      .run = set_time };
const struct maitctl_command maitctl_cmd_set_timezone = { .name = "set-timezone",
							  .summary = "set the guest's time zone",
							  .run = set_timezone };
