/* The mechanics of PID 1's power-off: signalling every process, telling
 * whether any is left, unmounting, taking network links down. The sequence
 * and its timing (what is done when, as a state machine on the loop) live
 * with maitred, in agent/power-off-sequence.c. */
#pragma once

#include <stdbool.h>

/* Sends sig to every process but PID 1 and the caller (kill(-1)): in a PID
 * namespace, every process of that namespace. Returns 0, or -ESRCH when
 * there was nobody to signal. */
int power_off_signal_all(int sig);
/* Whether the caller still has a child, running or not yet reaped. As
 * PID 1 that means any process at all, kernel threads aside. */
bool power_off_children_left(void);

/* What power_off_unmount_all() unmounts, in that order: the mount points of
 * mountinfo (a /proc/PID/mountinfo file), newest first, without / and what
 * lies under /proc, /sys and /dev (no data there, and logging needs
 * /dev/kmsg). NULL-terminated; free with strv_free(). */
int power_off_mount_points(const char *mountinfo, char ***ret);

/* mount_point is where unmounting failed; error is -errno; remounted tells
 * whether it was then remounted read-only instead. */
typedef void (*power_off_report_fn)(const char *mount_point, int error, bool remounted, void *userdata);
/* Unmounts power_off_mount_points() of /proc/self/mountinfo. A busy one is
 * remounted read-only; / is remounted read-only last. */
void power_off_unmount_all(power_off_report_fn report, void *userdata);

/* Takes every network link but lo down (rtnetlink), so that no driver is
 * still moving packets when the kernel shuts the devices down. Returns how
 * many could not be taken down, or -errno when none could be tried. */
int power_off_links_down(void);
