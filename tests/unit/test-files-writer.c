/* files/writer.c and files/reader.c: atomic replace (old file intact and
 * nothing left behind on abort, digest mismatch, ENOSPC), no_replace,
 * modes and mtimes, the digest against sha256sum, both kinds of
 * temporary file, acting as nobody, a directory replaced by a symlink
 * after the open. */
#include <sched.h>
#include <sys/mount.h>

#include "base/macro.h"
#include "base/sha256.h"
#include "files-util.h"
#include "files/creds.h"
#include "files/path.h"
#include "files/reader.h"
#include "files/status.h"
#include "files/writer.h"

static int put(const char *path, const struct files_write_opts *o, const char *data, struct files_err *err)
{
	struct files_writer *w = NULL;
	int r = files_writer_open(path, o, &w, err);
	if (r < 0)
		return r;
	r = files_writer_write(w, data, strlen(data), err);
	if (r >= 0)
		r = files_writer_commit(w, NULL, NULL, err);
	files_writer_free(w);
	return r;
}

static void abort_keeps_old(bool no_tmpfile)
{
	char *d = make_tmpdir(), p[256], buf[64];
	struct files_err err = { "" };
	struct files_writer *w = NULL;
	CHECK(d);
	snprintf(p, sizeof(p), "%s/f", d);
	CHECK_EQ(write_file(p, "old", 0600), 0);
	struct files_write_opts o = { .no_tmpfile = no_tmpfile };
	CHECK_EQ(files_writer_open(p, &o, &w, &err), 0);
	CHECK_EQ(files_writer_write(w, "new data", 8, &err), 0);
	/* A named temporary file is visible until the abort. */
	CHECK_EQ(count_entries(d), no_tmpfile ? 2 : 1);
	files_writer_free(w);
	CHECK_STR(read_file(p, buf, sizeof(buf)), "old");
	CHECK_EQ(count_entries(d), 1);
	rm_rf(d);
	free(d);
}

TEST(abort_keeps_old_file_tmpfile)
{
	abort_keeps_old(false);
}

TEST(abort_keeps_old_file_named_temporary)
{
	abort_keeps_old(true);
}

TEST(replace_keeps_mode_default_0644_given_mode)
{
	char *d = make_tmpdir(), p[256], q[256], buf[64];
	struct files_err err = { "" };
	struct stat st;
	CHECK(d);
	snprintf(p, sizeof(p), "%s/f", d);
	snprintf(q, sizeof(q), "%s/g", d);
	CHECK_EQ(write_file(p, "old", 0600), 0);
	CHECK_EQ(chmod(p, 0640), 0);
	CHECK_EQ(put(p, &(struct files_write_opts){ 0 }, "new", &err), 0);
	CHECK_STR(read_file(p, buf, sizeof(buf)), "new");
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0640);
	CHECK_EQ(put(q, &(struct files_write_opts){ 0 }, "x", &err), 0);
	CHECK_EQ(stat(q, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0644);
	CHECK_EQ(put(q, &(struct files_write_opts){ .has_mode = true, .mode = 04711 }, "y", &err), 0);
	CHECK_EQ(stat(q, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 04711);
	CHECK_EQ(put(q, &(struct files_write_opts){ .has_mode = true, .mode = 010000 }, "y", &err), -EINVAL);
	CHECK(strstr(err.msg, "07777"));
	CHECK_EQ(count_entries(d), 2);
	rm_rf(d);
	free(d);
}

TEST(mtime_and_make_parents)
{
	char *d = make_tmpdir(), p[256];
	struct files_err err = { "" };
	struct stat st;
	CHECK(d);
	snprintf(p, sizeof(p), "%s/a/b/c/f", d);
	struct files_write_opts o = { .has_mtime = true, .mtime = { 1234567890, 123456789 } };
	CHECK_EQ(put(p, &o, "x", &err), -ENOENT);
	o.make_parents = true;
	CHECK_EQ(put(p, &o, "x", &err), 0);
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_mtim.tv_sec, 1234567890);
	CHECK_EQ(st.st_mtim.tv_nsec, 123456789);
	rm_rf(d);
	free(d);
}

