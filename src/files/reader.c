#include "reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/macro.h"
#include "files/path.h"

struct files_reader {
	int fd;
	uint64_t pos;
	uint64_t left; /* UINT64_MAX: to the end */
	char *path;
	bool no_digest;
	struct sha256 sha;
};

void files_reader_free(struct files_reader *r)
{
	if (!r)
		return;
	safe_close(r->fd);
	free(r->path);
	free(r);
}

int files_reader_open_at(int dirfd, const char *name, const char *path, uint64_t offset, uint64_t length,
			 struct files_reader **ret, struct stat *ret_st, struct files_err *err)
{
	_cleanup_(files_reader_freep) struct files_reader *r = calloc(1, sizeof(*r));
	struct stat st;

	if (!r)
		return -ENOMEM;
	if (!(r->path = strdup(path))) {
		r->fd = -1;
		return -ENOMEM;
	}
	/* O_NONBLOCK: a FIFO at the name must not block the open; it is
	 * refused just below. */
	r->fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (r->fd < 0) {
		if (errno == ELOOP)
			return files_fail(err, -ELOOP, "%s: is a symbolic link (not followed)", path);
		return files_fail_path(err, -errno, path);
	}
	if (fstat(r->fd, &st) < 0)
		return files_fail_path(err, -errno, path);
	if (S_ISDIR(st.st_mode))
		return files_fail(err, -EISDIR, "%s: is a directory", path);
	if (!S_ISREG(st.st_mode))
		return files_fail(err, -EINVAL, "%s: not a regular file", path);
	if (fcntl(r->fd, F_SETFL, 0) < 0)
		return files_fail_path(err, -errno, path);
	r->pos = offset;
	r->left = length ? length : UINT64_MAX;
	sha256_init(&r->sha);
	if (ret_st)
		*ret_st = st;
	*ret = TAKE_PTR(r);
	return 0;
}

int files_reader_open(const char *path, uint64_t offset, uint64_t length, struct files_reader **ret,
		      struct stat *ret_st, struct files_err *err)
{
	_cleanup_close_ int dirfd = -1;
	const char *name;
	int r = files_path_check(path, strlen(path), err);
	if (r < 0)
		return r;
	if (strcmp(path, "/") == 0)
		return files_fail(err, -EISDIR, "/: is a directory");
	r = files_open_parent(path, false, &dirfd, &name, err);
	if (r < 0)
		return r;
	return files_reader_open_at(dirfd, name, path, offset, length, ret, ret_st, err);
}

ssize_t files_reader_read(struct files_reader *r, void *buf, size_t size, struct files_err *err)
{
	if (r->left == 0 || size == 0)
		return 0;
	if (size > r->left)
		size = (size_t)r->left;
	if (r->pos > (uint64_t)INT64_MAX)
		return 0;
	for (;;) {
		ssize_t n = pread(r->fd, buf, size, (off_t)r->pos);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return files_fail_path(err, -errno, r->path);
		}
		if (!r->no_digest)
			sha256_update(&r->sha, buf, (size_t)n);
		r->pos += (uint64_t)n;
		if (r->left != UINT64_MAX)
			r->left -= (uint64_t)n;
		return n;
	}
}

void files_reader_skip_digest(struct files_reader *r)
{
	r->no_digest = true;
}

int files_reader_digest(struct files_reader *r, uint8_t out[SHA256_DIGEST_SIZE])
{
	if (r->no_digest)
		return -EINVAL;
	sha256_final(&r->sha, out);
	r->no_digest = true;
	return 0;
}

int files_reader_fd(const struct files_reader *r)
{
	return r->fd;
}
