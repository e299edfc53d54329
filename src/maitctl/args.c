/* Option parsing shared by the subcommands that take no arguments. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "maitctl.h"

int maitctl_no_args(int argc, char **argv, const char *help)
{
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, {} };
	int c;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		fputs(help, c == 'h' ? stdout : stderr);
		return c == 'h' ? 0 : MAITCTL_EXIT_USAGE;
	}
	if (optind < argc) {
		fprintf(stderr, "maitctl %s: unexpected argument '%s'\n", argv[0], argv[optind]);
		return MAITCTL_EXIT_USAGE;
	}
	return -1;
}