TEST(no_replace)
{
	char *d = make_tmpdir(), p[256], buf[64];
	struct files_err err = { "" };
	CHECK(d);
	snprintf(p, sizeof(p), "%s/f", d);
	for (int named = 0; named <= 1; named++) {
		struct files_write_opts o = { .no_replace = true, .no_tmpfile = named };
		CHECK_EQ(put(p, &o, named ? "second" : "first", &err), named ? -EEXIST : 0);
		CHECK_STR(read_file(p, buf, sizeof(buf)), "first");
	}
	/* Created by someone else between the open and the commit. */
	char q[256];
	struct files_writer *w = NULL;
	snprintf(q, sizeof(q), "%s/g", d);
	for (int named = 0; named <= 1; named++) {
		(void)unlink(q);
		struct files_write_opts o = { .no_replace = true, .no_tmpfile = named };
		CHECK_EQ(files_writer_open(q, &o, &w, &err), 0);
		CHECK_EQ(files_writer_write(w, "mine", 4, &err), 0);
		CHECK_EQ(write_file(q, "theirs", 0644), 0);
		err.msg[0] = 0;
		CHECK_EQ(files_writer_commit(w, NULL, NULL, &err), -EEXIST);
		CHECK_EQ(files_grpc_code(-EEXIST), FILES_GRPC_ALREADY_EXISTS);
		files_writer_free(w);
		CHECK_STR(read_file(q, buf, sizeof(buf)), "theirs");
		CHECK_EQ(count_entries(d), 2);
	}
	rm_rf(d);
	free(d);
}

TEST(digest_mismatch_leaves_target_untouched)
{
	char *d = make_tmpdir(), p[256], buf[64];
	struct files_err err = { "" };
	uint8_t good[32], bad[32];
	CHECK(d);
	snprintf(p, sizeof(p), "%s/f", d);
	CHECK_EQ(write_file(p, "old", 0644), 0);
	sha256("new", 3, good);
	memcpy(bad, good, 32);
	bad[31] ^= 1;
	for (int named = 0; named <= 1; named++) {
		struct files_write_opts o = { .sha256 = bad, .no_tmpfile = named };
		int r = put(p, &o, "new", &err);
		CHECK_EQ(r, -FILES_EDIGEST);
		CHECK_EQ(files_grpc_code(r), FILES_GRPC_DATA_LOSS);
		CHECK(strstr(err.msg, "SHA-256"));
		CHECK_STR(read_file(p, buf, sizeof(buf)), "old");
		CHECK_EQ(count_entries(d), 1);
	}
	CHECK_EQ(put(p, &(struct files_write_opts){ .sha256 = good }, "new", &err), 0);
	CHECK_STR(read_file(p, buf, sizeof(buf)), "new");
	rm_rf(d);
	free(d);
}

/* 64 MiB of generated data in odd-sized writes: the writer's digest, the
 * reader's and sha256sum's agree. */
