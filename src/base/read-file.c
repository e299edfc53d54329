#include "read-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <unistd.h>

#include "macro.h"

/* The first allocation: most /proc files fit. */
#define READ_FILE_FIRST 4096

int read_file_head(const char *path, size_t max, char **ret, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	_cleanup_free_ char *buf = NULL;
	size_t len = 0, cap = 0; /* cap: what buf holds before its NUL */

	if (fd < 0)
		return -errno;
	/* Up to one byte past max, to tell a file of exactly max bytes
	 * from a longer one. */
	for (;;) {
		if (len == cap) {
			if (cap > max)
				break;
			size_t ncap = MIN(cap ? cap * 2 : READ_FILE_FIRST, max + 1);
			char *nb = realloc(buf, ncap + 1);
			if (!nb)
				return -ENOMEM;
			buf = nb;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len);
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	bool more = len > max;
	if (more)
		len = max;
	buf[len] = 0;
	*ret = TAKE_PTR(buf);
	if (ret_len)
		*ret_len = len;
	return more;
}
