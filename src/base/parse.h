/* Strict number parsing: the whole string, no sign surprises, range-checked. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

/* Decimal only. -EINVAL for junk or empty input, -ERANGE past max. */
int parse_u64(const char *s, uint64_t max, uint64_t *ret);
int parse_u32(const char *s, uint32_t *ret);
/* Accepts decimal, 0x hex and 0 octal, as strtoull does with base 0. */
int parse_u64_any_base(const char *s, uint64_t *ret);
/* Seconds, fractions allowed, up to max_sec (and 0 when zero_ok); returns
 * microseconds. -EINVAL for junk, -ERANGE out of range. */
int parse_seconds_range(const char *s, bool zero_ok, double max_sec, uint64_t *ret_usec);
/* A positive number of seconds, at most 3600. */
int parse_seconds(const char *s, uint64_t *ret_usec);

/* The octal escapes of /proc/self/mountinfo and /proc/mounts (\040 for a
 * space, \134 for a backslash) undone in place. */
void unescape_octal(char *s);
