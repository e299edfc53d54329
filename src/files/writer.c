#include "writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "base/macro.h"
#include "files/path.h"

struct files_writer {
	int dirfd;
	int fd;
	char *name;
	char *path;
	char tmpname[FILES_TMP_NAME_MAX]; /* the named temporary file, or "" */
	mode_t mode;
	struct files_write_opts o;
	uint8_t expected[SHA256_DIGEST_SIZE];
	struct sha256 sha;
	uint64_t written;
	bool done;
	bool own_dirfd;
};

void files_writer_free(struct files_writer *w)
{
	if (!w)
		return;
	if (!w->done && w->tmpname[0])
		(void)unlinkat(w->dirfd, w->tmpname, 0);
	safe_close(w->fd);
	if (w->own_dirfd)
		safe_close(w->dirfd);
	free(w->name);
	free(w->path);
	free(w);
}

int files_tmp_name(char buf[FILES_TMP_NAME_MAX])
{
	uint64_t x;
	if (getrandom(&x, sizeof(x), 0) != sizeof(x))
		return -EIO;
	snprintf(buf, FILES_TMP_NAME_MAX, ".valet-tmp-%016llx", (unsigned long long)x);
	return 0;
}

/* What the temporary file is created with: its mode when the caller
 * vouched for it (one fchmod less a file), else for its owner only. */
static mode_t create_mode(const struct files_writer *w)
{
	return w->o.mode_at_create ? w->mode : 0600;
}

/* A hidden name that did not exist, created as the temporary file. */
static int create_named(struct files_writer *w)
{
	for (int i = 0; i < 16; i++) {
		int r = files_tmp_name(w->tmpname);
		if (r < 0)
			return r;
		int fd = openat(w->dirfd, w->tmpname, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
				create_mode(w));
		if (fd >= 0) {
			w->fd = fd;
			return 0;
		}
		if (errno != EEXIST) {
			w->tmpname[0] = '\0';
			return -errno;
		}
	}
	w->tmpname[0] = '\0';
	return -EEXIST;
}

int files_writer_open_at(int dirfd, const char *name, const char *path, const struct files_write_opts *o,
			 struct files_writer **ret, struct files_err *err)
{
	_cleanup_(files_writer_freep) struct files_writer *w = calloc(1, sizeof(*w));
	struct stat st;
	int r;

	if (!w)
		return -ENOMEM;
	w->fd = -1;
	w->o = *o;
	if (o->sha256) {
		memcpy(w->expected, o->sha256, sizeof(w->expected));
		w->o.sha256 = w->expected;
	}
	w->dirfd = dirfd;
	if (!o->dirfd_borrowed) {
		w->dirfd = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
		if (w->dirfd < 0)
			return -errno;
		w->own_dirfd = true;
	}
	if (!(w->name = strdup(name)) || !(w->path = strdup(path)))
		return -ENOMEM;
	if (o->has_mode && (o->mode & ~07777u))
		return files_fail(err, -EINVAL, "%s: mode %#o above 07777", path, (unsigned)o->mode);

	w->mode = o->has_mode ? o->mode : 0644;
	/* link_new: a directory or anything else in the way is found by the
	 * link, then the rename, at commit. */
	if (o->link_new && o->has_mode && !o->no_replace) {
		/* nothing to look at */
	} else if (fstatat(w->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		if (S_ISDIR(st.st_mode))
			return files_fail(err, -EISDIR, "%s: is a directory", path);
		if (o->no_replace)
			return files_fail(err, -EEXIST, "%s: exists", path);
		if (S_ISREG(st.st_mode) && !o->has_mode)
			w->mode = st.st_mode & 07777;
	} else if (errno != ENOENT) {
		return files_fail_path(err, -errno, path);
	}

	r = -EOPNOTSUPP;
	if (!o->no_tmpfile) {
		w->fd = openat(w->dirfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, create_mode(w));
		r = w->fd >= 0 ? 0 : -errno;
	}
	/* O_TMPFILE unsupported by this filesystem: EOPNOTSUPP (EISDIR on
	 * kernels that predate it). */
	if (r == -EOPNOTSUPP || r == -EISDIR)
		r = create_named(w);
	if (r < 0)
		return files_fail_path(err, r, path);
	sha256_init(&w->sha);
	*ret = TAKE_PTR(w);
	return 0;
}

int files_writer_open(const char *path, const struct files_write_opts *o, struct files_writer **ret,
		      struct files_err *err)
{
	_cleanup_close_ int dirfd = -1;
	const char *name;
	int r = files_path_check(path, strlen(path), err);
	if (r < 0)
		return r;
	r = files_open_parent(path, o->make_parents, &dirfd, &name, err);
	if (r < 0)
		return r;
	return files_writer_open_at(dirfd, name, path, o, ret, err);
}

int files_writer_write(struct files_writer *w, const void *buf, size_t len, struct files_err *err)
{
	const uint8_t *p = buf;
	size_t left = len;

	if (w->done)
		return -EINVAL;
	while (left > 0) {
		ssize_t n = write(w->fd, p, left);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return files_fail_path(err, -errno, w->path);
		}
		p += n;
		left -= (size_t)n;
	}
	if (!w->o.no_digest)
		sha256_update(&w->sha, buf, len);
	w->written += len;
	return 0;
}

