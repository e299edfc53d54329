/* Option parsing shared by the subcommands. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/parse.h"
#include "maitctl.h"

int maitctl_parse_seconds(const char *s, uint64_t *ret_usec)
{
	return parse_seconds_range(s, true, 86400 * 365, ret_usec);
}

int maitctl_help(const char *help, int c)
{
	fputs(help, c == 'h' ? stdout : stderr);
	return c == 'h' ? 0 : MAITCTL_EXIT_USAGE;
}

int maitctl_no_stray(int argc, char **argv)
{
	if (optind >= argc)
		return -1;
	fprintf(stderr, "maitctl %s: unexpected argument '%s'\n", argv[0], argv[optind]);
	return MAITCTL_EXIT_USAGE;
}

int maitctl_no_args(int argc, char **argv, const char *help)
{
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, {} };
	int c = getopt_long(argc, argv, "+h", longopts, NULL);

	if (c >= 0)
		return maitctl_help(help, c);
	return maitctl_no_stray(argc, argv);
}
