/* Stepping the wall clock to the host's time: SetTime's check and step,
 * shared by vm_tools.Maitred/SetTime and valet.v1.Snapshot/Restored. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "google/protobuf/timestamp.pb-c.h"

/* Whether t is a clock reading: after valet's build date, before year
 * 10000, nanos within 0-999999999. 0, or -EINVAL with the status message
 * in why. t may be NULL (-EINVAL). */
int maitred_time_check(const Google__Protobuf__Timestamp *t, char *why, size_t len);

/* t moved on by usec (nanos kept within 0-999999999). */
void maitred_time_add_usec(Google__Protobuf__Timestamp *t, uint64_t usec);

/* Steps CLOCK_REALTIME to t (checked). *ret_old is the clock read just
 * before, *ret_step_ns how far it moved (new - old). -errno of
 * clock_settime (-EPERM without CAP_SYS_TIME); nothing changed then. */
int maitred_clock_step(const Google__Protobuf__Timestamp *t, struct timespec *ret_old, int64_t *ret_step_ns);
