/* Kernel command-line parameters for maitred. maitred.listen_port keeps
 * the original's reading: the leading decimal integer counts, trailing
 * junk is ignored, and a word without digits is ignored. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "base/parse.h"
#include "base/read-file.h"
#include "cmdline.h"

#define CMDLINE_MAX 4096

/* One word: a bare name, or name=value (the value copied out, terminated,
 * cut at VALUE_MAX: no valid value is that long). */
static void parse_word(const char *w, size_t len, struct kernel_cmdline *c)
{
	enum { VALUE_MAX = 63 };
	const char *eq = memchr(w, '=', len);
	size_t name_len = eq ? (size_t)(eq - w) : len;
	char value[VALUE_MAX + 1] = "";
	char *end;

	if (eq) {
		size_t n = MIN(len - name_len - 1, (size_t)VALUE_MAX);
		memcpy(value, eq + 1, n);
		value[n] = 0;
	}
#define NAME_IS(s) (name_len == sizeof(s) - 1 && memcmp(w, s, name_len) == 0)
	if (!eq && NAME_IS("maitred.no_startup_processes"))
		c->no_startup_processes = true;
	else if (eq && NAME_IS("maitred.listen_port")) {
		/* Like scanf's %d: the leading integer; none means ignored. */
		errno = 0;
		long v = strtol(value, &end, 10);
		if (end != value && !errno && v > 0 && v < INT_MAX)
			c->vm_ready_port = (int)v;
	} else if (eq && NAME_IS("maitred.shutdown_grace"))
		(void)parse_seconds(value, &c->shutdown_grace_usec);
	else if (eq && NAME_IS("printk.devkmsg"))
		c->printk_devkmsg = true;
#undef NAME_IS
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
	_cleanup_free_ char *text = NULL;

	*ret = (struct kernel_cmdline){ 0 };
	/* A longer line (x86 and arm64 allow 2048 bytes) is read up to
	 * CMDLINE_MAX: the words past it are left out, not the whole line. */
	int r = read_file_head(path, CMDLINE_MAX, &text, NULL);
	if (r < 0)
		return r;
	kernel_cmdline_parse(text, ret);
	return 0;
}