TEST(digest_matches_sha256sum)
{
	char *d = make_tmpdir(), p[256], cmd[512], hex[65] = "", out[128] = "";
	struct files_err err = { "" };
	struct files_writer *w = NULL;
	struct files_reader *rd = NULL;
	uint8_t wd[32], rdg[32];
	size_t chunk = 1000003, total = 64u << 20;
	uint8_t *buf = malloc(chunk);
	CHECK(d && buf);
	for (size_t i = 0; i < chunk; i++)
		buf[i] = (uint8_t)(i * 7 + (i >> 11));
	snprintf(p, sizeof(p), "%s/big", d);
	CHECK_EQ(files_writer_open(p, &(struct files_write_opts){ 0 }, &w, &err), 0);
	for (size_t off = 0; off < total; off += chunk)
		CHECK_EQ(files_writer_write(w, buf, MIN(chunk, total - off), &err), 0);
	CHECK_EQ(files_writer_commit(w, wd, NULL, &err), 0);
	files_writer_free(w);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", wd[i]);
	snprintf(cmd, sizeof(cmd), "sha256sum %s", p);
	FILE *f = popen(cmd, "r");
	CHECK(f);
	CHECK(fgets(out, sizeof(out), f));
	pclose(f);
	CHECK(strncmp(out, hex, 64) == 0);

	CHECK_EQ(files_reader_open(p, 0, 0, &rd, NULL, &err), 0);
	for (;;) {
		ssize_t n = files_reader_read(rd, buf, chunk, &err);
		CHECK(n >= 0);
		if (n == 0)
			break;
	}
	CHECK_EQ(files_reader_digest(rd, rdg), 0);
	files_reader_free(rd);
	CHECK(memcmp(wd, rdg, 32) == 0);
	free(buf);
	rm_rf(d);
	free(d);
}

TEST(reader_ranges_and_refusals)
{
	char *d = make_tmpdir(), p[256], l[256], buf[64];
	struct files_err err = { "" };
	struct files_reader *rd = NULL;
	CHECK(d);
	snprintf(p, sizeof(p), "%s/f", d);
	snprintf(l, sizeof(l), "%s/link", d);
	CHECK_EQ(write_file(p, "0123456789", 0644), 0);
	CHECK_EQ(symlink(p, l), 0);
	CHECK_EQ(files_reader_open(p, 3, 4, &rd, NULL, &err), 0);
	ssize_t n = files_reader_read(rd, buf, sizeof(buf), &err);
	CHECK_EQ(n, 4);
	CHECK(memcmp(buf, "3456", 4) == 0);
	CHECK_EQ(files_reader_read(rd, buf, sizeof(buf), &err), 0);
	uint8_t dg[32], want[32];
	CHECK_EQ(files_reader_digest(rd, dg), 0);
	sha256("3456", 4, want);
	CHECK(memcmp(dg, want, 32) == 0);
	files_reader_free(rd);
	rd = NULL;
	CHECK_EQ(files_reader_open(p, 0, 0, &rd, NULL, &err), 0);
	files_reader_skip_digest(rd);
	CHECK_EQ(files_reader_read(rd, buf, sizeof(buf), &err), 10);
	CHECK_EQ(files_reader_digest(rd, dg), -EINVAL);
	files_reader_free(rd);
	rd = NULL;
	CHECK_EQ(files_reader_open(p, 20, 0, &rd, NULL, &err), 0);
	CHECK_EQ(files_reader_read(rd, buf, sizeof(buf), &err), 0);
	files_reader_free(rd);
	rd = NULL;
	CHECK_EQ(files_reader_open(l, 0, 0, &rd, NULL, &err), -ELOOP);
	CHECK(strstr(err.msg, "symbolic link"));
	CHECK_EQ(files_reader_open(d, 0, 0, &rd, NULL, &err), -EISDIR);
	CHECK_EQ(files_reader_open("/dev/null", 0, 0, &rd, NULL, &err), -EINVAL);
	CHECK_EQ(files_reader_open("relative", 0, 0, &rd, NULL, &err), -EINVAL);
	rm_rf(d);
	free(d);
}

/* The parent is opened once: a directory renamed away and replaced by a
 * symlink to elsewhere after the open is not written through. */
