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
