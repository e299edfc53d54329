/* files/tree-writer.c and files/tree-reader.c: every hostile entry
 * refused with nothing written outside the root (`../x`, `/etc/x`, a file
 * through a symlink entry, a hard link out of the tree or to a file the
 * tree did not write, a directory replaced by a symlink between entries),
 * directory modes and mtimes after their contents, keep_owners, and a
 * tree read, written elsewhere and read back identical. */
#include <sys/wait.h>

#include "base/macro.h"
#include "base/sha256.h"
#include "files-util.h"
#include "files/creds.h"
#include "files/path.h"
#include "files/tree.h"

struct fixture {
	char *dir; /* holds root/ and outside/ */
	char root[256];
	char outside[256];
	int rootfd;
	struct files_tree_writer *w;
	struct files_err err;
};

static bool setup(struct fixture *f)
{
	*f = (struct fixture){ .rootfd = -1 };
	if (!(f->dir = make_tmpdir()))
		return false;
	snprintf(f->root, sizeof(f->root), "%s/root", f->dir);
	snprintf(f->outside, sizeof(f->outside), "%s/outside", f->dir);
	if (mkdir(f->outside, 0755) < 0)
		return false;
	if (write_file(strcat(strcpy((char[300]){ 0 }, f->outside), "/victim"), "safe", 0644) < 0)
		return false;
	if (files_tree_root_open(f->root, true, false, &f->rootfd, &f->err) < 0)
		return false;
	struct files_tree_opts o = { .no_sync = true };
	return files_tree_writer_new(f->rootfd, &o, &f->w, &f->err) == 0;
}

static void teardown(struct fixture *f)
{
	files_tree_writer_free(f->w);
	if (f->rootfd >= 0)
		close(f->rootfd);
	if (f->dir)
		rm_rf(f->dir);
	free(f->dir);
}

static struct files_tree_entry ent(const char *path, enum files_type type)
{
	return (struct files_tree_entry){ .path = path, .path_len = strlen(path), .type = type, .mode = 0644 };
}

static int add(struct fixture *f, struct files_tree_entry e)
{
	f->err.msg[0] = 0;
	return files_tree_writer_entry(f->w, &e, &f->err);
}

static int add_file(struct fixture *f, const char *path, const char *data)
{
	struct files_tree_entry e = ent(path, FILES_TYPE_FILE);
	e.size = strlen(data);
	int r = add(f, e);
	return r < 0 ? r : files_tree_writer_data(f->w, data, strlen(data), &f->err);
}

static int add_symlink(struct fixture *f, const char *path, const char *target)
{
	struct files_tree_entry e = ent(path, FILES_TYPE_SYMLINK);
	e.symlink_target = target;
	e.symlink_target_len = strlen(target);
	return add(f, e);
}

static int add_link(struct fixture *f, const char *path, const char *to)
{
	struct files_tree_entry e = ent(path, FILES_TYPE_FILE);
	e.hardlink_to = to;
	e.hardlink_to_len = strlen(to);
	return add(f, e);
}

/* The outside directory holds only its victim, unchanged. */
static bool outside_untouched(struct fixture *f)
{
	char p[300], buf[16];
	snprintf(p, sizeof(p), "%s/victim", f->outside);
	struct stat st;
	return count_entries(f->outside) == 1 && strcmp(read_file(p, buf, sizeof(buf)), "safe") == 0 &&
	       stat(p, &st) == 0 && st.st_nlink == 1 && count_entries(f->dir) == 2;
}

TEST(refuses_dotdot_and_absolute)
{
	struct fixture f;
	CHECK(setup(&f));
	CHECK_EQ(add_file(&f, "../outside/x", "evil"), -EINVAL);
	CHECK(strstr(f.err.msg, "../outside/x"));
	CHECK_EQ(add_file(&f, f.outside, "evil"), -EINVAL);
	CHECK(strstr(f.err.msg, "absolute"));
	CHECK_EQ(add_file(&f, "/etc/x", "evil"), -EINVAL);
	CHECK_EQ(add_file(&f, "a//b", "evil"), -EINVAL);
	CHECK_EQ(add_file(&f, "a/./b", "evil"), -EINVAL);
	CHECK(outside_untouched(&f));
	CHECK_EQ(count_entries(f.root), 0);
	teardown(&f);
}

