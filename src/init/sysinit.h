/* What PID 1 sets up before anything else runs: standard descriptors, the
 * API file systems, /run/lock, the console as controlling terminal, a clean
 * environment, the descriptor limit, loopback, the hostname, and no rate
 * limit on /dev/kmsg (unless the kernel command line set printk.devkmsg).
 *
 * Nothing here is fatal: each step that fails is reported and the next one
 * runs, because a PID 1 that gives up panics the kernel, while an agent
 * missing, say, /tmp can still serve the host and power off cleanly. */
#pragma once

#include <stdbool.h>

/* step names what failed ("mount /dev/pts", "hostname"); error is -errno. */
typedef void (*sysinit_report_fn)(const char *step, int error, void *userdata);

/* Mounts /dev (devtmpfs) and /proc, then makes sure fds 0-2 are open
 * (console, else /dev/null): the minimum needed to log anything. */
void sysinit_early(sysinit_report_fn report, void *userdata);
/* The rest of the setup, in order. keep_kmsg_limit: the kernel command
 * line chose the /dev/kmsg rate limit (printk.devkmsg=), leave it. */
void sysinit_rest(bool keep_kmsg_limit, sysinit_report_fn report, void *userdata);

/* The mounts sysinit makes, in order, for the power-off sequence and docs. */
struct sysinit_mount {
	const char *source, *target, *fstype;
	unsigned long flags;
	const char *data;
};
extern const struct sysinit_mount sysinit_mounts[];
extern const unsigned sysinit_n_mounts;
