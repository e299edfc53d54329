/* maitctl stat and ls: a guest path's FileInfo (valet.v1.Files/Stat) and
 * a directory's entries (Files/List, a server stream printed as it
 * arrives). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/escape.h"
#include "base/parse.h"
#include "files.h"
#include "rpc/status.h"

/* Guest names, whole (escape_str() stops at 255 bytes), with their
 * control characters escaped. */
#define ESC_MAX (4 * FILES_PATH_MAX_GUEST + 1)
#define FILES_PATH_MAX_GUEST 4096
#define esc_str(s, buf) escape_mem((s), strlen(s), (buf), sizeof(buf))

/* Owner as ls shows it: the name, or the number when the guest has none. */
static const char *id_name(const char *name, uint32_t id, char buf[static 16])
{
	if (name && name[0])
		return name;
	snprintf(buf, 16, "%u", (unsigned)id);
	return buf;
}

static void stat_usage(FILE *f)
{
	fputs("Usage: maitctl stat [-L] [--user NAME] [:]PATH\n"
	      "\n"
	      "Shows a guest path's type, size, mode, owner and mtime (valet.v1.Files/Stat).\n"
	      "  -L, --dereference  follow a symlink at PATH\n"
	      "      --user NAME    act as this guest user\n",
	      f);
}

static int stat_run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dereference", no_argument, NULL, 'L' },
		{ "user", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	Valet__V1__StatRequest req = VALET__V1__STAT_REQUEST__INIT;
	_cleanup_response_ Valet__V1__FileInfo *i = NULL;
	char mode[11], t[40], ub[16], gb[16], esc[ESC_MAX];
	const char *path;
	int c, r;

	while ((c = getopt_long(argc, argv, "Lh", longopts, NULL)) >= 0) {
		switch (c) {
		case 'L': req.follow_symlinks = true; break;
		case 'u': req.user = optarg; break;
		case 'h': stat_usage(stdout); return 0;
		default: stat_usage(stderr); return MAITCTL_EXIT_USAGE;
		}
	}
	r = maitctl_one_guest_arg("stat", argc, argv, &path);
	if (r)
		return r;
	req.path = (char *)path;
	if (maitctl_call(ctl, FILES_SERVICE "Stat", &req.base, &valet__v1__file_info__descriptor,
			 (ProtobufCMessage **)&i) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	if (ctl->json) {
		maitctl_info_json_line(ctl, i);
		return 0;
	}
	maitctl_mode_string(i->type, i->mode, mode);
	maitctl_time_string(i->mtime, true, t);
	printf("  Path: %s\n", esc_str(i->path, esc));
	printf("  Type: %s\n", maitctl_type_name(i->type));
	if (i->type == VALET__V1__FILE_INFO__TYPE__SYMLINK)
		printf("Target: %s\n", esc_str(i->symlink_target, esc));
	printf("  Size: %llu\n", (unsigned long long)i->size);
	printf("  Mode: %04o (%s)\n", (unsigned)i->mode, mode);
	printf(" Owner: %s (%u)\n", id_name(i->owner, i->uid, ub), (unsigned)i->uid);
	printf(" Group: %s (%u)\n", id_name(i->group, i->gid, gb), (unsigned)i->gid);
	printf("Modify: %s\n", t);
	return 0;
}

const struct maitctl_command maitctl_cmd_stat = { .name = "stat",
						  .summary = "show a guest file's metadata",
						  .run = stat_run };

struct listing {
	struct maitctl *ctl;
	const char *root;
	bool longfmt;
	uint64_t count;
};

/* An entry's path below the listed directory (entries come absolute). */
static const char *rel_path(const struct listing *l, const char *p)
{
	size_t n = strlen(l->root);

	if (n > 1 && strncmp(p, l->root, n) == 0 && p[n] == '/')
		return p + n + 1;
	if (n == 1 && p[0] == '/' && p[1])
		return p + 1;
	return p;
}

static int ls_message(struct maitctl_stream *s, const uint8_t *data, size_t len, void *userdata)
{
	struct listing *l = userdata;
	_cleanup_response_ Valet__V1__FileInfo *i = valet__v1__file_info__unpack(NULL, len, data);
	char mode[11], t[40], ub[16], gb[16], esc[ESC_MAX], esc2[ESC_MAX];

	if (!i)
		return maitctl_stream_fail(s, RPC_INTERNAL, "cannot decode the guest's FileInfo");
	l->count++;
	if (l->ctl->json) {
		maitctl_info_json(i);
		putchar('\n');
		return 0;
	}
	const char *name = esc_str(rel_path(l, i->path), esc);
	if (!l->longfmt) {
		puts(name);
		return 0;
	}
	maitctl_mode_string(i->type, i->mode, mode);
	maitctl_time_string(i->mtime, false, t);
	printf("%s %-8s %-8s %10llu %s %s", mode, id_name(i->owner, i->uid, ub), id_name(i->group, i->gid, gb),
	       (unsigned long long)i->size, t, name);
	if (i->type == VALET__V1__FILE_INFO__TYPE__SYMLINK)
		printf(" -> %s", esc_str(i->symlink_target, esc2));
	putchar('\n');
	return 0;
}

static const struct maitctl_stream_ops ls_ops = { ls_message, NULL };

static void ls_usage(FILE *f)
{
	fputs("Usage: maitctl ls [-l] [-R | --depth N] [--user NAME] [:]PATH\n"
	      "\n"
	      "Lists a guest directory (valet.v1.Files/List), entries as they arrive:\n"
	      "names relative to PATH, a directory before its contents. With --json, one\n"
	      "JSON object per entry and line (JSON Lines).\n"
	      "  -l                 long format: mode, owner, group, size, mtime (UTC), name\n"
	      "  -R                 recurse (as deep as the guest allows: 64 levels)\n"
	      "      --depth N      N levels (1: the directory's own entries)\n"
	      "      --user NAME    act as this guest user\n",
	      f);
}

static int ls_run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "depth", required_argument, NULL, 'd' },
		{ "user", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	Valet__V1__ListRequest req = VALET__V1__LIST_REQUEST__INIT;
	struct listing l = { .ctl = ctl };
	struct maitctl_stream s;
	const char *path;
	int c, r;

	while ((c = getopt_long(argc, argv, "lRh", longopts, NULL)) >= 0) {
		switch (c) {
		case 'l': l.longfmt = true; break;
		case 'R': req.depth = 64; break;
		case 'd':
			if (parse_u32(optarg, &req.depth) < 0 || req.depth == 0) {
				fprintf(stderr, "maitctl ls: invalid --depth '%s': expected a number from 1\n", optarg);
				return MAITCTL_EXIT_USAGE;
			}
			break;
		case 'u': req.user = optarg; break;
		case 'h': ls_usage(stdout); return 0;
		default: ls_usage(stderr); return MAITCTL_EXIT_USAGE;
		}
	}
	r = maitctl_one_guest_arg("ls", argc, argv, &path);
	if (r)
		return r;
	l.root = path;
	req.path = (char *)path;
	r = maitctl_stream_start(&s, ctl, FILES_SERVICE "List", ctl->timeout_usec, &ls_ops, &l);
	if (r)
		return r;
	if (maitctl_stream_send(&s, &req.base) >= 0)
		(void)maitctl_stream_close_send(&s);
	fflush(stdout);
	return maitctl_stream_finish(&s) == RPC_OK ? 0 : MAITCTL_EXIT_RPC_ERROR;
}

const struct maitctl_command maitctl_cmd_ls = { .name = "ls", .summary = "list a guest directory", .run = ls_run };