TEST(refuses_file_through_symlink_entry)
{
	struct fixture f;
	CHECK(setup(&f));
	CHECK_EQ(add_symlink(&f, "s", f.outside), 0);
	CHECK_EQ(add_symlink(&f, "rel", "../outside"), 0);
	for (int fb = 0; fb <= 1; fb++) {
		files_path_force_fallback(fb);
		CHECK_EQ(add_file(&f, "s/x", "evil"), -EINVAL);
		CHECK(strstr(f.err.msg, "entry s/x: goes through a symbolic link"));
		CHECK_EQ(add_file(&f, "rel/victim", "evil"), -EINVAL);
		CHECK_EQ(add(&f, ent("s/d", FILES_TYPE_DIRECTORY)), -EINVAL);
		CHECK_EQ(add_symlink(&f, "s/l", "/"), -EINVAL);
	}
	files_path_force_fallback(false);
	/* The symlink itself is replaced by a file entry, not written through. */
	CHECK_EQ(add_file(&f, "s", "plain"), 0);
	struct stat st;
	char p[300];
	snprintf(p, sizeof(p), "%s/s", f.root);
	CHECK_EQ(lstat(p, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK(outside_untouched(&f));
	teardown(&f);
}

TEST(refuses_hardlinks_out_of_the_tree)
{
	struct fixture f;
	char p[300];
	CHECK(setup(&f));
	CHECK_EQ(add_link(&f, "h1", "../outside/victim"), -EINVAL);
	CHECK(strstr(f.err.msg, "entry h1: hardlink_to"));
	CHECK_EQ(add_symlink(&f, "s", f.outside), 0);
	CHECK_EQ(add_link(&f, "h2", "s/victim"), -EINVAL);
	CHECK(strstr(f.err.msg, "symbolic link"));
	/* A symlink entry to the outside file: hardlink_to it links the
	 * symlink's... nothing: not a file of the tree. */
	CHECK_EQ(add_symlink(&f, "sv", strcat(strcpy((char[300]){ 0 }, f.outside), "/victim")), 0);
	CHECK_EQ(add_link(&f, "h3", "sv"), -EINVAL);
	/* A file already in the root, not written by this tree (as a hard
	 * link to the outside could be). */
	snprintf(p, sizeof(p), "%s/victim", f.outside);
	char q[300];
	snprintf(q, sizeof(q), "%s/pre", f.root);
	CHECK_EQ(link(p, q), 0);
	CHECK_EQ(add_link(&f, "h4", "pre"), -EINVAL);
	CHECK(strstr(f.err.msg, "not a file of this tree"));
	CHECK_EQ(unlink(q), 0);
	/* A file of the tree: fine. */
	CHECK_EQ(add_file(&f, "mine", "data"), 0);
	CHECK_EQ(add_link(&f, "h5", "mine"), 0);
	CHECK_EQ(add_link(&f, "h6", "later"), -ENOENT);
	CHECK(outside_untouched(&f));
	teardown(&f);
}

TEST(directory_replaced_by_symlink_between_entries)
{
	struct fixture f;
	char p[300];
	CHECK(setup(&f));
	CHECK_EQ(add(&f, ent("d", FILES_TYPE_DIRECTORY)), 0);
	snprintf(p, sizeof(p), "%s/d", f.root);
	CHECK_EQ(rmdir(p), 0);
	CHECK_EQ(symlink(f.outside, p), 0);
	for (int fb = 0; fb <= 1; fb++) {
		files_path_force_fallback(fb);
		CHECK_EQ(add_file(&f, "d/x", "evil"), -EINVAL);
		CHECK(strstr(f.err.msg, "entry d/x"));
	}
	files_path_force_fallback(false);
	CHECK(outside_untouched(&f));
	teardown(&f);
}

/* The writer keeps the parent of the last entry open for the next: a
 * directory of the tree moved away between its entries, and a symlink put
 * in its place, take the later entries into the directory where it now is
 * (the one they were opened for), never through the symlink. */
TEST(kept_directory_moved_between_entries)
{
	struct fixture f;
	char p[300], q[300], buf[16];
	CHECK(setup(&f));
	CHECK_EQ(add(&f, ent("d", FILES_TYPE_DIRECTORY)), 0);
	CHECK_EQ(add(&f, ent("e", FILES_TYPE_DIRECTORY)), 0);
	CHECK_EQ(add_file(&f, "d/x", "x"), 0);
	snprintf(p, sizeof(p), "%s/d", f.root);
	snprintf(q, sizeof(q), "%s/moved", f.root);
	CHECK_EQ(rename(p, q), 0);
	CHECK_EQ(symlink(f.outside, p), 0);
	CHECK_EQ(add_file(&f, "d/y", "y"), 0);
	snprintf(q, sizeof(q), "%s/moved/y", f.root);
	CHECK_STR(read_file(q, buf, sizeof(buf)), "y");
	/* Leaving d applies its mode through the path again: refused. */
	CHECK_EQ(add_file(&f, "e/z", "z"), -ELOOP);
	CHECK(strstr(f.err.msg, "entry d:"));
	CHECK(outside_untouched(&f));
	teardown(&f);
}

/* Names a tree's files take that are there already: a file is replaced
 * (content and mode), a symlink too (the file is not written through
 * it), a directory is refused by name; no hidden temporary file is left
 * beside them either way. */
TEST(files_over_existing_names)
{
	struct fixture f;
	char p[300], buf[16];
	struct stat st;
	CHECK(setup(&f));
	snprintf(p, sizeof(p), "%s/f", f.root);
	CHECK_EQ(write_file(p, "old", 0600), 0);
	snprintf(p, sizeof(p), "%s/l", f.root);
	CHECK_EQ(symlink(strcat(strcpy((char[300]){ 0 }, f.outside), "/victim"), p), 0);
	snprintf(p, sizeof(p), "%s/d", f.root);
	CHECK_EQ(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/d/inside", f.root);
	CHECK_EQ(write_file(p, "in", 0644), 0);

	struct files_tree_entry e = ent("f", FILES_TYPE_FILE);
	e.mode = 0640;
	e.size = 3;
	CHECK_EQ(add(&f, e), 0);
	CHECK_EQ(files_tree_writer_data(f.w, "new", 3, &f.err), 0);
	snprintf(p, sizeof(p), "%s/f", f.root);
	CHECK_STR(read_file(p, buf, sizeof(buf)), "new");
	CHECK_EQ(lstat(p, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0640);
	CHECK_EQ(add_file(&f, "l", "mine"), 0);
	snprintf(p, sizeof(p), "%s/l", f.root);
	CHECK_EQ(lstat(p, &st), 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_STR(read_file(p, buf, sizeof(buf)), "mine");
	CHECK_EQ(add_file(&f, "d", "x"), -EISDIR);
	CHECK(strstr(f.err.msg, "d"));
	snprintf(p, sizeof(p), "%s/d/inside", f.root);
	CHECK_STR(read_file(p, buf, sizeof(buf)), "in");
	CHECK_EQ(count_entries(f.root), 3); /* f, l, d: nothing hidden */
	CHECK(outside_untouched(&f));
	teardown(&f);
}

/* A file's mode is its entry's whatever the umask (given at creation
 * when the umask clears none of its bits, set afterwards otherwise), set-id
 * bits included; a mode of 0 still gets its data. */
TEST(file_modes_whatever_the_umask)
{
	static const mode_t modes[] = { 0644, 0666, 0777, 0600, 0, 04755, 02750, 01644 };
	static const mode_t masks[] = { 022, 077, 0 };
	struct fixture f;
	struct files_tree_summary sum;
	char name[32], p[300], buf[16];
	struct stat st;

	for (size_t m = 0; m < ARRAY_SIZE(masks); m++) {
		mode_t old = umask(masks[m]);
		CHECK(setup(&f));
		for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
			struct files_tree_entry e = ent(name, FILES_TYPE_FILE);
			snprintf(name, sizeof(name), "f%zu", i);
			e.path_len = strlen(name);
			e.mode = modes[i];
			e.size = 2;
			CHECK_EQ(add(&f, e), 0);
			CHECK_EQ(files_tree_writer_data(f.w, "ok", 2, &f.err), 0);
		}
		CHECK_EQ(files_tree_writer_finish(f.w, &sum, &f.err), 0);
		for (size_t i = 0; i < ARRAY_SIZE(modes); i++) {
			snprintf(p, sizeof(p), "%s/f%zu", f.root, i);
			CHECK_EQ(lstat(p, &st), 0);
			CHECK_EQ(st.st_mode & 07777, modes[i]);
			CHECK_STR(read_file(p, buf, sizeof(buf)), "ok");
		}
		teardown(&f);
		umask(old);
	}
}

TEST(data_accounting)
{
	struct fixture f;
	struct files_tree_summary sum;
	CHECK(setup(&f));
	CHECK_EQ(files_tree_writer_data(f.w, "x", 1, &f.err), -EINVAL);
	struct files_tree_entry e = ent("f", FILES_TYPE_FILE);
	e.size = 3;
	CHECK_EQ(add(&f, e), 0);
	CHECK_EQ(files_tree_writer_data(f.w, "abcd", 4, &f.err), -EINVAL);
	CHECK(strstr(f.err.msg, "more data"));
	CHECK_EQ(files_tree_writer_data(f.w, "ab", 2, &f.err), 0);
	CHECK_EQ(add(&f, ent("g", FILES_TYPE_DIRECTORY)), -EINVAL);
	CHECK(strstr(f.err.msg, "still expected"));
	CHECK_EQ(files_tree_writer_finish(f.w, &sum, &f.err), -EINVAL);
	CHECK(strstr(f.err.msg, "1 bytes missing"));
	/* The unfinished file leaves nothing, not even a temporary file. */
	files_tree_writer_free(f.w);
	f.w = NULL;
	CHECK_EQ(count_entries(f.root), 0);
	teardown(&f);
}

TEST(entry_checks)
{
	struct files_err err = { "" };
	struct files_tree_entry e = ent("a", FILES_TYPE_OTHER);
	CHECK_EQ(files_tree_entry_check(&e, &err), -EINVAL);
	e = ent("a", FILES_TYPE_DIRECTORY);
	e.mode = 010000;
	CHECK_EQ(files_tree_entry_check(&e, &err), -EINVAL);
	e = ent("a", FILES_TYPE_SYMLINK);
	CHECK_EQ(files_tree_entry_check(&e, &err), -EINVAL);
	e.symlink_target = "x\0y";
	e.symlink_target_len = 3;
	CHECK_EQ(files_tree_entry_check(&e, &err), -EINVAL);
	e = ent("a", FILES_TYPE_FILE);
	e.hardlink_to = "b";
	e.hardlink_to_len = 1;
	e.size = 1;
	CHECK_EQ(files_tree_entry_check(&e, &err), -EINVAL);
	e.size = 0;
	CHECK_EQ(files_tree_entry_check(&e, &err), 0);
	e.path = "a\0b";
	e.path_len = 3;
	CHECK_EQ(files_tree_entry_check(&e, &err), -EINVAL);
}

TEST(keep_owners_only_as_root)
{
	struct fixture f;
	struct files_tree_writer *w2 = NULL;
	struct files_tree_summary sum;
	char p[300];
	struct stat st;
	CHECK(setup(&f));
	CHECK_EQ(files_tree_writer_new(f.rootfd, &(struct files_tree_opts){ .keep_owners = true }, &w2, &f.err),
		 -EPERM);
	struct files_tree_opts o = { .keep_owners = true, .acting_as_root = true, .no_sync = true };
	CHECK_EQ(files_tree_writer_new(f.rootfd, &o, &w2, &f.err), 0);
	files_tree_writer_free(f.w);
	f.w = w2;
	struct files_tree_entry e = ent("d", FILES_TYPE_DIRECTORY);
	e.uid = e.gid = 65534;
	CHECK_EQ(add(&f, e), 0);
	e = ent("d/f", FILES_TYPE_FILE);
	e.uid = 65534;
	e.gid = 65534;
	CHECK_EQ(add(&f, e), 0);
	CHECK_EQ(files_tree_writer_finish(f.w, &sum, &f.err), 0);
	snprintf(p, sizeof(p), "%s/d/f", f.root);
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_uid, 65534);
	snprintf(p, sizeof(p), "%s/d", f.root);
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_gid, 65534);
	teardown(&f);
}

/* Entries of a directory after entries outside it (a client's order, not
 * depth-first): each directory still ends with its own mode and mtime,
 * and a read-only one (0555) is filled again, also as a user without
 * root's bypasses. The writer used to apply a directory's mode when the
 * first entry outside it arrived: d1 and d2 kept the time of the write as
 * their mtime, and as nobody "d2/y" was refused. */
static void interleaved(struct fixture *f, bool as_nobody)
{
	struct files_tree_summary sum;
	struct files_tree_entry d1 = ent("d1", FILES_TYPE_DIRECTORY), d2 = ent("d2", FILES_TYPE_DIRECTORY),
				sub = ent("d1/s", FILES_TYPE_DIRECTORY);
	char p[400];
	struct stat st;

	if (as_nobody) {
		struct files_user u = { .uid = 65534, .gid = 65534, .groups = (gid_t[]){ 65534 }, .n_groups = 1 };
		CHECK_EQ(chmod(f->dir, 0755), 0);
		CHECK_EQ(chown(f->root, 65534, 65534), 0);
		CHECK_EQ(files_act_as(&u), 0);
	}
	d1.mode = 0750;
	d1.has_mtime = true;
	d1.mtime = (struct timespec){ 1000000001, 5 };
	d2.mode = 0555;
	d2.has_mtime = true;
	d2.mtime = (struct timespec){ 1000000002, 6 };
	sub.mode = 0500;
	sub.has_mtime = true;
	sub.mtime = (struct timespec){ 1000000003, 7 };
	CHECK_EQ(add(f, d1), 0);
	CHECK_EQ(add(f, sub), 0);
	CHECK_EQ(add(f, d2), 0);
	CHECK_EQ(add_file(f, "d1/x", "x"), 0);
	CHECK_EQ(add_file(f, "d2/y", "y"), 0);
	CHECK_EQ(add_file(f, "d1/s/z", "z"), 0);
	CHECK_EQ(add_link(f, "d2/h", "d1/x"), 0);
	CHECK_EQ(add_file(f, "top", "t"), 0);
	CHECK_EQ(files_tree_writer_finish(f->w, &sum, &f->err), 0);
	CHECK_EQ(sum.directories, 3);
	CHECK_EQ(sum.files, 5);
	const char *names[] = { "d1", "d2", "d1/s" };
	const struct files_tree_entry *want[] = { &d1, &d2, &sub };
	for (int i = 0; i < 3; i++) {
		snprintf(p, sizeof(p), "%s/%s", f->root, names[i]);
		CHECK_EQ(stat(p, &st), 0);
		CHECK_EQ(st.st_mode & 07777, want[i]->mode);
		CHECK_EQ(st.st_mtim.tv_sec, want[i]->mtime.tv_sec);
		CHECK_EQ(st.st_mtim.tv_nsec, want[i]->mtime.tv_nsec);
	}
	snprintf(p, sizeof(p), "%s/d1/s/z", f->root);
	CHECK_EQ(stat(p, &st), 0);
	snprintf(p, sizeof(p), "%s/d2/h", f->root);
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_nlink, 2);
}

TEST(interleaved_entries_keep_directory_modes)
{
	struct fixture f;
	CHECK(setup(&f));
	interleaved(&f, false);
	teardown(&f);
}

TEST(interleaved_entries_as_a_user)
{
	struct fixture f;
	CHECK(setup(&f));
	pid_t pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		interleaved(&f, true);
		_exit(test_failed_flag ? 1 : 0);
	}
	int status;
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* The tree's files are nobody's; the root tears it down. */
	teardown(&f);
}

