#include "clock.h"

#include <errno.h>
#include <stdio.h>

/* Year 9999: anything later is not a clock reading. */
#define MAX_PLAUSIBLE_SECONDS 253402300799LL

/* 2026-11-01, when this code was written: no host clock can be earlier. */
#define CODE_EPOCH 1793491200LL

/* The build's date (VALET_SOURCE_EPOCH, from meson.build) or the code's,
 * whichever is later: a host clock earlier than that is wrong for sure. */
static int64_t build_epoch(void)
{
	return VALET_SOURCE_EPOCH > CODE_EPOCH ? VALET_SOURCE_EPOCH : CODE_EPOCH;
}

int maitred_time_check(const Google__Protobuf__Timestamp *t, char *why, size_t len)
{
	int64_t floor = build_epoch();

	if (t && t->seconds >= floor && t->seconds <= MAX_PLAUSIBLE_SECONDS && t->nanos >= 0 &&
	    t->nanos < 1000000000)
		return 0;
	snprintf(why, len,
		 "time %lld.%09d s is not plausible: it must be after valet's build date (%lld) and nanos within "
		 "0-999999999",
		 t ? (long long)t->seconds : 0, t ? t->nanos : 0, (long long)floor);
	return -EINVAL;
}

void maitred_time_add_usec(Google__Protobuf__Timestamp *t, uint64_t usec)
{
	uint64_t ns = (uint64_t)t->nanos + usec % 1000000 * 1000;

	t->seconds += (int64_t)(usec / 1000000 + ns / 1000000000);
	t->nanos = (int32_t)(ns % 1000000000);
}

int maitred_clock_step(const Google__Protobuf__Timestamp *t, struct timespec *ret_old, int64_t *ret_step_ns)
{
	struct timespec old, new = { .tv_sec = (time_t)t->seconds, .tv_nsec = t->nanos };

	(void)clock_gettime(CLOCK_REALTIME, &old);
	if (clock_settime(CLOCK_REALTIME, &new) < 0)
		return -errno;
	*ret_old = old;
	*ret_step_ns = ((int64_t)new.tv_sec - (int64_t)old.tv_sec) * 1000000000LL + (new.tv_nsec - old.tv_nsec);
	return 0;
}