TEST(directory_replaced_by_symlink_after_open)
{
	char *d = make_tmpdir(), sub[256], moved[256], other[256], p[256], buf[64];
	struct files_err err = { "" };
	struct files_writer *w = NULL;
	CHECK(d);
	snprintf(sub, sizeof(sub), "%s/sub", d);
	snprintf(moved, sizeof(moved), "%s/moved", d);
	snprintf(other, sizeof(other), "%s/other", d);
	snprintf(p, sizeof(p), "%s/sub/f", d);
	CHECK_EQ(mkdir(sub, 0755), 0);
	CHECK_EQ(mkdir(other, 0755), 0);
	CHECK_EQ(files_writer_open(p, &(struct files_write_opts){ 0 }, &w, &err), 0);
	CHECK_EQ(rename(sub, moved), 0);
	CHECK_EQ(symlink(other, sub), 0);
	CHECK_EQ(files_writer_write(w, "data", 4, &err), 0);
	CHECK_EQ(files_writer_commit(w, NULL, NULL, &err), 0);
	files_writer_free(w);
	CHECK_EQ(count_entries(other), 0);
	snprintf(p, sizeof(p), "%s/moved/f", d);
	CHECK_STR(read_file(p, buf, sizeof(buf)), "data");
	rm_rf(d);
	free(d);
}

/* In a child with its own mount namespace: a 256 KiB tmpfs, an old file,
 * then a write of 1 MiB. */
static int enospc_child(void *arg)
{
	const char *mnt = arg;
	char p[256], buf[64];
	struct files_err err = { "" };
	struct files_writer *w = NULL;
	static char chunk[65536];
	int r = 0;

	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 10;
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=256k") < 0)
		return 11;
	snprintf(p, sizeof(p), "%s/f", mnt);
	if (write_file(p, "old", 0644) < 0)
		return 12;
	for (int named = 0; named <= 1; named++) {
		if (files_writer_open(p, &(struct files_write_opts){ .no_tmpfile = named }, &w, &err) < 0)
			return 13;
		for (int i = 0; i < 16 && r == 0; i++)
			r = files_writer_write(w, chunk, sizeof(chunk), &err);
		if (r == 0)
			r = files_writer_commit(w, NULL, NULL, &err);
		files_writer_free(w);
		if (r != -ENOSPC || files_grpc_code(r) != FILES_GRPC_RESOURCE_EXHAUSTED)
			return 14;
		if (strcmp(read_file(p, buf, sizeof(buf)), "old") != 0)
			return 15;
		if (count_entries(mnt) != 1)
			return 16;
		r = 0;
	}
	return 0;
}

TEST(enospc_keeps_old_file)
{
	char *d = make_tmpdir();
	CHECK(d);
	CHECK_EQ(in_child(enospc_child, d), 0);
	rm_rf(d);
	free(d);
}

/* As nobody (uid/gid 65534): a root-owned 0755 directory refuses the
 * write; a directory nobody owns takes it, and the file is nobody's. */
static int nobody_child(void *arg)
{
	const char *d = arg;
	char p[256];
	struct files_err err = { "" };
	gid_t g = 65534;
	struct files_user u = { .name = "nobody", .uid = 65534, .gid = 65534, .groups = &g, .n_groups = 1 };
	struct stat st;

	if (files_act_as(&u) < 0)
		return 10;
	snprintf(p, sizeof(p), "%s/f", d);
	if (put(p, &(struct files_write_opts){ 0 }, "x", &err) != -EACCES)
		return 11;
	if (files_grpc_code(-EACCES) != FILES_GRPC_PERMISSION_DENIED)
		return 12;
	snprintf(p, sizeof(p), "%s/mine/f", d);
	if (put(p, &(struct files_write_opts){ 0 }, "x", &err) < 0)
		return 13;
	if (stat(p, &st) < 0 || st.st_uid != 65534 || st.st_gid != 65534)
		return 14;
	return 0;
}

TEST(act_as_nobody)
{
	char *d = make_tmpdir(), mine[256];
	CHECK(d);
	CHECK_EQ(chmod(d, 0755), 0);
	snprintf(mine, sizeof(mine), "%s/mine", d);
	CHECK_EQ(mkdir(mine, 0755), 0);
	CHECK_EQ(chown(mine, 65534, 65534), 0);
	CHECK_EQ(in_child(nobody_child, d), 0);
	CHECK_EQ(count_entries(d), 1);
	rm_rf(d);
	free(d);
}

