#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/macro.h"
#include "files/inode-set.h"
#include "files/path.h"
#include "files/tree.h"
#include "files/writer.h"

struct pending_dir {
	char *path;
	bool reopened; /* finished once already (reopen_ancestors()) */
	mode_t mode;
	bool has_mtime;
	struct timespec mtime;
	uid_t uid;
	gid_t gid;
};

struct files_tree_writer {
	int rootfd;
	struct files_tree_opts o;
	mode_t umask; /* the process's, read once */
	/* The parent directory of the last entry, kept for the next: a
	 * directory's files come one after the other, and opening it again
	 * beneath the root for each was an openat2, a dup and two closes a
	 * file. -1 when none; parent_path "" is the root itself (rootfd). */
	int parent_fd;
	char parent_path[FILES_PATH_MAX];
	struct files_inode_set created;	 /* the files written: hard links may name only them */
	struct files_inode_set finished; /* the directories created and given their mode */
	struct pending_dir stack[FILES_TREE_DEPTH_MAX];
	size_t depth;
	struct files_writer *file;
	char *file_path;
	uint64_t file_left;
	struct files_tree_summary sum;
};

int files_tree_entry_check(const struct files_tree_entry *e, struct files_err *err)
{
	int r = files_relpath_check(e->path, e->path_len, err);
	if (r < 0) {
		char msg[sizeof(err->msg)];
		if (!err)
			return r;
		snprintf(msg, sizeof(msg), "%s", err->msg);
		return files_fail(err, r, "tree entry: %s", msg);
	}
	const char *p = e->path;
	if (e->mode & ~07777u)
		return files_fail(err, -EINVAL, "entry %s: mode %#o above 07777", p, e->mode);
	if (e->type != FILES_TYPE_FILE && e->type != FILES_TYPE_DIRECTORY && e->type != FILES_TYPE_SYMLINK)
		return files_fail(err, -EINVAL, "entry %s: type %d is not a file, directory or symlink", p,
				  (int)e->type);
	if (e->type != FILES_TYPE_SYMLINK && e->symlink_target_len)
		return files_fail(err, -EINVAL, "entry %s: symlink_target on an entry that is not a symlink", p);
	if (e->type != FILES_TYPE_FILE && e->hardlink_to_len)
		return files_fail(err, -EINVAL, "entry %s: hardlink_to on an entry that is not a file", p);
	if (e->type != FILES_TYPE_FILE && e->size)
		return files_fail(err, -EINVAL, "entry %s: size on an entry that is not a file", p);
	if (e->type == FILES_TYPE_SYMLINK) {
		if (!e->symlink_target || e->symlink_target_len == 0)
			return files_fail(err, -EINVAL, "entry %s: symlink without a target", p);
		if (strlen(e->symlink_target) != e->symlink_target_len)
			return files_fail(err, -EINVAL, "entry %s: symlink target contains a NUL byte", p);
		if (e->symlink_target_len >= FILES_PATH_MAX)
			return files_fail(err, -EINVAL, "entry %s: symlink target longer than %d bytes", p,
					  FILES_PATH_MAX - 1);
	}
	if (e->hardlink_to_len) {
		if (e->size)
			return files_fail(err, -EINVAL, "entry %s: a hard link has no data (size %llu)", p,
					  (unsigned long long)e->size);
		struct files_err sub = { "" };
		if (files_relpath_check(e->hardlink_to, e->hardlink_to_len, &sub) < 0)
			return files_fail(err, -EINVAL, "entry %s: hardlink_to: %s", p, sub.msg);
	}
	return 0;
}

