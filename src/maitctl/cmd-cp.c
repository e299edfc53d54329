/* maitctl cp: files and trees between the host and the guest
 * (valet.v1.Files). Everything local is checked before the guest is
 * called: a missing or unreadable source, a destination directory that
 * is missing or not writable, --no-replace over an existing file. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/time-util.h"
#include "cp.h"
#include "files/path.h"
#include "files/status.h"
#include "rpc/status.h"

static void usage(FILE *f)
{
	fputs("Usage: maitctl cp [OPTIONS] SRC :DST      (host to guest)\n"
	      "       maitctl cp [OPTIONS] :SRC DST      (guest to host)\n"
	      "\n"
	      "Copies a file, or with -r a directory tree, into or out of the guest\n"
	      "(valet.v1.Files). A guest path is written :PATH (absolute); exactly one side\n"
	      "is one. '-' as the local side is standard input or output (one file).\n"
	      "A destination that is an existing directory, or ends in '/', receives\n"
	      "the source under its own name, as cp(1) does.\n"
	      "  -r, --recursive    copy a directory tree (modes, mtimes, symlinks, hard links)\n"
	      "  -p, --parents      create the destination's missing parent directories\n"
	      "      --user NAME    act as this guest user (permissions, owner of what is made)\n"
	      "      --no-replace   fail if the destination file exists (ALREADY_EXISTS)\n"
	      "      --sha256       verify the data end to end with SHA-256\n"
	      "      --mode MODE    the guest file's mode (octal; default: the local file's)\n"
	      "On a terminal a progress line is shown on stderr; --json (before cp) prints\n"
	      "the result as one JSON object. No deadline unless --timeout is given.\n",
	      f);
}

/* An absolute local path without ".", ".." (resolved by name, as the
 * shell's cd does) or repeated slashes. */