/* One line per entry of a tree read with the tree reader, sorted:
 * path, type, mode, mtime, size, target, the data's SHA-256, and for a
 * file with several links the smallest path of its inode. */
struct walked {
	char lines[64][600];
	int n;
};

static int cmp_lines(const void *a, const void *b)
{
	return strcmp(a, b);
}

static bool walk(const char *root, struct walked *out)
{
	int fd = open(root, O_PATH | O_DIRECTORY);
	struct files_tree_reader *r = NULL;
	struct files_err err = { "" };
	const struct files_tree_entry *e;
	char paths[64][256];
	ino_t inos[64];
	bool ok = fd >= 0 && files_tree_reader_new(fd, &r, &err) == 0;
	out->n = 0;
	while (ok) {
		int k = files_tree_reader_next(r, &e, &err);
		if (k <= 0) {
			ok = k == 0;
			break;
		}
		if (out->n == 64)
			return false;
		struct sha256 s;
		uint8_t d[32];
		char buf[4096], hex[17] = "";
		sha256_init(&s);
		for (ssize_t n; (n = files_tree_reader_read(r, buf, sizeof(buf), &err)) > 0;)
			sha256_update(&s, buf, (size_t)n);
		sha256_final(&s, d);
		for (int i = 0; i < 8; i++)
			sprintf(hex + 2 * i, "%02x", d[i]);
		char p[600];
		struct stat st;
		snprintf(p, sizeof(p), "%s/%s", root, e->path);
		if (lstat(p, &st) < 0)
			return false;
		snprintf(paths[out->n], 256, "%s", e->path);
		inos[out->n] = st.st_ino;
		snprintf(out->lines[out->n], 600,
			 "%s type=%d mode=%o mtime=%lld.%09ld size=%llu target=%s data=%s links=%d", e->path, e->type,
			 e->mode, (long long)e->mtime.tv_sec, e->mtime.tv_nsec,
			 (unsigned long long)(e->hardlink_to_len ? st.st_size : (off_t)e->size),
			 e->symlink_target ? e->symlink_target : "", e->hardlink_to_len ? "(link)" : hex,
			 (int)st.st_nlink);
		out->n++;
	}
	files_tree_reader_free(r);
	if (fd >= 0)
		close(fd);
	/* Hard links by inode: the smallest path of each inode appended. */
	for (int i = 0; ok && i < out->n; i++) {
		const char *min = paths[i];
		for (int j = 0; j < out->n; j++)
			if (inos[j] == inos[i] && strcmp(paths[j], min) < 0)
				min = paths[j];
		size_t l = strlen(out->lines[i]);
		snprintf(out->lines[i] + l, 600 - l, " inode=%s", min);
		/* The data of a link is its first path's: compare without it. */
		char *dpos = strstr(out->lines[i], " data=");
		char *lpos = strstr(out->lines[i], " links=");
		if (dpos && lpos && strstr(out->lines[i], "links=1") == NULL)
			memmove(dpos, lpos, strlen(lpos) + 1);
	}
	qsort(out->lines, (size_t)out->n, sizeof(out->lines[0]), cmp_lines);
	return ok;
}

