#include "ops.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/macro.h"
#include "files/cached.h"
#include "files/path.h"

void files_info_clear(struct files_info *i)
{
	free(i->path);
	free(i->symlink_target);
	free(i->owner);
	free(i->group);
	*i = (struct files_info){ 0 };
}

enum files_type files_type_of(mode_t m)
{
	if (S_ISREG(m))
		return FILES_TYPE_FILE;
	if (S_ISDIR(m))
		return FILES_TYPE_DIRECTORY;
	if (S_ISLNK(m))
		return FILES_TYPE_SYMLINK;
	return FILES_TYPE_OTHER;
}

static int read_link(int dirfd, const char *name, char **ret)
{
	char buf[PATH_MAX];
	ssize_t n = readlinkat(dirfd, name, buf, sizeof(buf) - 1);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	*ret = strdup(buf);
	return *ret ? 0 : -ENOMEM;
}

/* cache: a listing's (NULL: the process's). cached: the names from the
 * kernel's caches only (files/names.h), and a symlink is -EAGAIN (its
 * target may be on the disk: readlink has no way not to wait for it). */
static int info_from_stat(int dirfd, const char *name, const char *path, const struct stat *st,
			  struct files_names *cache, bool cached, struct files_info *ret)
{
	struct files_info i = {
		.type = files_type_of(st->st_mode),
		.size = (uint64_t)st->st_size,
		.mode = st->st_mode & 07777,
		.uid = st->st_uid,
		.gid = st->st_gid,
		.mtime = st->st_mtim,
	};
	int r;

	if (cached && i.type == FILES_TYPE_SYMLINK)
		return -EAGAIN;
	if (!(i.path = strdup(path)))
		goto nomem;
	if (i.type == FILES_TYPE_SYMLINK) {
		r = read_link(dirfd, name, &i.symlink_target);
		if (r < 0 && r != -ENOENT && r != -EINVAL) {
			files_info_clear(&i);
			return r;
		}
	}
	if (!i.symlink_target && !(i.symlink_target = strdup("")))
		goto nomem;
	r = files_names_get(cache, cached, st->st_uid, st->st_gid, &i.owner, &i.group);
	if (r < 0) {
		files_info_clear(&i);
		return r;
	}
	*ret = i;
	return 0;
nomem:
	files_info_clear(&i);
	return -ENOMEM;
}

int files_info_from_stat(int dirfd, const char *name, const char *path, const struct stat *st, struct files_info *ret)
{
	return info_from_stat(dirfd, name, path, st, NULL, false, ret);
}

/* One system call for the path (a symlink's target is read only for a
 * symlink): the kernel resolves the directories on the way as an open of
 * the parent would, and a Stat's worker answers the sooner. */
int files_stat(const char *path, bool follow_symlinks, struct files_info *ret, struct files_err *err)
{
	struct stat st;
	int r = files_path_check(path, strlen(path), err);
	if (r < 0)
		return r;
	if (fstatat(AT_FDCWD, path, &st, follow_symlinks ? 0 : AT_SYMLINK_NOFOLLOW) < 0)
		return files_fail_path(err, -errno, path);
	r = files_info_from_stat(AT_FDCWD, path, path, &st, ret);
	return r < 0 ? files_fail_path(err, r, path) : 0;
}

#define STAT_CACHED_MASK (STATX_TYPE | STATX_MODE | STATX_UID | STATX_GID | STATX_MTIME | STATX_SIZE)

/* files_stat() from the caches: a path the dentry cache resolves, an
 * inode in memory (statx AT_STATX_DONT_SYNC: a network or FUSE file
 * system answers from what it has, as for an inode it cannot revalidate
 * without waiting), names as files/names.h says. The same answer, or
 * -EAGAIN with err untouched. */
int files_stat_cached(const char *path, bool follow_symlinks, struct files_info *ret, struct files_err *err)
{
	/* O_PATH|O_NOFOLLOW on a symlink is the link itself: what a Stat
	 * that does not follow describes (and O_PATH opens no device). */
	_cleanup_close_ int fd = -1;
	struct statx stx;
	struct stat st;
	int r = files_path_check(path, strlen(path), err);

	if (r < 0)
		return r;
	fd = files_open_cached(path, O_PATH | (follow_symlinks ? 0 : O_NOFOLLOW));
	if (fd == -EAGAIN)
		return -EAGAIN;
	if (fd < 0)
		return files_fail_path(err, fd, path);
	if (statx(fd, "", AT_EMPTY_PATH | AT_STATX_DONT_SYNC, STAT_CACHED_MASK, &stx) < 0 ||
	    (stx.stx_mask & STAT_CACHED_MASK) != STAT_CACHED_MASK)
		return -EAGAIN;
	st = (struct stat){
		.st_mode = stx.stx_mode,
		.st_size = (off_t)stx.stx_size,
		.st_uid = stx.stx_uid,
		.st_gid = stx.stx_gid,
		.st_mtim = { .tv_sec = stx.stx_mtime.tv_sec, .tv_nsec = stx.stx_mtime.tv_nsec },
	};
	r = info_from_stat(AT_FDCWD, path, path, &st, NULL, true, ret);
	if (r == -EAGAIN)
		return r;
	return r < 0 ? files_fail_path(err, r, path) : 0;
}

