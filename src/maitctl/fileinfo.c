/* Guest paths on the command line, FileInfo as text and JSON, local
 * errors printed as guest ones. */
#include <stdarg.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "files.h"
#include "files/status.h"

const char *maitctl_guest_path(const char *arg)
{
	return arg[0] == ':' ? arg + 1 : NULL;
}

int maitctl_guest_arg(const char *cmd, const char *arg, const char **ret)
{
	const char *p = maitctl_guest_path(arg);

	if (!p)
		p = arg;
	if (p[0] != '/') {
		fprintf(stderr, "maitctl %s: guest path '%s' is not absolute\n", cmd, arg);
		return MAITCTL_EXIT_USAGE;
	}
	*ret = p;
	return 0;
}

int maitctl_one_guest_arg(const char *cmd, int argc, char **argv, const char **ret)
{
	if (argc - optind != 1) {
		fprintf(stderr, "maitctl %s: expected one PATH, got %d argument(s)\n", cmd, argc - optind);
		return MAITCTL_EXIT_USAGE;
	}
	return maitctl_guest_arg(cmd, argv[optind], ret);
}

int maitctl_parse_mode(const char *cmd, const char *opt, const char *arg, uint32_t *ret)
{
	char *end;
	unsigned long mode = strtoul(arg, &end, 8);

	if (!*arg || *end || mode > 07777) {
		fprintf(stderr, "maitctl %s: invalid %s '%s': expected an octal mode up to 7777\n", cmd, opt, arg);
		return MAITCTL_EXIT_USAGE;
	}
	*ret = (uint32_t)mode;
	return 0;
}

const char *maitctl_type_name(int type)
{
	switch (type) {
	case VALET__V1__FILE_INFO__TYPE__FILE: return "file";
	case VALET__V1__FILE_INFO__TYPE__DIRECTORY: return "directory";
	case VALET__V1__FILE_INFO__TYPE__SYMLINK: return "symlink";
	case VALET__V1__FILE_INFO__TYPE__OTHER: return "other";
	default: return "unknown";
	}
}

void maitctl_mode_string(int type, uint32_t mode, char buf[static 11])
{
	static const char rwx[] = "rwxrwxrwx";

	buf[0] = type == VALET__V1__FILE_INFO__TYPE__DIRECTORY ? 'd'
		 : type == VALET__V1__FILE_INFO__TYPE__SYMLINK ? 'l'
		 : type == VALET__V1__FILE_INFO__TYPE__FILE    ? '-'
							       : '?';
	for (int i = 0; i < 9; i++)
		buf[1 + i] = (mode & (0400u >> i)) ? rwx[i] : '-';
	if (mode & S_ISUID)
		buf[3] = (mode & S_IXUSR) ? 's' : 'S';
	if (mode & S_ISGID)
		buf[6] = (mode & S_IXGRP) ? 's' : 'S';
	if (mode & S_ISVTX)
		buf[9] = (mode & S_IXOTH) ? 't' : 'T';
	buf[10] = '\0';
}

void maitctl_time_string(const Google__Protobuf__Timestamp *t, bool iso, char buf[static 40])
{
	time_t sec = t ? (time_t)t->seconds : 0;
	struct tm tm;
	size_t n;

	if (!gmtime_r(&sec, &tm)) {
		snprintf(buf, 40, "%lld", (long long)sec);
		return;
	}
	n = strftime(buf, 40, iso ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d %H:%M", &tm);
	if (iso)
		snprintf(buf + n, 40 - n, ".%09dZ", t ? t->nanos : 0);
}

void maitctl_hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
	out[2 * n] = '\0';
}

void maitctl_info_json(const Valet__V1__FileInfo *i)
{
	char t[40];

	maitctl_time_string(i->mtime, true, t);
	printf("{\"path\":");
	maitctl_json_string(i->path);
	printf(",\"type\":\"%s\",\"size\":%llu,\"mode\":\"%04o\",\"uid\":%u,\"gid\":%u,\"owner\":",
	       maitctl_type_name(i->type), (unsigned long long)i->size, (unsigned)i->mode, (unsigned)i->uid,
	       (unsigned)i->gid);
	maitctl_json_string(i->owner);
	printf(",\"group\":");
	maitctl_json_string(i->group);
	printf(",\"mtime\":\"%s\"", t);
	if (i->type == VALET__V1__FILE_INFO__TYPE__SYMLINK) {
		printf(",\"symlink_target\":");
		maitctl_json_string(i->symlink_target);
	}
	putchar('}');
}

void maitctl_info_json_line(const struct maitctl *ctl, const Valet__V1__FileInfo *i)
{
	if (!ctl->json)
		return;
	maitctl_info_json(i);
	putchar('\n');
}

int maitctl_local_error(const struct maitctl *ctl, int r, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	maitctl_print_error(ctl, files_grpc_code(r), msg);
	return MAITCTL_EXIT_RPC_ERROR;
}
