/* files/ops.c and files/path.c: Stat, List (order, depth, callback
 * stop), MakeDirectory, Remove (symlinks never followed, / refused, no
 * crossing into another mount), Move, path checks, opening beneath a
 * root with openat2 and with the step-by-step fallback. */
#include <sched.h>
#include <sys/mount.h>

#include "files-util.h"
#include "files/ops.h"
#include "files/path.h"

TEST(path_checks)
{
	struct files_err err = { "" };
	CHECK_EQ(files_path_check("/", 1, &err), 0);
	CHECK_EQ(files_path_check("/a/b", 4, &err), 0);
	CHECK_EQ(files_path_check("a/b", 3, &err), -EINVAL);
	CHECK(strstr(err.msg, "not absolute"));
	CHECK_EQ(files_path_check("/a\0b", 4, &err), -EINVAL);
	CHECK(strstr(err.msg, "NUL"));
	CHECK_EQ(files_path_check("/a//b", 5, &err), -EINVAL);
	CHECK_EQ(files_path_check("/a/../b", 7, &err), -EINVAL);
	CHECK_EQ(files_path_check("/a/./b", 6, &err), -EINVAL);
	CHECK_EQ(files_path_check("/a/", 3, &err), -EINVAL);
	CHECK_EQ(files_path_check("", 0, &err), -EINVAL);
	char longp[FILES_PATH_MAX + 2];
	memset(longp, 'a', sizeof(longp));
	longp[0] = '/';
	longp[sizeof(longp) - 1] = 0;
	CHECK_EQ(files_path_check(longp, strlen(longp), &err), -EINVAL);
	CHECK_EQ(files_relpath_check("a/b", 3, &err), 0);
	CHECK_EQ(files_relpath_check("/etc/x", 6, &err), -EINVAL);
	CHECK_EQ(files_relpath_check("../x", 4, &err), -EINVAL);
	CHECK_EQ(files_relpath_check("a/../../x", 9, &err), -EINVAL);
	CHECK_EQ(files_relpath_check("a//x", 4, &err), -EINVAL);
}

