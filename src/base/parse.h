/* Strict number parsing: the whole string, no sign surprises, range-checked. */
#pragma once

#include <stdint.h>

/* Decimal only. -EINVAL for junk or empty input, -ERANGE past max. */
int parse_u64(const char *s, uint64_t max, uint64_t *ret);
int parse_u32(const char *s, uint32_t *ret);
/* Accepts decimal, 0x hex and 0 octal, as strtoull does with base 0. */
int parse_u64_any_base(const char *s, uint64_t *ret);
/* A positive number of seconds, fractions allowed, at most 3600; returns
 * microseconds. */
int parse_seconds(const char *s, uint64_t *ret_usec);
