#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/macro.h"
#include "files/inode-set.h"
#include "files/path.h"
#include "files/tree.h"

struct level {
	DIR *d;
	size_t len; /* of the directory's path in path (0 for the root) */
};

struct files_tree_reader {
	struct level stack[FILES_TREE_DEPTH_MAX];
	size_t depth;
	char path[FILES_PATH_MAX];
	char target[FILES_PATH_MAX];
	struct files_inode_set links; /* files with several links sent so far */
	struct files_tree_entry entry;
	int fd; /* the current file's data */
	uint64_t left;
	uint64_t pos;
	files_tree_skip_fn on_skip;
	void *skip_userdata;
};

void files_tree_reader_free(struct files_tree_reader *r)
{
	if (!r)
		return;
	while (r->depth > 0)
		closedir(r->stack[--r->depth].d);
	safe_close(r->fd);
	files_inode_set_clear(&r->links);
	free(r);
}

static int push(struct files_tree_reader *r, int fd, size_t len)
{
	if (r->depth == FILES_TREE_DEPTH_MAX) {
		safe_close(fd);
		return -ELOOP;
	}
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = -errno;
		safe_close(fd);
		return e;
	}
	r->stack[r->depth++] = (struct level){ .d = d, .len = len };
	return 0;
}

int files_tree_reader_new(int rootfd, struct files_tree_reader **ret, struct files_err *err)
{
	struct files_tree_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->fd = -1;
	int fd = openat(rootfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	int e = fd < 0 ? -errno : push(r, fd, 0);
	if (e < 0) {
		files_tree_reader_free(r);
		return files_fail(err, e, "opening the tree's root: %s", strerror(-e));
	}
	*ret = r;
	return 0;
}

void files_tree_reader_on_skip(struct files_tree_reader *r, files_tree_skip_fn fn, void *userdata)
{
	r->on_skip = fn;
	r->skip_userdata = userdata;
}

/* Opens name, which the directory says is a regular file, as the
 * current file, and its stat: 0, or -errno with nothing kept when it is
 * not (any more) a regular file, or cannot be opened. O_NONBLOCK: a FIFO
 * put there meanwhile does not block the open. */
static int open_file(struct files_tree_reader *r, int dfd, const char *name, struct stat *ret_st)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, ret_st) < 0 || !S_ISREG(ret_st->st_mode)) {
		safe_close(fd);
		return -EIO;
	}
	r->fd = fd;
	return 0;
}

int files_tree_reader_next(struct files_tree_reader *r, const struct files_tree_entry **ret, struct files_err *err)
{
	if (r->fd >= 0 && r->left > 0)
		return files_fail(err, -EINVAL, "%s: its data was not read", r->path);
	r->fd = safe_close(r->fd);

	while (r->depth > 0) {
		struct level *l = &r->stack[r->depth - 1];
		errno = 0;
		struct dirent *de = readdir(l->d);
		if (!de) {
			if (errno)
				return files_fail(err, -errno, "%s: %s", l->len ? r->path : ".", strerror(errno));
			closedir(l->d);
			r->depth--;
			continue;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		size_t n = strlen(de->d_name);
		size_t len = l->len ? l->len + 1 + n : n;
		if (len >= sizeof(r->path))
			return files_fail(err, -ENAMETOOLONG, "a path below the root is longer than %d bytes",
					  FILES_PATH_MAX - 1);
		if (l->len)
			r->path[l->len] = '/';
		memcpy(r->path + (l->len ? l->len + 1 : 0), de->d_name, n + 1);

		int dfd = dirfd(l->d);
		struct stat st;
		/* A regular file, says the directory: opened and fstat'ed, one
		 * fstatat less a file. Anything else (or a file replaced by
		 * something else since) takes the general way below. */
		bool opened = de->d_type == DT_REG && open_file(r, dfd, de->d_name, &st) == 0;
		if (!opened && fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				continue;
			return files_fail(err, -errno, "%s: %s", r->path, strerror(errno));
		}
		struct files_tree_entry *e = &r->entry;
		*e = (struct files_tree_entry){
			.path = r->path,
			.path_len = len,
			.type = files_type_of(st.st_mode),
			.mode = st.st_mode & 07777,
			.has_mtime = true,
			.mtime = st.st_mtim,
			.uid = st.st_uid,
			.gid = st.st_gid,
		};
		if (S_ISDIR(st.st_mode)) {
			int fd = openat(dfd, de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			int rr = fd < 0 ? -errno : push(r, fd, len);
			if (rr < 0)
				return files_fail(err, rr, "%s: %s", r->path, strerror(-rr));
		} else if (S_ISLNK(st.st_mode)) {
			ssize_t t = readlinkat(dfd, de->d_name, r->target, sizeof(r->target) - 1);
			if (t < 0)
				return files_fail(err, -errno, "%s: %s", r->path, strerror(errno));
			r->target[t] = '\0';
			e->symlink_target = r->target;
			e->symlink_target_len = (size_t)t;
		} else if (S_ISREG(st.st_mode)) {
			const char *first;
			if (st.st_nlink > 1 && files_inode_set_find(&r->links, st.st_dev, st.st_ino, &first)) {
				r->fd = safe_close(r->fd); /* no data: a link */
				e->hardlink_to = first;
				e->hardlink_to_len = strlen(first);
				*ret = e;
				return 1;
			}
			if (!opened) {
				r->fd = openat(dfd, de->d_name,
					       O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
				if (r->fd < 0)
					return files_fail(err, -errno, "%s: %s", r->path, strerror(errno));
				if (fstat(r->fd, &st) < 0 || !S_ISREG(st.st_mode))
					return files_fail(err, -EIO, "%s: changed while read", r->path);
			}
			if (st.st_nlink > 1) {
				int rr = files_inode_set_add(&r->links, st.st_dev, st.st_ino, r->path);
				if (rr < 0)
					return files_fail(err, rr, "%s: %s", r->path, strerror(-rr));
			}
			e->size = (uint64_t)st.st_size;
			r->left = e->size;
			r->pos = 0;
		} else {
			/* Sockets, FIFOs, devices. */
			if (r->on_skip)
				r->on_skip(r->path, r->skip_userdata);
			continue;
		}
		*ret = e;
		return 1;
	}
	return 0;
}

ssize_t files_tree_reader_read(struct files_tree_reader *r, void *buf, size_t size, struct files_err *err)
{
	if (r->fd < 0 || r->left == 0)
		return 0;
	if (size > r->left)
		size = (size_t)r->left;
	for (;;) {
		ssize_t n = pread(r->fd, buf, size, (off_t)r->pos);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return files_fail(err, -errno, "%s: %s", r->entry.path, strerror(errno));
		if (n == 0)
			return files_fail(err, -EIO, "%s: shrank while read", r->entry.path);
		r->pos += (uint64_t)n;
		r->left -= (uint64_t)n;
		return n;
	}
}
