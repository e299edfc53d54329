#include "parse.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>

static int parse_checked(const char *s, int base, uint64_t max, uint64_t *ret)
{
	char *end;
	unsigned long long v;

	if (!s || !*s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, base);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v > max)
		return -ERANGE;
	*ret = v;
	return 0;
}

int parse_u64(const char *s, uint64_t max, uint64_t *ret)
{
	return parse_checked(s, 10, max, ret);
}

int parse_u32(const char *s, uint32_t *ret)
{
	uint64_t v;
	int r = parse_u64(s, UINT32_MAX, &v);
	if (r < 0)
		return r;
	*ret = (uint32_t)v;
	return 0;
}

int parse_u64_any_base(const char *s, uint64_t *ret)
{
	return parse_checked(s, 0, UINT64_MAX, ret);
}

int parse_seconds_range(const char *s, bool zero_ok, double max_sec, uint64_t *ret_usec)
{
	char *end;
	errno = 0;
	double sec = strtod(s, &end);
	if (end == s || *end || errno || !(zero_ok ? sec >= 0 : sec > 0))
		return -EINVAL;
	if (sec > max_sec)
		return -ERANGE;
	*ret_usec = (uint64_t)(sec * 1e6);
	return 0;
}

int parse_seconds(const char *s, uint64_t *ret_usec)
{
	return parse_seconds_range(s, false, 3600, ret_usec);
}

void unescape_octal(char *s)
{
	char *w = s;
	for (char *r = s; *r;) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' && r[3] >= '0' &&
		    r[3] <= '7') {
			*w++ = (char)(((r[1] - '0') << 6) | ((r[2] - '0') << 3) | (r[3] - '0'));
			r += 4;
		} else
			*w++ = *r++;
	}
	*w = 0;
}