TEST(open_beneath_refuses_symlinks_both_ways)
{
	char *d = make_tmpdir(), p[256];
	CHECK(d);
	snprintf(p, sizeof(p), "%s/dir", d);
	CHECK_EQ(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/dir/f", d);
	CHECK_EQ(write_file(p, "x", 0644), 0);
	snprintf(p, sizeof(p), "%s/up", d);
	CHECK_EQ(symlink("/etc", p), 0);
	snprintf(p, sizeof(p), "%s/dirlink", d);
	CHECK_EQ(symlink("dir", p), 0);
	int root = open(d, O_PATH | O_DIRECTORY);
	CHECK(root >= 0);
	for (int fb = 0; fb <= 1; fb++) {
		files_path_force_fallback(fb);
		int fd = files_open_beneath(root, "dir/f", O_RDONLY, 0);
		CHECK(fd >= 0);
		close(fd);
		CHECK_EQ(files_open_beneath(root, "up/passwd", O_RDONLY, 0), -ELOOP);
		CHECK_EQ(files_open_beneath(root, "dirlink/f", O_RDONLY, 0), -ELOOP);
		CHECK_EQ(files_open_beneath(root, "dirlink", O_RDONLY, 0), -ELOOP);
		CHECK_EQ(files_open_beneath(root, "up/x", O_WRONLY | O_CREAT, 0644), -ELOOP);
	}
	files_path_force_fallback(false);
	close(root);
	rm_rf(d);
	free(d);
}

TEST(stat_fields_and_symlinks)
{
	char *d = make_tmpdir(), p[256], l[256];
	struct files_info i = { 0 };
	struct files_err err = { "" };
	CHECK(d);
	snprintf(p, sizeof(p), "%s/f", d);
	snprintf(l, sizeof(l), "%s/l", d);
	CHECK_EQ(write_file(p, "hello", 0644), 0);
	CHECK_EQ(chmod(p, 04751), 0);
	CHECK_EQ(symlink("f", l), 0);
	CHECK_EQ(files_stat(p, false, &i, &err), 0);
	CHECK_EQ(i.type, FILES_TYPE_FILE);
	CHECK_EQ(i.size, 5);
	CHECK_EQ(i.mode, 04751);
	CHECK_STR(i.owner, "root");
	CHECK_STR(i.group, "root");
	CHECK_STR(i.path, p);
	files_info_clear(&i);
	CHECK_EQ(files_stat(l, false, &i, &err), 0);
	CHECK_EQ(i.type, FILES_TYPE_SYMLINK);
	CHECK_STR(i.symlink_target, "f");
	files_info_clear(&i);
	CHECK_EQ(files_stat(l, true, &i, &err), 0);
	CHECK_EQ(i.type, FILES_TYPE_FILE);
	files_info_clear(&i);
	CHECK_EQ(files_stat("/", false, &i, &err), 0);
	CHECK_EQ(i.type, FILES_TYPE_DIRECTORY);
	files_info_clear(&i);
	snprintf(p, sizeof(p), "%s/missing", d);
	CHECK_EQ(files_stat(p, false, &i, &err), -ENOENT);
	CHECK(strstr(err.msg, "missing"));
	rm_rf(d);
	free(d);
}

struct seen {
	char names[32][256];
	char owners[32][32];
	char groups[32][32];
	int n;
	int stop_at;
};

static int collect(const struct files_info *info, void *userdata)
{
	struct seen *s = userdata;
	if (s->n == s->stop_at)
		return -ECANCELED;
	if (s->n < 32) {
		snprintf(s->names[s->n], 256, "%s", info->path);
		snprintf(s->owners[s->n], 32, "%s", info->owner);
		snprintf(s->groups[s->n], 32, "%s", info->group);
	}
	s->n++;
	return 0;
}

static int index_of(struct seen *s, const char *suffix)
{
	for (int i = 0; i < s->n && i < 32; i++) {
		size_t a = strlen(s->names[i]), b = strlen(suffix);
		if (a >= b && strcmp(s->names[i] + a - b, suffix) == 0)
			return i;
	}
	return -1;
}

TEST(list_depth_order_and_stop)
{
	char *d = make_tmpdir(), p[256];
	struct files_err err = { "" };
	struct seen s = { .stop_at = -1 };
	CHECK(d);
	snprintf(p, sizeof(p), "%s/a", d);
	CHECK_EQ(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/a/b", d);
	CHECK_EQ(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/a/b/c", d);
	CHECK_EQ(write_file(p, "x", 0644), 0);
	snprintf(p, sizeof(p), "%s/top", d);
	CHECK_EQ(write_file(p, "x", 0644), 0);
	snprintf(p, sizeof(p), "%s/ln", d);
	CHECK_EQ(symlink("a", p), 0);
	/* Names through the listing's cache: the owner changes between
	 * entries. */
	snprintf(p, sizeof(p), "%s/a/b", d);
	CHECK_EQ(lchown(p, 65534, 65534), 0);

	CHECK_EQ(files_list(d, 0, collect, &s, &err), 0);
	CHECK_EQ(s.n, 3);
	s.n = 0;
	CHECK_EQ(files_list(d, 2, collect, &s, &err), 0);
	CHECK_EQ(s.n, 4);
	s.n = 0;
	CHECK_EQ(files_list(d, 10, collect, &s, &err), 0);
	CHECK_EQ(s.n, 5);
	CHECK(index_of(&s, "/a") < index_of(&s, "/a/b"));
	CHECK(index_of(&s, "/a/b") < index_of(&s, "/a/b/c"));
	snprintf(p, sizeof(p), "%s/a/b/c", d);
	CHECK(index_of(&s, p) >= 0); /* absolute paths */
	CHECK_STR(s.owners[index_of(&s, p)], "root");
	CHECK_STR(s.owners[index_of(&s, "/a/b")], "nobody");
	CHECK(strcmp(s.groups[index_of(&s, "/a/b")], "root") != 0);
	CHECK_STR(s.owners[index_of(&s, "/a")], "root");
	CHECK_STR(s.groups[index_of(&s, "/a")], "root");
	s = (struct seen){ .stop_at = 2 };
	CHECK_EQ(files_list(d, 10, collect, &s, &err), -ECANCELED);
	CHECK_EQ(files_list(d, FILES_LIST_DEPTH_MAX + 1, collect, &s, &err), -EINVAL);
	rm_rf(d);
	free(d);
}

TEST(mkdir_modes_and_parents)
{
	char *d = make_tmpdir(), p[256];
	struct files_err err = { "" };
	struct stat st;
	CHECK(d);
	snprintf(p, sizeof(p), "%s/x/y", d);
	CHECK_EQ(files_mkdir(p, 0700, false, &err), -ENOENT);
	CHECK_EQ(files_mkdir(p, 02750, true, &err), 0);
	CHECK_EQ(stat(p, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 02750);
	CHECK_EQ(files_mkdir(p, 0700, true, &err), 0);
	CHECK_EQ(files_mkdir(p, 0700, false, &err), -EEXIST);
	CHECK_EQ(files_mkdir(p, 010000, false, &err), -EINVAL);
	rm_rf(d);
	free(d);
}

TEST(remove_never_follows_and_refuses_root)
{
	char *d = make_tmpdir(), p[256], keep[256], l[256];
	struct files_err err = { "" };
	uint64_t n = 0;
	CHECK(d);
	snprintf(keep, sizeof(keep), "%s/keep", d);
	CHECK_EQ(mkdir(keep, 0755), 0);
	snprintf(p, sizeof(p), "%s/keep/precious", d);
	CHECK_EQ(write_file(p, "x", 0644), 0);
	snprintf(p, sizeof(p), "%s/t", d);
	CHECK_EQ(mkdir(p, 0755), 0);
	snprintf(l, sizeof(l), "%s/t/link", d);
	CHECK_EQ(symlink(keep, l), 0);
	snprintf(p, sizeof(p), "%s/t/sub", d);
	CHECK_EQ(mkdir(p, 0755), 0);
	snprintf(p, sizeof(p), "%s/t/sub/f", d);
	CHECK_EQ(write_file(p, "x", 0644), 0);

	CHECK_EQ(files_remove("/", true, &n, &err), -EBUSY);
	snprintf(p, sizeof(p), "%s/t", d);
	CHECK_EQ(files_remove(p, false, &n, &err), -ENOTEMPTY);
	CHECK_EQ(files_remove(l, true, &n, &err), 0); /* the link, not its target */
	CHECK_EQ(n, 1);
	CHECK_EQ(count_entries(keep), 1);
	CHECK_EQ(symlink(keep, l), 0);
	CHECK_EQ(files_remove(p, true, &n, &err), 0);
	CHECK_EQ(n, 4);
	CHECK_EQ(count_entries(keep), 1);
	CHECK_EQ(count_entries(d), 1);
	rm_rf(d);
	free(d);
}

static int mount_child(void *arg)
{
	const char *d = arg;
	char t[256], m[256], p[256];
	struct files_err err = { "" };
	uint64_t n = 0;
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return 10;
	snprintf(t, sizeof(t), "%s/t", d);
	snprintf(m, sizeof(m), "%s/t/mnt", d);
	if (mkdir(t, 0755) < 0 || mkdir(m, 0755) < 0 || mount("tmpfs", m, "tmpfs", 0, "size=64k") < 0)
		return 11;
	snprintf(p, sizeof(p), "%s/t/mnt/inside", d);
	if (write_file(p, "x", 0644) < 0)
		return 12;
	if (files_remove(t, true, &n, &err) != -EBUSY || !strstr(err.msg, "mounted"))
		return 13;
	if (count_entries(m) != 1)
		return 14;
	/* A bind mount of the same filesystem (a directory outside the tree)
	 * is another mount too. */
	char src[256];
	snprintf(src, sizeof(src), "%s/src", d);
	snprintf(p, sizeof(p), "%s/src/inside", d);
	if (umount(m) < 0 || mkdir(src, 0755) < 0 || write_file(p, "x", 0644) < 0)
		return 15;
	snprintf(p, sizeof(p), "%s/t/bind", d);
	if (mkdir(p, 0755) < 0 || mount(src, p, NULL, MS_BIND, NULL) < 0)
		return 16;
	if (files_remove(t, true, &n, &err) != -EBUSY)
		return 17;
	if (count_entries(src) != 1)
		return 18;
	return 0;
}

TEST(remove_stays_on_its_mount)
{
	char *d = make_tmpdir();
	CHECK(d);
	CHECK_EQ(in_child(mount_child, d), 0);
	rm_rf(d);
	free(d);
}

TEST(move_and_no_replace)
{
	char *d = make_tmpdir(), a[256], b[256], buf[16];
	struct files_err err = { "" };
	CHECK(d);
	snprintf(a, sizeof(a), "%s/a", d);
	snprintf(b, sizeof(b), "%s/b", d);
	CHECK_EQ(write_file(a, "A", 0644), 0);
	CHECK_EQ(write_file(b, "B", 0644), 0);
	CHECK_EQ(files_move(a, b, true, &err), -EEXIST);
	CHECK_STR(read_file(b, buf, sizeof(buf)), "B");
	CHECK_EQ(files_move(a, b, false, &err), 0);
	CHECK_STR(read_file(b, buf, sizeof(buf)), "A");
	CHECK_EQ(files_move(a, b, false, &err), -ENOENT);
	CHECK_EQ(files_move("/", b, false, &err), -EBUSY);
	rm_rf(d);
	free(d);
}
