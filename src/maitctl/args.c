/* Option parsing shared by the subcommands. */
#include <getopt.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
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

int maitctl_parse_epoch(const char *s, int64_t *ret_sec, int32_t *ret_nsec)
{
	char *end;
	long long sec;
	int32_t nsec = 0;

	if (*s < '0' || *s > '9')
		return -EINVAL;
	sec = strtoll(s, &end, 10);
	if (*end == '.') {
		int digits = 0;
		for (end++; *end >= '0' && *end <= '9'; end++, digits++)
			if (digits < 9)
				nsec = nsec * 10 + (*end - '0');
		if (digits == 0)
			return -EINVAL;
		for (; digits < 9; digits++)
			nsec *= 10;
	}
	if (*end || sec < 0 || sec > 253402300799LL)
		return -EINVAL;
	*ret_sec = sec;
	*ret_nsec = nsec;
	return 0;
}
