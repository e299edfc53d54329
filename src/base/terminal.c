#include "terminal.h"

#include <errno.h>

int terminal_make_raw(int fd, struct terminal_state *ret)
{
	struct termios raw;

	ret->saved = false;
	if (tcgetattr(fd, &ret->attrs) < 0)
		return -errno;
	raw = ret->attrs;
	cfmakeraw(&raw);
	if (tcsetattr(fd, TCSAFLUSH, &raw) < 0)
		return -errno;
	ret->fd = fd;
	ret->saved = true;
	return 0;
}

void terminal_restore(struct terminal_state *st)
{
	if (st->saved) {
		(void)tcsetattr(st->fd, TCSAFLUSH, &st->attrs);
		st->saved = false;
	}
}
