/* The mechanics of PID 1's power-off: signalling every process, telling
 * whether any is left, unmounting. The sequence and its timing live with
 * maitred (maitred/power-off.c). */
#pragma once

#include <stdbool.h>

/* Sends sig to every process but PID 1 and the caller (kill(-1)).
 * Returns 0, or -ESRCH when there was nobody to signal. */
int poweroff_signal_all(int sig);
/* Whether the caller still has a child, running or not yet reaped. As
 * PID 1 that means any process at all, kernel threads aside. */
bool poweroff_children_left(void);

/* mount_point is where unmounting failed; error is -errno; remounted tells
 * whether it was then remounted read-only instead. */
typedef void (*poweroff_report_fn)(const char *mount_point, int error, bool remounted, void *userdata);
/* Unmounts every file system, newest first, except / and what lies under
 * /proc, /sys and /dev (no data there, and logging needs /dev/kmsg). A
 * busy one is remounted read-only; / is remounted read-only last. */
void poweroff_unmount_all(poweroff_report_fn report, void *userdata);

/* Takes every network interface but lo down, so that no driver is still
 * moving packets when the kernel shuts the devices down. Returns how many
 * could not be taken down. */
int poweroff_links_down(void);