uint64_t files_writer_written(const struct files_writer *w)
{
	return w->written;
}

void files_writer_expect(struct files_writer *w, const uint8_t digest[SHA256_DIGEST_SIZE])
{
	memcpy(w->expected, digest, sizeof(w->expected));
	w->o.sha256 = w->expected;
}

/* Set once linkat(AT_EMPTY_PATH) was refused in this process: it needs
 * CAP_DAC_READ_SEARCH, which a worker acting as a user (or a maitctl
 * that is not root) does not have. From then on the links go through
 * /proc. */
static bool empty_path_refused;

/* Gives the unnamed temporary file the name tmpname (another hidden
 * unique one) or, for no_replace and link_new, the target's own.
 * AT_EMPTY_PATH first: the /proc path costs a lookup of four components
 * a file, which shows with thousands of small ones. */
static int link_tmpfile(struct files_writer *w, const char *to)
{
	char proc[64];
	if (!empty_path_refused) {
		if (linkat(w->fd, "", w->dirfd, to, AT_EMPTY_PATH) == 0)
			return 0;
		/* Without the capability the kernel answers ENOENT. */
		if (errno != ENOENT && errno != EPERM)
			return -errno;
		empty_path_refused = true;
	}
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", w->fd);
	if (linkat(AT_FDCWD, proc, w->dirfd, to, AT_SYMLINK_FOLLOW) == 0)
		return 0;
	return -errno;
}

static int publish(struct files_writer *w)
{
	int r;

	if (!w->tmpname[0]) {
		if (w->o.no_replace)
			return link_tmpfile(w, w->name);
		if (w->o.link_new) {
			r = link_tmpfile(w, w->name);
			if (r != -EEXIST)
				return r;
		}
		for (int i = 0; i < 16; i++) {
			r = files_tmp_name(w->tmpname);
			if (r < 0)
				return r;
			r = link_tmpfile(w, w->tmpname);
			if (r != -EEXIST)
				break;
		}
		if (r < 0) {
			w->tmpname[0] = '\0';
			return r;
		}
	}
	if (w->o.no_replace) {
		if (renameat2(w->dirfd, w->tmpname, w->dirfd, w->name, RENAME_NOREPLACE) == 0)
			return 0;
		if (errno != EINVAL)
			return -errno;
		/* A filesystem without RENAME_NOREPLACE: link, then unlink. */
		if (linkat(w->dirfd, w->tmpname, w->dirfd, w->name, 0) < 0)
			return -errno;
		(void)unlinkat(w->dirfd, w->tmpname, 0);
		return 0;
	}
	if (renameat(w->dirfd, w->tmpname, w->dirfd, w->name) < 0)
		return -errno;
	return 0;
}

int files_writer_commit(struct files_writer *w, uint8_t ret_digest[SHA256_DIGEST_SIZE], struct stat *ret_st,
			struct files_err *err)
{
	uint8_t digest[SHA256_DIGEST_SIZE];
	int r;

	if (w->done)
		return -EINVAL;
	if (w->o.no_digest)
		memset(digest, 0, sizeof(digest));
	else
		sha256_final(&w->sha, digest);
	if (w->o.sha256 && memcmp(digest, w->o.sha256, sizeof(digest)) != 0)
		return files_fail(err, -FILES_EDIGEST, "%s: SHA-256 of the data differs from the expected one",
				  w->path);
	/* The owner first: chown clears the set-id bits chmod sets. */
	if (w->o.has_owner && fchown(w->fd, w->o.uid, w->o.gid) < 0)
		return files_fail_path(err, -errno, w->path);
	if (!w->o.mode_at_create && fchmod(w->fd, w->mode) < 0)
		return files_fail_path(err, -errno, w->path);
	if (w->o.has_mtime) {
		struct timespec ts[2] = { { .tv_nsec = UTIME_OMIT }, w->o.mtime };
		if (futimens(w->fd, ts) < 0)
			return files_fail_path(err, -errno, w->path);
	}
	if (!w->o.no_fsync && fsync(w->fd) < 0)
		return files_fail_path(err, -errno, w->path);
	r = publish(w);
	if (r == -EEXIST && w->o.no_replace)
		return files_fail(err, r, "%s: exists", w->path);
	if (r < 0)
		return files_fail_path(err, r, w->path);
	w->done = true;
	if (!w->o.no_fsync) {
		_cleanup_close_ int d = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (d < 0 || fsync(d) < 0)
			return files_fail_path(err, -errno, w->path);
	}
	if (ret_st && fstat(w->fd, ret_st) < 0)
		return files_fail_path(err, -errno, w->path);
	if (ret_digest)
		memcpy(ret_digest, digest, sizeof(digest));
	return 0;
}