static void touch_at(const char *root, const char *rel, time_t t)
{
	char p[600];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	struct timespec ts[2] = { { t, 0 }, { t, 123 } };
	(void)utimensat(AT_FDCWD, p, ts, AT_SYMLINK_NOFOLLOW);
}

TEST(tree_round_trip_identical)
{
	char *d = make_tmpdir(), src[256], dst[256], p[600];
	struct files_err err = { "" };
	CHECK(d);
	snprintf(src, sizeof(src), "%s/src", d);
	snprintf(dst, sizeof(dst), "%s/dst", d);
	CHECK_EQ(mkdir(src, 0755), 0);
	const char *dirs[] = { "a", "a/b", "ro", "empty" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", src, dirs[i]);
		CHECK_EQ(mkdir(p, 0750), 0);
	}
	const char *files[] = { "top", "a/one", "a/b/two", "ro/inside" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", src, files[i]);
		CHECK_EQ(write_file(p, files[i], 0640), 0);
	}
	snprintf(p, sizeof(p), "%s/a/b/two", src);
	CHECK_EQ(chmod(p, 04755), 0);
	char q[600];
	snprintf(q, sizeof(q), "%s/a/twin", src);
	CHECK_EQ(link(p, q), 0);
	snprintf(q, sizeof(q), "%s/ro/triplet", src);
	CHECK_EQ(link(p, q), 0);
	snprintf(p, sizeof(p), "%s/abs", src);
	CHECK_EQ(symlink("/etc/passwd", p), 0);
	snprintf(p, sizeof(p), "%s/a/up", src);
	CHECK_EQ(symlink("../../outside", p), 0);
	const char *all[] = { "top", "a/one", "a/b/two", "ro/inside", "abs", "a/up", "a/b", "a", "empty", "ro" };
	for (size_t i = 0; i < 10; i++)
		touch_at(src, all[i], 1000000000 + (time_t)i * 1000);
	snprintf(p, sizeof(p), "%s/ro", src);
	CHECK_EQ(chmod(p, 0555), 0);

	/* Read src, write dst. */
	int sfd = open(src, O_PATH | O_DIRECTORY), dfd = -1;
	CHECK(sfd >= 0);
	CHECK_EQ(files_tree_root_open(dst, true, false, &dfd, &err), 0);
	struct files_tree_reader *r = NULL;
	struct files_tree_writer *w = NULL;
	struct files_tree_summary sum;
	CHECK_EQ(files_tree_reader_new(sfd, &r, &err), 0);
	CHECK_EQ(files_tree_writer_new(dfd, &(struct files_tree_opts){ 0 }, &w, &err), 0);
	const struct files_tree_entry *e;
	int k;
	while ((k = files_tree_reader_next(r, &e, &err)) > 0) {
		CHECK_EQ(files_tree_writer_entry(w, e, &err), 0);
		char buf[3];
		for (ssize_t n; (n = files_tree_reader_read(r, buf, sizeof(buf), &err)) > 0;)
			CHECK_EQ(files_tree_writer_data(w, buf, (size_t)n, &err), 0);
	}
	CHECK_EQ(k, 0);
	CHECK_EQ(files_tree_writer_finish(w, &sum, &err), 0);
	files_tree_writer_free(w);
	files_tree_reader_free(r);
	close(sfd);
	close(dfd);
	CHECK_EQ(sum.directories, 4);
	CHECK_EQ(sum.symlinks, 2);
	CHECK_EQ(sum.files, 6);

	static struct walked a, b;
	CHECK(walk(src, &a));
	CHECK(walk(dst, &b));
	CHECK_EQ(a.n, 12);
	CHECK_EQ(b.n, a.n);
	for (int i = 0; i < a.n; i++) {
		if (strcmp(a.lines[i], b.lines[i]) != 0)
			fprintf(stderr, "# src: %s\n# dst: %s\n", a.lines[i], b.lines[i]);
		CHECK_STR(a.lines[i], b.lines[i]);
	}
	snprintf(p, sizeof(p), "%s/ro", src);
	CHECK_EQ(chmod(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/ro", dst);
	CHECK_EQ(chmod(p, 0755), 0);
	rm_rf(d);
	free(d);
}

static void note_skip(const char *path, void *userdata)
{
	char *seen = userdata;
	size_t n = strlen(seen);
	snprintf(seen + n, 256 - n, "%s;", path);
}

/* Sockets, FIFOs and devices are not entries; the caller is told of
 * each, by its path below the root. */
TEST(reader_tells_of_skipped_entries)
{
	char *d = make_tmpdir(), p[600], seen[256] = "";
	struct files_err err = { "" };
	const struct files_tree_entry *e;
	unsigned entries = 0;
	CHECK(d);
	snprintf(p, sizeof(p), "%s/sub", d);
	CHECK_EQ(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/sub/fifo", d);
	CHECK_EQ(mkfifo(p, 0644), 0);
	snprintf(p, sizeof(p), "%s/file", d);
	CHECK_EQ(write_file(p, "x", 0644), 0);
	int fd = open(d, O_PATH | O_DIRECTORY);
	CHECK(fd >= 0);
	struct files_tree_reader *r = NULL;
	CHECK_EQ(files_tree_reader_new(fd, &r, &err), 0);
	files_tree_reader_on_skip(r, note_skip, seen);
	int k;
	while ((k = files_tree_reader_next(r, &e, &err)) > 0) {
		char buf[8];
		entries++;
		while (files_tree_reader_read(r, buf, sizeof(buf), &err) > 0)
			;
	}
	CHECK_EQ(k, 0);
	CHECK_EQ(entries, 2);
	CHECK_STR(seen, "sub/fifo;");
	files_tree_reader_free(r);
	close(fd);
	rm_rf(d);
	free(d);
}
