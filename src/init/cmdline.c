/* Kernel command-line parameters for maitred. maitred.listen_port keeps
 * the original's reading: the leading decimal integer counts, trailing
 * junk is ignored, and a word without digits is ignored. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/macro.h"
#include "base/parse.h"
#include "cmdline.h"

#define CMDLINE_MAX 4096

static bool word_is(const char *w, size_t len, const char *name)
{
	return strlen(name) == len && memcmp(w, name, len) == 0;
}

/* The leading integer of [s, s+len), like scanf's %d; false without digits. */
static bool leading_int(const char *s, size_t len, long *ret)
{
	char tmp[32];
	char *end;

	if (len >= sizeof(tmp))
		len = sizeof(tmp) - 1;
	memcpy(tmp, s, len);
	tmp[len] = 0;
	errno = 0;
	long v = strtol(tmp, &end, 10);
	if (end == tmp || errno)
		return false;
	*ret = v;
	return true;
}

static bool seconds_value(const char *s, size_t len, uint64_t *ret_usec)
{
	char tmp[32];

	if (len >= sizeof(tmp))
		return false;
	memcpy(tmp, s, len);
	tmp[len] = 0;
	return parse_seconds(tmp, ret_usec) == 0;
}

static void parse_word(const char *w, size_t len, struct kernel_cmdline *c)
{
	static const char port[] = "maitred.listen_port=";
	static const char grace[] = "maitred.shutdown_grace=";
	long v;

	if (word_is(w, len, "maitred.no_startup_processes"))
		c->no_startup_processes = true;
	else if (len > sizeof(port) - 1 && memcmp(w, port, sizeof(port) - 1) == 0) {
		if (leading_int(w + sizeof(port) - 1, len - (sizeof(port) - 1), &v) && v > 0 && v < INT_MAX)
			c->vm_ready_port = (int)v;
	} else if (len > sizeof(grace) - 1 && memcmp(w, grace, sizeof(grace) - 1) == 0)
		(void)seconds_value(w + sizeof(grace) - 1, len - (sizeof(grace) - 1), &c->shutdown_grace_usec);
}

void kernel_cmdline_parse(const char *text, struct kernel_cmdline *ret)
{
	*ret = (struct kernel_cmdline){ 0 };
	for (const char *p = text; *p;) {
		while (*p && isspace((unsigned char)*p))
			p++;
		const char *w = p;
		while (*p && !isspace((unsigned char)*p))
			p++;
		if (p > w)
			parse_word(w, (size_t)(p - w), ret);
	}
}

int kernel_cmdline_read(const char *path, struct kernel_cmdline *ret)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
	char buf[CMDLINE_MAX + 1];
	size_t len = 0;

	*ret = (struct kernel_cmdline){ 0 };
	if (fd < 0)
		return -errno;
	while (len < CMDLINE_MAX) {
		ssize_t n = read(fd, buf + len, CMDLINE_MAX - len);
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = 0;
	kernel_cmdline_parse(buf, ret);
	return 0;
}
