/* The maitred.* parameters on the kernel command line (/proc/cmdline).
 * Unknown words are ignored; so are values that do not parse. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

struct kernel_cmdline {
	bool no_startup_processes;    /* maitred.no_startup_processes */
	int vm_ready_port;	      /* maitred.listen_port=N, host port for VmReady; 0 if absent */
	uint64_t shutdown_grace_usec; /* maitred.shutdown_grace=SECONDS; 0 if absent */
	bool printk_devkmsg;	      /* the kernel's printk.devkmsg= is set */
};

/* text is the command line as read; the last occurrence of a word wins. */
void kernel_cmdline_parse(const char *text, struct kernel_cmdline *ret);
/* Reads and parses path (normally /proc/cmdline). */
int kernel_cmdline_read(const char *path, struct kernel_cmdline *ret);
