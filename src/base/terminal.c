#include "terminal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "macro.h"

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

int pty_set_size(int master, unsigned rows, unsigned cols)
{
	if (rows == 0 || rows > 65535 || cols == 0 || cols > 65535)
		return -EINVAL;
	struct winsize ws = { .ws_row = (unsigned short)rows, .ws_col = (unsigned short)cols };
	return ioctl(master, TIOCSWINSZ, &ws) < 0 ? -errno : 0;
}

int pty_open(unsigned rows, unsigned cols, int *ret_master, int *ret_slave)
{
	_cleanup_close_ int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK);
	int slave;
	char name[64];

	if (master < 0)
		return -errno;
	if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) != 0)
		return -errno;
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0)
		return -errno;
	(void)pty_set_size(master, rows, cols);
	*ret_master = TAKE_FD(master);
	*ret_slave = slave;
	return 0;
}
