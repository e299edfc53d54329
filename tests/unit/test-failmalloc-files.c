/* Allocation-failure sweep over the files layer: resolving a user, a
 * tree written (directory, file with data, symlink, hard link) and read
 * back, an atomic write, a stat and a listing. For every N the N-th
 * allocation fails: the calls either succeed or say -ENOMEM, leak
 * nothing, and leave no temporary file behind. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "failmalloc.h"
#include "files/creds.h"
#include "files/ops.h"
#include "files/tree.h"
#include "files/writer.h"
#include "test.h"

static char base[64];

static struct files_tree_entry ent(const char *path, enum files_type type)
{
	return (struct files_tree_entry){ .path = path, .path_len = strlen(path), .type = type, .mode = 0755 };
}

static int on_entry(const struct files_info *info, void *userdata)
{
	(*(int *)userdata)++;
	return 0;
}

static int write_tree(int rootfd, struct files_err *err)
{
	struct files_tree_writer *w = NULL;
	struct files_tree_summary sum;
	int r = files_tree_writer_new(rootfd, &(struct files_tree_opts){ .no_sync = true }, &w, err);
	if (r < 0)
		return r;
	struct files_tree_entry e[4] = { ent("d", FILES_TYPE_DIRECTORY), ent("d/f", FILES_TYPE_FILE),
					 ent("s", FILES_TYPE_SYMLINK), ent("h", FILES_TYPE_FILE) };
	e[1].size = 5;
	e[2].symlink_target = "d/f";
	e[2].symlink_target_len = 3;
	e[3].hardlink_to = "d/f";
	e[3].hardlink_to_len = 3;
	for (int i = 0; i < 4 && r >= 0; i++) {
		r = files_tree_writer_entry(w, &e[i], err);
		if (r >= 0 && i == 1)
			r = files_tree_writer_data(w, "hello", 5, err);
	}
	if (r >= 0)
		r = files_tree_writer_finish(w, &sum, err);
	files_tree_writer_free(w);
	return r;
}

static int read_tree(int rootfd, struct files_err *err)
{
	struct files_tree_reader *rd = NULL;
	const struct files_tree_entry *e;
	char buf[16];
	int r = files_tree_reader_new(rootfd, &rd, err);
	while (r >= 0 && (r = files_tree_reader_next(rd, &e, err)) > 0)
		while ((r = (int)files_tree_reader_read(rd, buf, sizeof(buf), err)) > 0)
			;
	files_tree_reader_free(rd);
	return r;
}

static int run(const char *root)
{
	struct files_err err = { "" };
	struct files_user u = { 0 };
	struct files_info info = { 0 };
	struct files_writer *w = NULL;
	char path[128];
	int n = 0, fd = -1;

	int r = files_user_resolve("nobody", &u, &err);
	files_user_clear(&u);
	if (r >= 0)
		r = files_tree_root_open(root, true, false, &fd, &err);
	if (r >= 0)
		r = write_tree(fd, &err);
	if (r >= 0)
		r = read_tree(fd, &err);
	if (fd >= 0)
		close(fd);
	snprintf(path, sizeof(path), "%s/w", root);
	if (r >= 0)
		r = files_writer_open(path, &(struct files_write_opts){ .no_tmpfile = true }, &w, &err);
	if (r >= 0)
		r = files_writer_write(w, "data", 4, &err);
	if (r >= 0)
		r = files_writer_commit(w, NULL, NULL, &err);
	files_writer_free(w);
	if (r >= 0)
		r = files_stat(path, false, &info, &err);
	files_info_clear(&info);
	if (r >= 0)
		r = files_list(root, 3, on_entry, &n, &err);
	return r;
}

/* Any ".valet-tmp-" name below dir. */
static bool tmp_left(const char *dir)
{
	DIR *d = opendir(dir);
	bool found = false;
	if (!d)
		return false;
	for (struct dirent *de; !found && (de = readdir(d));) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (!strncmp(de->d_name, ".valet-tmp-", 11))
			found = true;
		else if (de->d_type == DT_DIR) {
			char sub[512];
			snprintf(sub, sizeof(sub), "%s/%s", dir, de->d_name);
			found = tmp_left(sub);
		}
	}
	closedir(d);
	return found;
}

static void scenario(unsigned long n, unsigned long *ret_count)
{
	char root[128];
	snprintf(root, sizeof(root), "%s/r%lu", base, n);
	files_forget_names();
	failmalloc_arm(n);
	int r = run(root);
	*ret_count = failmalloc_disarm();
	if (!failmalloc_injected())
		CHECK_EQ(r, 0);
	else
		CHECK(r == 0 || r == -ENOMEM);
	CHECK(!tmp_left(root));
	/* Again, without failures, over what the failed run left. */
	CHECK_EQ(run(root), 0);
}

TEST(sweep_files_layer)
{
	snprintf(base, sizeof(base), "/tmp/valet-failmalloc-files-XXXXXX");
	CHECK(mkdtemp(base));
	unsigned long total = failmalloc_sweep(NULL, scenario, FAILMALLOC_EACH_INJECTED);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", base);
	CHECK_EQ(system(cmd), 0);
	CHECK(total > 15);
}
