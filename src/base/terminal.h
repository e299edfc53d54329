/* Raw mode for the local terminal, restorable on every exit path. */
#pragma once

#include <stdbool.h>
#include <termios.h>

struct terminal_state {
	int fd;
	bool saved;
	struct termios attrs;
};

/* Saves fd's settings and switches it to raw mode. */
int terminal_make_raw(int fd, struct terminal_state *ret);
/* Puts the saved settings back; does nothing if none were saved. */
void terminal_restore(struct terminal_state *st);

/* A new PTY pair: the master non-blocking, the slave not (yet) anyone's
 * controlling terminal, both close-on-exec. The window is rows x cols
 * when both are in 1..65535, else the kernel's default (0 x 0). */
int pty_open(unsigned rows, unsigned cols, int *ret_master, int *ret_slave);
/* TIOCSWINSZ: -EINVAL when rows or cols is not in 1..65535. */
int pty_set_size(int master, unsigned rows, unsigned cols);