TEST(resolve_users)
{
	struct files_user u = { 0 };
	struct files_err err = { "" };
	CHECK_EQ(files_user_resolve("", &u, &err), 0);
	CHECK_EQ(u.uid, 0);
	CHECK_STR(u.name, "root");
	files_user_clear(&u);
	CHECK_EQ(files_user_resolve("nobody", &u, &err), 0);
	CHECK_EQ(u.uid, 65534);
	CHECK(u.n_groups >= 1);
	CHECK_EQ(u.groups[0], u.gid);
	files_user_clear(&u);
	int r = files_user_resolve("no-such-user-here", &u, &err);
	CHECK_EQ(r, -EINVAL);
	CHECK_EQ(files_grpc_code(r), FILES_GRPC_INVALID_ARGUMENT);
	CHECK_STR(err.msg, "unknown user no-such-user-here");
}

TEST(errno_table)
{
	static const struct {
		int e, code;
	} t[] = {
		{ ENOENT, 5 }, { EEXIST, 6 },	{ EACCES, 7 }, { EPERM, 7 },	 { ENOSPC, 8 }, { EDQUOT, 8 },
		{ EMFILE, 8 }, { ENOTDIR, 9 },	{ EISDIR, 9 }, { ENOTEMPTY, 9 }, { EBUSY, 9 },	{ EROFS, 9 },
		{ EINVAL, 3 }, { EBADMSG, 15 }, { EIO, 13 },   { ELOOP, 13 },	 { 0, 0 },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		CHECK_EQ(files_grpc_code(-t[i].e), t[i].code);
		CHECK_EQ(files_grpc_code(t[i].e), t[i].code);
	}
}

/* A client's download: no digest when none was asked (commit gives
 * zeros), and the expected digest given after the data (a Read sends it
 * last): a mismatch leaves nothing, a match commits. */
TEST(no_digest_and_expected_digest_after_the_data)
{
	char *d = make_tmpdir(), p[256], buf[64];
	struct files_err err = { "" };
	struct files_writer *w = NULL;
	uint8_t zero[32] = { 0 }, got[32], good[32], bad[32];
	CHECK(d);
	snprintf(p, sizeof(p), "%s/f", d);
	CHECK_EQ(files_writer_open(p, &(struct files_write_opts){ .no_digest = true }, &w, &err), 0);
	CHECK_EQ(files_writer_write(w, "data", 4, &err), 0);
	CHECK_EQ(files_writer_commit(w, got, NULL, &err), 0);
	files_writer_free(w);
	CHECK(memcmp(got, zero, 32) == 0);
	CHECK_STR(read_file(p, buf, sizeof(buf)), "data");

	sha256("new", 3, good);
	memcpy(bad, good, 32);
	bad[0] ^= 0x80;
	CHECK_EQ(files_writer_open(p, &(struct files_write_opts){ 0 }, &w, &err), 0);
	CHECK_EQ(files_writer_write(w, "new", 3, &err), 0);
	files_writer_expect(w, bad);
	CHECK_EQ(files_writer_commit(w, got, NULL, &err), -FILES_EDIGEST);
	files_writer_free(w);
	CHECK_STR(read_file(p, buf, sizeof(buf)), "data");
	CHECK_EQ(count_entries(d), 1);
	CHECK_EQ(files_writer_open(p, &(struct files_write_opts){ 0 }, &w, &err), 0);
	CHECK_EQ(files_writer_write(w, "new", 3, &err), 0);
	files_writer_expect(w, good);
	CHECK_EQ(files_writer_commit(w, got, NULL, &err), 0);
	files_writer_free(w);
	CHECK(memcmp(got, good, 32) == 0);
	CHECK_STR(read_file(p, buf, sizeof(buf)), "new");
	rm_rf(d);
	free(d);
}
