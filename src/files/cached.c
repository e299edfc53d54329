#include "cached.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "base/macro.h"

/* Set once the kernel said it has no openat2 (ENOSYS, before 5.6) or no
 * RESOLVE_CACHED (EINVAL, before 5.12; E2BIG for a struct it does not
 * know): every later call goes to a worker without asking. */
static bool unsupported;

int files_open_cached(const char *path, int flags)
{
	struct open_how how = {
		.flags = (uint64_t)(flags | O_CLOEXEC),
		.resolve = RESOLVE_CACHED,
	};
	long fd;

	if (unsupported)
		return -EAGAIN;
	fd = syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
	if (fd >= 0)
		return (int)fd;
	/* The lookup's own answers, from the caches. */
	if (errno == ENOENT || errno == EACCES || errno == ELOOP || errno == ENAMETOOLONG)
		return -errno;
	if (errno == ENOSYS || errno == EINVAL || errno == E2BIG)
		unsupported = true;
	/* EAGAIN: not in the caches. EMFILE, ENOMEM, EPERM (a seccomp
	 * filter), ...: the worker finds out what the path says. */
	return -EAGAIN;
}

int files_read_cached(const char *path, size_t max, char **ret, size_t *ret_len)
{
	/* O_NONBLOCK: a FIFO put in the file's place must not hold the open. */
	_cleanup_close_ int fd = files_open_cached(path, O_RDONLY | O_NONBLOCK | O_NOCTTY);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, size;
	struct stat st;

	if (fd < 0)
		return fd;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size > max)
		return -EAGAIN;
	/* One byte more than the size, to see the end (or a file that grew). */
	size = (size_t)st.st_size + 1;
	if (!(buf = malloc(size + 1)))
		return -ENOMEM;
	for (;;) {
		struct iovec v = { buf + len, size - len };
		ssize_t n = preadv2(fd, &v, 1, (off_t)len, RWF_NOWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		/* EAGAIN: a page not cached; EOPNOTSUPP: a file system that
		 * cannot tell. */
		if (n < 0)
			return -EAGAIN;
		if (n == 0)
			break;
		len += (size_t)n;
		if (len == size) {
			if (size > max)
				return -EAGAIN;
			size = MIN(size * 2, max + 1);
			char *grown = realloc(buf, size + 1);
			if (!grown)
				return -ENOMEM;
			buf = grown;
		}
	}
	buf[len] = '\0';
	*ret = TAKE_PTR(buf);
	*ret_len = len;
	return 0;
}
