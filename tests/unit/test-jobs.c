/* Listing the boot jobs: every regular file below a directory, sorted by
 * full path in byte order, through subdirectories and symlinks. */
#include <fcntl.h>
#include <sys/stat.h>

#include "init/jobs.h"
#include "test.h"

static char root[64];

static void touch(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
	if (fd >= 0)
		close(fd);
}

static void mkdir_rel(const char *rel)
{
	char p[512];
	snprintf(p, sizeof(p), "%s/%s", root, rel);
	(void)mkdir(p, 0755);
}

static void rm_tree(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	/* Best effort: the tree is in a fresh temporary directory. */
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
}

/* The list as one string of paths relative to root, separated by ' '. */
static int listed(const char *dir, char *out, size_t size, size_t *ret_n)
{
	char **list = NULL;
	size_t n = 0, off = 0, rootlen = strlen(root);
	int r = jobs_list(dir, &list, &n);

	out[0] = 0;
	if (r < 0)
		return r;
	for (size_t i = 0; i < n; i++)
		off += (size_t)snprintf(out + off, size - off, "%s%s", i ? " " : "",
					strncmp(list[i], root, rootlen) == 0 ? list[i] + rootlen + 1 : list[i]);
	if (list[n] != NULL)
		r = -EINVAL; /* must be NULL-terminated */
	jobs_list_free(list);
	*ret_n = n;
	return r;
}

TEST(sorted_recursive_with_links)
{
	char got[1024], p[256], target[256];
	size_t n;

	snprintf(root, sizeof(root), "/tmp/valet-test-jobs-XXXXXX");
	CHECK(mkdtemp(root));
	touch("20-b");
	touch("10-a");
	touch(".hidden");
	mkdir_rel("15-dir");
	touch("15-dir/x");
	mkdir_rel("15-dir/deeper");
	touch("15-dir/deeper/y");
	mkdir_rel("empty");
	/* A link to a file is a job; a dangling one is not; a FIFO is not. */
	snprintf(target, sizeof(target), "%s/10-a", root);
	snprintf(p, sizeof(p), "%s/30-link", root);
	CHECK(symlink(target, p) == 0);
	snprintf(p, sizeof(p), "%s/40-dangling", root);
	CHECK(symlink("/nonexistent/valet", p) == 0);
	snprintf(p, sizeof(p), "%s/50-fifo", root);
	CHECK(mkfifo(p, 0644) == 0);

	CHECK_EQ(listed(root, got, sizeof(got), &n), 0);
	CHECK_STR(got, ".hidden 10-a 15-dir/deeper/y 15-dir/x 20-b 30-link");
	CHECK_EQ(n, 6);
	rm_tree();
}

TEST(missing_directory_is_empty)
{
	char got[64];
	size_t n = 99;

	snprintf(root, sizeof(root), "/tmp/valet-test-jobs-XXXXXX");
	CHECK(mkdtemp(root));
	mkdir_rel("empty");
	char p[128];
	snprintf(p, sizeof(p), "%s/empty", root);
	CHECK_EQ(listed(p, got, sizeof(got), &n), 0);
	CHECK_EQ(n, 0);
	snprintf(p, sizeof(p), "%s/missing", root);
	n = 99;
	CHECK_EQ(listed(p, got, sizeof(got), &n), 0);
	CHECK_EQ(n, 0);
	/* A file where the directory should be is an error, not an empty list. */
	touch("file");
	snprintf(p, sizeof(p), "%s/file", root);
	CHECK_EQ(listed(p, got, sizeof(got), &n), -ENOTDIR);
	rm_tree();
}

TEST(depth_is_bounded)
{
	char got[1024], rel[256] = "";
	size_t n;

	snprintf(root, sizeof(root), "/tmp/valet-test-jobs-XXXXXX");
	CHECK(mkdtemp(root));
	/* Files at depths 0..10 below root: those deeper than 8 levels of
	 * subdirectories are not looked at. */
	for (int d = 0; d <= 10; d++) {
		char f[280];
		snprintf(f, sizeof(f), "%s%sf%d", rel, *rel ? "/" : "", d);
		touch(f);
		size_t len = strlen(rel);
		snprintf(rel + len, sizeof(rel) - len, "%sd", len ? "/" : "");
		mkdir_rel(rel);
	}
	CHECK_EQ(listed(root, got, sizeof(got), &n), 0);
	CHECK_EQ(n, 9);
	rm_tree();
}