static int local_abs(const char *path, char *buf, size_t size)
{
	char tmp[PATH_MAX * 2], *save = NULL;
	size_t n = 0, l = 0;

	if (path[0] != '/') {
		if (!getcwd(tmp, PATH_MAX))
			return -errno;
		l = strlen(tmp);
		tmp[l++] = '/';
	}
	if (l + strlen(path) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp + l, path);
	for (char *c = strtok_r(tmp, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
		if (strcmp(c, ".") == 0)
			continue;
		if (strcmp(c, "..") == 0) {
			while (n > 0 && buf[--n] != '/')
				;
			continue;
		}
		size_t cl = strlen(c);
		if (n + 1 + cl + 1 > size)
			return -ENAMETOOLONG;
		buf[n++] = '/';
		memcpy(buf + n, c, cl);
		n += cl;
	}
	if (n == 0)
		buf[n++] = '/';
	buf[n] = '\0';
	return 0;
}

/* The last component of a path ("a/b/" gives "b"), in buf. */
static const char *base_name(const char *path, char *buf, size_t size)
{
	size_t len = strlen(path);

	while (len > 1 && path[len - 1] == '/')
		len--;
	size_t start = len;
	while (start > 0 && path[start - 1] != '/')
		start--;
	snprintf(buf, size, "%.*s", (int)(len - start), path + start);
	return buf;
}

static bool ends_in_slash(const char *p)
{
	size_t l = strlen(p);
	return l > 1 && p[l - 1] == '/';
}

/* A guest path without trailing slashes, "/" kept. */
static void guest_clean(const char *p, char *buf, size_t size)
{
	size_t l = strlen(p);
	while (l > 1 && p[l - 1] == '/')
		l--;
	snprintf(buf, size, "%.*s", (int)l, p);
}

/* Stat of a guest path, symlinks followed: 1 a directory, 0 something
 * else, 2 missing, or the exit code (printed) as a negative number. */
static int guest_kind(struct maitctl *ctl, const char *path, const char *user)
{
	Valet__V1__StatRequest req = VALET__V1__STAT_REQUEST__INIT;
	_cleanup_response_ Valet__V1__FileInfo *info = NULL;
	char msg[700];

	req.path = (char *)path;
	req.follow_symlinks = true;
	req.user = (char *)(user ? user : "");
	int code = maitctl_call_status(ctl, FILES_SERVICE "Stat", &req.base, &valet__v1__file_info__descriptor,
				       (ProtobufCMessage **)&info, msg, sizeof(msg));
	if (code == RPC_NOT_FOUND)
		return 2;
	if (code != RPC_OK) {
		maitctl_print_error(ctl, code, msg);
		return -MAITCTL_EXIT_RPC_ERROR;
	}
	return info->type == VALET__V1__FILE_INFO__TYPE__DIRECTORY;
}

/* Trees carry no digest, no replace policy and no single mode: refused
 * rather than ignored. */
static int tree_opts_check(const struct cp_opts *o)
{
	const char *opt = o->no_replace ? "--no-replace" : o->sha256 ? "--sha256" : o->has_mode ? "--mode" : NULL;

	if (!opt)
		return 0;
	fprintf(stderr, "maitctl cp: %s is for single files, not trees\n", opt);
	return MAITCTL_EXIT_USAGE;
}

static void print_result(const struct maitctl *ctl, const struct cp_result *res, uint64_t start)
{
	char hex[2 * SHA256_DIGEST_SIZE + 1];
	double elapsed = (double)(now_usec() - start) / 1e6;

	if (!ctl->json)
		return;
	printf("{\"path\":");
	maitctl_json_string(res->path);
	if (res->tree)
		printf(",\"files\":%llu,\"directories\":%llu,\"symlinks\":%llu", (unsigned long long)res->files,
		       (unsigned long long)res->directories, (unsigned long long)res->symlinks);
	printf(",\"bytes\":%llu", (unsigned long long)res->bytes);
	if (!res->tree) {
		if (res->has_sha256) {
			maitctl_hex(res->sha256, SHA256_DIGEST_SIZE, hex);
			printf(",\"sha256\":\"%s\"", hex);
		} else
			printf(",\"sha256\":null");
	}
	printf(",\"elapsed\":%.6f}\n", elapsed);
}

static int upload(struct maitctl *ctl, const struct cp_opts *o, const char *src, const char *dst_arg,
		  struct cp_result *res, char *guest, size_t size)
{
	char name[NAME_MAX + 1];
	_cleanup_close_ int fd = -1;
	bool from_stdin = strcmp(src, "-") == 0;
	struct stat st;

	if (from_stdin) {
		if (o->recursive) {
			fprintf(stderr, "maitctl cp: -r copies a directory, not standard input\n");
			return MAITCTL_EXIT_USAGE;
		}
		if (fstat(STDIN_FILENO, &st) < 0)
			return maitctl_local_error(ctl, -errno, "standard input: %s", strerror(errno));
	} else {
		fd = open(src, O_RDONLY | O_NOCTTY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0)
			return maitctl_local_error(ctl, -errno, "%s: %s", src, strerror(errno));
		if (S_ISDIR(st.st_mode) && !o->recursive)
			return maitctl_local_error(ctl, -EISDIR, "%s: is a directory (use -r)", src);
		if (S_ISDIR(st.st_mode) && tree_opts_check(o))
			return MAITCTL_EXIT_USAGE;
	}

	/* cp(1)'s destination: into an existing directory under the source's name. */
	guest_clean(dst_arg, guest, size);
	int kind = ends_in_slash(dst_arg) ? 1 : guest_kind(ctl, guest, o->user);
	if (kind < 0)
		return -kind;
	if (kind == 1) {
		if (from_stdin)
			return maitctl_local_error(ctl, -EISDIR, "%s: is a directory: standard input needs a file name",
						   guest);
		size_t l = strlen(guest);
		snprintf(guest + l, size - l, "%s%s", l > 1 ? "/" : "", base_name(src, name, sizeof(name)));
	}
	if (S_ISDIR(st.st_mode))
		return cp_upload_tree(ctl, o, fd, src, guest, res);
	return cp_upload_file(ctl, o, from_stdin ? STDIN_FILENO : fd, &st, from_stdin ? "standard input" : src, guest,
			      res);
}

static int download(struct maitctl *ctl, const struct cp_opts *o, const char *src_arg, const char *dst,
		    struct cp_result *res, char *local, size_t size)
{
	char guest[FILES_PATH_MAX], name[NAME_MAX + 1], joined[PATH_MAX * 2];
	struct files_err err = { "" };
	_cleanup_close_ int dirfd = -1;
	const char *leaf;
	struct stat st;
	bool tree = false;
	int r;

	guest_clean(src_arg, guest, sizeof(guest));
	if (strcmp(dst, "-") == 0) {
		if (o->recursive) {
			fprintf(stderr, "maitctl cp: -r copies a directory, not to standard output\n");
			return MAITCTL_EXIT_USAGE;
		}
		snprintf(local, size, "-");
		return cp_download_file(ctl, o, guest, -1, NULL, "-", res);
	}
	/* Into an existing local directory under the guest's name. */
	if (ends_in_slash(dst) || (stat(dst, &st) == 0 && S_ISDIR(st.st_mode))) {
		snprintf(joined, sizeof(joined), "%s/%s", dst, base_name(guest, name, sizeof(name)));
		dst = joined;
	}
	r = local_abs(dst, local, size);
	if (r < 0)
		return maitctl_local_error(ctl, r, "%s: %s", dst, strerror(-r));
	r = files_open_parent(local, o->parents, &dirfd, &leaf, &err);
	if (r < 0)
		return maitctl_local_error(ctl, r, "%s", err.msg[0] ? err.msg : strerror(-r));
	if (faccessat(dirfd, ".", W_OK, AT_EACCESS) < 0)
		return maitctl_local_error(ctl, -errno, "%s: cannot write in its directory: %s", local,
					   strerror(errno));
	if (fstatat(dirfd, leaf, &st, 0) == 0) {
		if (o->no_replace && !(o->recursive && S_ISDIR(st.st_mode)))
			return maitctl_local_error(ctl, -EEXIST, "%s: exists", local);
		if (S_ISDIR(st.st_mode) && !o->recursive)
			return maitctl_local_error(ctl, -EISDIR, "%s: is a directory", local);
	}
	if (o->recursive) {
		int kind = guest_kind(ctl, guest, o->user);
		if (kind < 0)
			return -kind;
		tree = kind == 1;
	}
	if (tree)
		return tree_opts_check(o) ?: cp_download_tree(ctl, o, guest, local, res);
	return cp_download_file(ctl, o, guest, dirfd, leaf, local, res);
}

static int run(struct maitctl *ctl, int argc, char **argv)
{
	enum { OPT_USER = 0x100, OPT_NO_REPLACE, OPT_SHA256, OPT_MODE };
	static const struct option longopts[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "parents", no_argument, NULL, 'p' },
		{ "user", required_argument, NULL, OPT_USER },
		{ "no-replace", no_argument, NULL, OPT_NO_REPLACE },
		{ "sha256", no_argument, NULL, OPT_SHA256 },
		{ "mode", required_argument, NULL, OPT_MODE },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct cp_opts o = { .timeout_usec = ctl->timeout_set ? ctl->timeout_usec : 0 };
	struct cp_result res = { 0 };
	char path[PATH_MAX + NAME_MAX + 2]; /* the destination */
	uint64_t start;
	int c, r;

	while ((c = getopt_long(argc, argv, "rph", longopts, NULL)) >= 0) {
		switch (c) {
		case 'r': o.recursive = true; break;
		case 'p': o.parents = true; break;
		case OPT_USER: o.user = optarg; break;
		case OPT_NO_REPLACE: o.no_replace = true; break;
		case OPT_SHA256: o.sha256 = true; break;
		case OPT_MODE:
			if (maitctl_parse_mode("cp", "--mode", optarg, &o.mode))
				return MAITCTL_EXIT_USAGE;
			o.has_mode = true;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return MAITCTL_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "maitctl cp: expected SRC DST, got %d argument(s)\n", argc - optind);
		return MAITCTL_EXIT_USAGE;
	}
	const char *src = argv[optind], *dst = argv[optind + 1];
	const char *gsrc = maitctl_guest_path(src), *gdst = maitctl_guest_path(dst);
	if (!gsrc == !gdst) {
		fprintf(stderr, "maitctl cp: exactly one of SRC and DST must be a guest path (:PATH), got '%s' '%s'\n",
			src, dst);
		return MAITCTL_EXIT_USAGE;
	}
	const char *g = gsrc ? gsrc : gdst;
	if (g[0] != '/') {
		fprintf(stderr, "maitctl cp: guest path '%s' is not absolute\n", gsrc ? src : dst);
		return MAITCTL_EXIT_USAGE;
	}
	if (gsrc && o.has_mode) {
		fprintf(stderr, "maitctl cp: --mode is for copies into the guest\n");
		return MAITCTL_EXIT_USAGE;
	}

	start = now_usec();
	r = gdst ? upload(ctl, &o, src, gdst, &res, path, sizeof(path))
		 : download(ctl, &o, gsrc, dst, &res, path, sizeof(path));
	if (r == 0)
		print_result(ctl, &res, start);
	return r;
}

const struct maitctl_command maitctl_cmd_cp = { .name = "cp",
						.summary = "copy files and trees into or out of the guest",
						.run = run };