/* A directory stream of its own over directory fd (which stays the
 * caller's): readdir() positions are not shared with fd. */
static int open_dir_stream(int fd, const char *path, DIR **ret, struct files_err *err)
{
	int dfd = openat(fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return files_fail_path(err, -errno, path);
	DIR *d = fdopendir(dfd);
	if (!d) {
		int r = -errno;
		safe_close(dfd);
		return files_fail_path(err, r, path);
	}
	*ret = d;
	return 0;
}

/* The next entry of d but "." and "..", or NULL at the end; NULL too
 * when readdir fails, with *r set to the failure (path names d). */
static struct dirent *next_entry(DIR *d, const char *path, int *r, struct files_err *err)
{
	for (;;) {
		errno = 0;
		struct dirent *de = readdir(d);
		if (!de) {
			if (errno)
				*r = files_fail_path(err, -errno, path);
			return NULL;
		}
		if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
			return de;
	}
}

/* path holds the directory's path (len bytes) and room to append. */
static int list_dir(int dirfd, char *path, size_t len, unsigned depth, struct files_names *cache, files_list_fn fn,
		    void *userdata, struct files_err *err)
{
	DIR *d = NULL;
	int r = open_dir_stream(dirfd, path, &d, err);
	if (r < 0)
		return r;
	struct dirent *de;
	while ((de = next_entry(d, path, &r, err))) {
		size_t n = strlen(de->d_name);
		bool root = len == 1;
		if (len + 1 + n >= FILES_PATH_MAX)
			continue; /* not nameable in the protocol */
		size_t sub = root ? 1 + n : len + 1 + n;
		if (!root)
			path[len] = '/';
		memcpy(path + (root ? 1 : len + 1), de->d_name, n + 1);

		struct stat st;
		struct files_info info;
		if (fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
			if (errno == ENOENT)
				goto next; /* removed since readdir */
			r = files_fail_path(err, -errno, path);
			break;
		}
		r = info_from_stat(dirfd, de->d_name, path, &st, cache, false, &info);
		if (r < 0) {
			files_fail_path(err, r, path);
			break;
		}
		r = fn(&info, userdata);
		files_info_clear(&info);
		if (r < 0)
			break;
		if (depth > 1 && S_ISDIR(st.st_mode)) {
			int sfd = openat(dirfd, de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sfd < 0) {
				r = files_fail_path(err, -errno, path);
				break;
			}
			r = list_dir(sfd, path, sub, depth - 1, cache, fn, userdata, err);
			safe_close(sfd);
			if (r < 0)
				break;
		}
	next:
		path[len] = '\0';
	}
	path[len] = '\0';
	closedir(d);
	return r;
}

int files_list(const char *path, unsigned depth, files_list_fn fn, void *userdata, struct files_err *err)
{
	char buf[FILES_PATH_MAX];
	struct stat st;
	int r = files_path_check(path, strlen(path), err);
	if (r < 0)
		return r;
	if (depth > FILES_LIST_DEPTH_MAX)
		return files_fail(err, -EINVAL, "depth %u above %d", depth, FILES_LIST_DEPTH_MAX);
	/* The directory itself may be reached through symlinks: the caller
	 * named it. */
	_cleanup_close_ int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return files_fail_path(err, -errno, path);
	if (fstat(fd, &st) < 0)
		return files_fail_path(err, -errno, path);
	strcpy(buf, path);
	_cleanup_(files_names_clear) struct files_names cache = { 0 };
	return list_dir(fd, buf, strlen(buf), depth ? depth : 1, &cache, fn, userdata, err);
}

int files_mkdir(const char *path, int mode, bool parents, struct files_err *err)
{
	_cleanup_close_ int dirfd = -1;
	const char *name;
	mode_t m = mode < 0 ? 0755 : (mode_t)mode;
	int r = files_path_check(path, strlen(path), err);
	if (r < 0)
		return r;
	if (mode > 07777)
		return files_fail(err, -EINVAL, "%s: mode %#o above 07777", path, (unsigned)mode);
	if (strcmp(path, "/") == 0)
		return parents ? 0 : files_fail(err, -EEXIST, "/: exists");
	r = files_open_parent(path, parents, &dirfd, &name, err);
	if (r < 0)
		return r;
	if (mkdirat(dirfd, name, 0700) < 0) {
		struct stat st;
		if (errno == EEXIST && parents && fstatat(dirfd, name, &st, 0) == 0 && S_ISDIR(st.st_mode))
			return 0;
		return files_fail_path(err, -errno, path);
	}
	/* The mode exactly, whatever the umask (and set-id bits mkdir
	 * ignores). */
	_cleanup_close_ int d = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (d < 0 || fchmod(d, m) < 0)
		return files_fail_path(err, -errno, path);
	return 0;
}

/* Removes the contents of directory fd (of device dev and mount mnt_id),
 * then nothing else: the caller removes the directory. */
static int remove_contents(int fd, const char *path, dev_t dev, uint64_t mnt_id, unsigned level, uint64_t *removed,
			   struct files_err *err)
{
	if (level > FILES_REMOVE_DEPTH_MAX)
		return files_fail(err, -ELOOP, "%s: deeper than %d levels", path, FILES_REMOVE_DEPTH_MAX);
	DIR *d = NULL;
	int r = open_dir_stream(fd, path, &d, err);
	if (r < 0)
		return r;
	struct dirent *de;
	while ((de = next_entry(d, path, &r, err))) {
		struct statx sx;
		if (statx(fd, de->d_name, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MNT_ID, &sx) < 0) {
			if (errno == ENOENT)
				continue;
			r = files_fail(err, -errno, "%s/%s: %s", path, de->d_name, strerror(errno));
			break;
		}
		if (S_ISDIR(sx.stx_mode)) {
			if (makedev(sx.stx_dev_major, sx.stx_dev_minor) != dev ||
			    ((sx.stx_mask & STATX_MNT_ID) && sx.stx_mnt_id != mnt_id)) {
				r = files_fail(err, -EBUSY, "%s/%s: another filesystem is mounted there (not removed)",
					       path, de->d_name);
				break;
			}
			int sub = openat(fd, de->d_name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub < 0) {
				r = files_fail(err, -errno, "%s/%s: %s", path, de->d_name, strerror(errno));
				break;
			}
			char subpath[FILES_PATH_MAX];
			snprintf(subpath, sizeof(subpath), "%s/%s", path, de->d_name);
			r = remove_contents(sub, subpath, dev, mnt_id, level + 1, removed, err);
			safe_close(sub);
			if (r < 0)
				break;
		}
		if (unlinkat(fd, de->d_name, S_ISDIR(sx.stx_mode) ? AT_REMOVEDIR : 0) < 0) {
			r = files_fail(err, -errno, "%s/%s: %s", path, de->d_name, strerror(errno));
			break;
		}
		(*removed)++;
	}
	closedir(d);
	return r;
}

int files_remove(const char *path, bool recursive, uint64_t *ret_removed, struct files_err *err)
{
	_cleanup_close_ int dirfd = -1;
	const char *name;
	struct statx sx;
	uint64_t removed = 0;
	int r = files_path_check(path, strlen(path), err);
	if (r < 0)
		return r;
	if (strcmp(path, "/") == 0)
		return files_fail(err, -EBUSY, "refusing to remove /");
	r = files_open_parent(path, false, &dirfd, &name, err);
	if (r < 0)
		return r;
	if (statx(dirfd, name, AT_SYMLINK_NOFOLLOW, STATX_TYPE | STATX_MNT_ID, &sx) < 0)
		return files_fail_path(err, -errno, path);
	if (S_ISDIR(sx.stx_mode) && recursive) {
		_cleanup_close_ int fd = openat(dirfd, name, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			return files_fail_path(err, -errno, path);
		r = remove_contents(fd, path, makedev(sx.stx_dev_major, sx.stx_dev_minor), sx.stx_mnt_id, 0, &removed,
				    err);
		if (r < 0) {
			*ret_removed = removed;
			return r;
		}
	}
	if (unlinkat(dirfd, name, S_ISDIR(sx.stx_mode) ? AT_REMOVEDIR : 0) < 0) {
		*ret_removed = removed;
		return files_fail_path(err, -errno, path);
	}
	*ret_removed = removed + 1;
	return 0;
}

int files_move(const char *source, const char *destination, bool no_replace, struct files_err *err)
{
	_cleanup_close_ int sfd = -1, dfd = -1;
	const char *sname, *dname;
	int r = files_path_check(source, strlen(source), err);
	if (r < 0)
		return r;
	r = files_path_check(destination, strlen(destination), err);
	if (r < 0)
		return r;
	if (strcmp(source, "/") == 0 || strcmp(destination, "/") == 0)
		return files_fail(err, -EBUSY, "refusing to move /");
	r = files_open_parent(source, false, &sfd, &sname, err);
	if (r < 0)
		return r;
	r = files_open_parent(destination, false, &dfd, &dname, err);
	if (r < 0)
		return r;
	if (renameat2(sfd, sname, dfd, dname, no_replace ? RENAME_NOREPLACE : 0) < 0) {
		if (errno == EEXIST)
			return files_fail(err, -EEXIST, "%s: exists", destination);
		return files_fail(err, -errno, "%s -> %s: %s", source, destination, strerror(errno));
	}
	return 0;
}
