#include "escape.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The length of the well-formed UTF-8 sequence at p (at most n bytes) that
 * is not a control character, or 0: overlong forms, surrogates, code
 * points past U+10FFFF and C1 controls are not. ASCII is left to the
 * caller. */
static size_t utf8_char(const uint8_t *p, size_t n)
{
	uint8_t c = p[0], lo = 0x80, hi = 0xbf;
	size_t len;

	if (c >= 0xc2 && c <= 0xdf)
		len = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		if (c == 0xe0)
			lo = 0xa0; /* overlong below */
		else if (c == 0xed)
			hi = 0x9f; /* surrogates above */
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f; /* past U+10FFFF above */
	} else
		return 0;
	if (n < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	if (c == 0xc2 && p[1] < 0xa0)
		return 0; /* U+0080-U+009F: C1 controls (0x9b is a terminal's CSI) */
	return len;
}

const char *escape_mem(const void *data, size_t len, char *buf, size_t size)
{
	static const char dots[] = "...";
	const uint8_t *p = data;
	size_t out = 0, mark = 0, i = 0;

	if (size < sizeof(dots)) {
		if (size)
			buf[0] = 0;
		return buf;
	}
	while (i < len) {
		char unit[8];
		size_t ulen, used = 1;
		uint8_t c = p[i];

		if (c == '\\' || c == '\n' || c == '\r' || c == '\t') {
			unit[0] = '\\';
			unit[1] = c == '\\' ? '\\' : c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
			ulen = 2;
		} else if (c >= 0x20 && c < 0x7f) {
			unit[0] = (char)c;
			ulen = 1;
		} else if (c >= 0x80 && (used = utf8_char(p + i, len - i)) > 0) {
			memcpy(unit, p + i, used);
			ulen = used;
		} else {
			used = 1;
			snprintf(unit, sizeof(unit), "\\x%02x", c);
			ulen = 4;
		}
		if (out + ulen > size - 1) {
			/* Cut at the last character that leaves room for the mark. */
			memcpy(buf + mark, dots, sizeof(dots));
			return buf;
		}
		memcpy(buf + out, unit, ulen);
		out += ulen;
		if (out <= size - sizeof(dots))
			mark = out;
		i += used;
	}
	buf[out] = 0;
	return buf;
}

const char *escape_str(const char *s, char buf[static ESCAPE_STR_MAX])
{
	if (!s)
		return strncpy(buf, "(null)", ESCAPE_STR_MAX);
	return escape_mem(s, strlen(s), buf, ESCAPE_STR_MAX);
}