int files_tree_root_open(const char *root, bool create, bool make_parents, int *ret_fd, struct files_err *err)
{
	int r = files_path_check(root, strlen(root), err);
	if (r < 0)
		return r;
	if (create && strcmp(root, "/") != 0) {
		_cleanup_close_ int dirfd = -1;
		const char *name;
		r = files_open_parent(root, make_parents, &dirfd, &name, err);
		if (r < 0)
			return r;
		if (mkdirat(dirfd, name, 0755) < 0 && errno != EEXIST)
			return files_fail_path(err, -errno, root);
	}
	int fd = open(root, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return files_fail_path(err, -errno, root);
	*ret_fd = fd;
	return 0;
}

int files_tree_writer_new(int rootfd, const struct files_tree_opts *o, struct files_tree_writer **ret,
			  struct files_err *err)
{
	if (o->keep_owners && !o->acting_as_root)
		return files_fail(err, -EPERM, "keep_owners is for root only");
	struct files_tree_writer *w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->o = *o;
	w->parent_fd = -1;
	/* Read back at once: these processes are single-threaded. */
	w->umask = umask(0);
	(void)umask(w->umask);
	w->rootfd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
	if (w->rootfd < 0) {
		int r = -errno;
		free(w);
		return r;
	}
	*ret = w;
	return 0;
}

/* Mode, owner and mtime of the directory on top of the stack, which is
 * popped whatever happens. */
static int pop_dir(struct files_tree_writer *w, struct files_err *err)
{
	struct pending_dir *d = &w->stack[--w->depth];
	struct stat st;
	int r = 0;
	int fd = files_open_beneath(w->rootfd, d->path, O_RDONLY | O_DIRECTORY, 0);
	if (fd < 0)
		r = -fd;
	else if (w->o.keep_owners && fchown(fd, d->uid, d->gid) < 0)
		r = errno;
	else if (fchmod(fd, d->mode) < 0)
		r = errno;
	else if (d->has_mtime && futimens(fd, (struct timespec[2]){ { .tv_nsec = UTIME_OMIT }, d->mtime }) < 0)
		r = errno;
	else if (fstat(fd, &st) < 0)
		r = errno;
	else if (!d->reopened && files_inode_set_add(&w->finished, st.st_dev, st.st_ino, NULL) < 0)
		r = ENOMEM; /* E2BIG: more than FILES_INODE_SET_MAX directories */
	safe_close(fd);
	if (r)
		r = files_fail(err, -r, "entry %s: setting its mode and mtime: %s", d->path, strerror(r));
	free(d->path);
	d->path = NULL;
	return r;
}

/* Pops the directories path is not inside of. */
static int pop_until_parent(struct files_tree_writer *w, const char *path, struct files_err *err)
{
	while (w->depth > 0) {
		const char *top = w->stack[w->depth - 1].path;
		size_t n = strlen(top);
		if (strncmp(path, top, n) == 0 && path[n] == '/')
			return 0;
		int r = pop_dir(w, err);
		if (r < 0)
			return r;
	}
	return 0;
}

/* The message for a failed open of entry path's parent. */
static int parent_error(int r, const char *path, struct files_err *err)
{
	switch (r) {
	case -ELOOP: return files_fail(err, -EINVAL, "entry %s: goes through a symbolic link (refused)", path);
	case -EXDEV: return files_fail(err, -EINVAL, "entry %s: leaves the root (refused)", path);
	case -ENOENT: return files_fail(err, r, "entry %s: its directory is not in the tree", path);
	case -ENOTDIR: return files_fail(err, r, "entry %s: a component is not a directory", path);
	default: return files_fail(err, r, "entry %s: %s", path, strerror(-r));
	}
}

/* Renames dirfd/tmp over dirfd/name, removing tmp on failure. */
static int replace_with(int dirfd, const char *tmp, const char *name, const char *path, struct files_err *err)
{
	if (renameat(dirfd, tmp, dirfd, name) == 0)
		return 0;
	int r = -errno;
	(void)unlinkat(dirfd, tmp, 0);
	return files_fail(err, r, "entry %s: %s", path, strerror(-r));
}

static int add_dir(struct files_tree_writer *w, int dirfd, const char *name, const struct files_tree_entry *e,
		   struct files_err *err)
{
	struct stat st;
	if (w->depth == FILES_TREE_DEPTH_MAX)
		return files_fail(err, -EINVAL, "entry %s: deeper than %d directories", e->path, FILES_TREE_DEPTH_MAX);
	if (mkdirat(dirfd, name, 0700) < 0) {
		if (errno != EEXIST)
			return files_fail(err, -errno, "entry %s: %s", e->path, strerror(errno));
		if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			return files_fail(err, -errno, "entry %s: %s", e->path, strerror(errno));
		if (!S_ISDIR(st.st_mode))
			return files_fail(err, -ENOTDIR, "entry %s: exists and is not a directory", e->path);
	}
	char *p = strdup(e->path);
	if (!p)
		return -ENOMEM;
	w->stack[w->depth++] = (struct pending_dir){
		.path = p,
		.mode = e->mode,
		.has_mtime = e->has_mtime,
		.mtime = e->mtime,
		.uid = e->uid,
		.gid = e->gid,
	};
	w->sum.directories++;
	return 0;
}

static int add_symlink(struct files_tree_writer *w, int dirfd, const char *name, const struct files_tree_entry *e,
		       struct files_err *err)
{
	char tmp[FILES_TMP_NAME_MAX];
	int r = files_tmp_name(tmp);
	if (r < 0)
		return r;
	if (symlinkat(e->symlink_target, dirfd, tmp) < 0)
		return files_fail(err, -errno, "entry %s: %s", e->path, strerror(errno));
	r = 0;
	if (w->o.keep_owners && fchownat(dirfd, tmp, e->uid, e->gid, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	if (!r && e->has_mtime &&
	    utimensat(dirfd, tmp, (struct timespec[2]){ { .tv_nsec = UTIME_OMIT }, e->mtime }, AT_SYMLINK_NOFOLLOW) < 0)
		r = -errno;
	if (r < 0) {
		(void)unlinkat(dirfd, tmp, 0);
		return files_fail(err, r, "entry %s: %s", e->path, strerror(-r));
	}
	r = replace_with(dirfd, tmp, name, e->path, err);
	if (r < 0)
		return r;
	w->sum.symlinks++;
	return 0;
}

static int add_hardlink(struct files_tree_writer *w, int dirfd, const char *name, const struct files_tree_entry *e,
			struct files_err *err)
{
	_cleanup_close_ int sdir = -1;
	const char *sname;
	struct stat st, lst;
	char tmp[FILES_TMP_NAME_MAX];

	int r = files_open_parent_beneath(w->rootfd, e->hardlink_to, &sdir, &sname);
	if (r < 0)
		return files_fail(err, r == -ELOOP || r == -EXDEV ? -EINVAL : r, "entry %s: hardlink_to %s: %s",
				  e->path, e->hardlink_to,
				  r == -ELOOP ? "goes through a symbolic link (refused)" : strerror(-r));
	if (fstatat(sdir, sname, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return files_fail(err, -errno, "entry %s: hardlink_to %s: %s", e->path, e->hardlink_to,
				  strerror(errno));
	if (!S_ISREG(st.st_mode) || !files_inode_set_find(&w->created, st.st_dev, st.st_ino, NULL))
		return files_fail(err, -EINVAL, "entry %s: hardlink_to %s is not a file of this tree (refused)",
				  e->path, e->hardlink_to);
	r = files_tmp_name(tmp);
	if (r < 0)
		return r;
	if (linkat(sdir, sname, dirfd, tmp, 0) < 0)
		return files_fail(err, -errno, "entry %s: %s", e->path, strerror(errno));
	/* What was linked is what was checked (not a file swapped in
	 * between), or nothing stays. */
	if (fstatat(dirfd, tmp, &lst, AT_SYMLINK_NOFOLLOW) < 0 || lst.st_dev != st.st_dev || lst.st_ino != st.st_ino) {
		(void)unlinkat(dirfd, tmp, 0);
		return files_fail(err, -EINVAL, "entry %s: hardlink_to %s changed while linked (refused)", e->path,
				  e->hardlink_to);
	}
	r = replace_with(dirfd, tmp, name, e->path, err);
	if (r < 0)
		return r;
	w->sum.files++;
	return 0;
}

static int end_file(struct files_tree_writer *w, struct files_err *err)
{
	struct stat st;
	int r = files_writer_commit(w->file, NULL, &st, err);
	files_writer_free(TAKE_PTR(w->file));
	free(TAKE_PTR(w->file_path));
	if (r < 0)
		return r;
	r = files_inode_set_add(&w->created, st.st_dev, st.st_ino, NULL);
	if (r == -E2BIG)
		return files_fail(err, -EINVAL, "more than %u files in one tree", FILES_INODE_SET_MAX);
	if (r < 0)
		return r;
	w->sum.files++;
	w->sum.bytes += (uint64_t)st.st_size;
	return 0;
}

static int add_file(struct files_tree_writer *w, int dirfd, const char *name, const struct files_tree_entry *e,
		    struct files_err *err)
{
	struct files_write_opts o = {
		.has_mode = true,
		.mode = e->mode,
		.has_mtime = e->has_mtime,
		.mtime = e->mtime,
		.has_owner = w->o.keep_owners,
		.uid = e->uid,
		.gid = e->gid,
		/* One syncfs() for the tree instead of two fsyncs a file. */
		.no_fsync = true,
		/* Nobody asked for a digest of a tree's files. */
		.no_digest = true,
		/* Most names of a tree are new: linked in place, no rename. */
		.link_new = true,
		.mode_at_create = !(e->mode & (07000 | w->umask)),
		.dirfd_borrowed = true, /* parent_fd outlives the file */
	};
	struct files_err sub = { "" };
	int r = files_writer_open_at(dirfd, name, e->path, &o, &w->file, &sub);
	if (r < 0)
		return files_fail(err, r, "entry %s", sub.msg);
	if (!(w->file_path = strdup(e->path)))
		return -ENOMEM;
	w->file_left = e->size;
	return e->size == 0 ? end_file(w, err) : 0;
}

/* The order of entries is the client's: entries of a directory may come
 * after entries outside it, once the directory was finished (its mode and
 * mtime applied; it may be read-only now). Each such ancestor of path
 * that this tree created goes back on the stack with the attributes it
 * has, made writable (0700) again until it is left; directories that
 * were there before the tree are left as they are. */
static int reopen_ancestors(struct files_tree_writer *w, const char *path, struct files_err *err)
{
	size_t from = w->depth ? strlen(w->stack[w->depth - 1].path) + 1 : 0;

	for (const char *slash = strchr(path + from, '/'); slash; slash = strchr(slash + 1, '/')) {
		_cleanup_free_ char *anc = strndup(path, (size_t)(slash - path));
		_cleanup_close_ int fd = -1;
		char proc[64];
		struct stat st;
		if (!anc)
			return -ENOMEM;
		/* O_PATH: a finished directory may be unreadable to its user. */
		fd = files_open_beneath(w->rootfd, anc, O_PATH | O_DIRECTORY, 0);
		if (fd < 0 || fstat(fd, &st) < 0)
			return 0; /* opening the entry's parent reports it */
		if (files_inode_set_find(&w->finished, st.st_dev, st.st_ino, NULL) != 1)
			continue;
		if (w->depth == FILES_TREE_DEPTH_MAX)
			return files_fail(err, -EINVAL, "entry %s: deeper than %d directories", path,
					  FILES_TREE_DEPTH_MAX);
		/* fchmod() refuses an O_PATH fd; its /proc link is the file. */
		snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
		if (chmod(proc, 0700) < 0)
			return files_fail(err, -errno, "entry %s: opening %s again: %s", path, anc, strerror(errno));
		w->stack[w->depth++] = (struct pending_dir){
			.path = TAKE_PTR(anc),
			.reopened = true,
			.mode = st.st_mode & 07777,
			.has_mtime = true,
			.mtime = st.st_mtim,
			.uid = st.st_uid,
			.gid = st.st_gid,
		};
	}
	return 0;
}

/* The directory holding entry path (borrowed: the writer's), and the
 * last component in *ret_name. Every component is opened beneath the root
 * without following symlinks, once for a run of entries of the same
 * directory: between them the fd keeps the directory it checked, even if
 * something renames it meanwhile (it is the tree's own directory, and
 * whoever may move it may move the entries written into it too). */
static int open_parent(struct files_tree_writer *w, const char *path, int *ret_dirfd, const char **ret_name)
{
	const char *last = strrchr(path, '/');
	size_t n = last ? (size_t)(last - path) : 0;

	*ret_name = last ? last + 1 : path;
	if (!last) {
		*ret_dirfd = w->rootfd;
		return 0;
	}
	if (w->parent_fd >= 0 && strlen(w->parent_path) == n && memcmp(w->parent_path, path, n) == 0) {
		*ret_dirfd = w->parent_fd;
		return 0;
	}
	if (n >= sizeof(w->parent_path))
		return -ENAMETOOLONG;
	w->parent_fd = safe_close(w->parent_fd);
	memcpy(w->parent_path, path, n);
	w->parent_path[n] = '\0';
	int fd = files_open_beneath(w->rootfd, w->parent_path, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	*ret_dirfd = w->parent_fd = fd;
	return 0;
}

int files_tree_writer_entry(struct files_tree_writer *w, const struct files_tree_entry *e, struct files_err *err)
{
	int dirfd;
	const char *name;

	if (w->file)
		return files_fail(err, -EINVAL, "entry %s: %llu bytes of %s still expected", e->path ? e->path : "",
				  (unsigned long long)w->file_left, w->file_path);
	int r = files_tree_entry_check(e, err);
	if (r < 0)
		return r;
	r = pop_until_parent(w, e->path, err);
	if (r < 0)
		return r;
	r = reopen_ancestors(w, e->path, err);
	if (r < 0)
		return r;
	r = open_parent(w, e->path, &dirfd, &name);
	if (r < 0)
		return parent_error(r, e->path, err);
	if (e->type == FILES_TYPE_DIRECTORY)
		return add_dir(w, dirfd, name, e, err);
	if (e->type == FILES_TYPE_SYMLINK)
		return add_symlink(w, dirfd, name, e, err);
	if (e->hardlink_to_len)
		return add_hardlink(w, dirfd, name, e, err);
	return add_file(w, dirfd, name, e, err);
}

int files_tree_writer_data(struct files_tree_writer *w, const void *buf, size_t len, struct files_err *err)
{
	if (len == 0)
		return 0;
	if (!w->file)
		return files_fail(err, -EINVAL, "data without a file entry before it");
	if (len > w->file_left)
		return files_fail(err, -EINVAL, "entry %s: more data than its size", w->file_path);
	int r = files_writer_write(w->file, buf, len, err);
	if (r < 0)
		return r;
	w->file_left -= len;
	return w->file_left == 0 ? end_file(w, err) : 0;
}

int files_tree_writer_finish(struct files_tree_writer *w, struct files_tree_summary *ret, struct files_err *err)
{
	if (w->file)
		return files_fail(err, -EINVAL, "entry %s: %llu bytes missing", w->file_path,
				  (unsigned long long)w->file_left);
	while (w->depth > 0) {
		int r = pop_dir(w, err);
		if (r < 0)
			return r;
	}
	if (!w->o.no_sync) {
		_cleanup_close_ int fd = openat(w->rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0 || syncfs(fd) < 0)
			return files_fail(err, -errno, "syncing the tree: %s", strerror(errno));
	}
	*ret = w->sum;
	return 0;
}

void files_tree_writer_free(struct files_tree_writer *w)
{
	if (!w)
		return;
	files_writer_free(w->file);
	free(w->file_path);
	while (w->depth > 0)
		(void)pop_dir(w, NULL);
	files_inode_set_clear(&w->created);
	files_inode_set_clear(&w->finished);
	safe_close(w->parent_fd);
	safe_close(w->rootfd);
	free(w);
}
