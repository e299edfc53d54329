#include "wire.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void rpc_prefix_encode(uint8_t out[RPC_PREFIX_SIZE], bool compressed, uint32_t length)
{
	out[0] = compressed ? 1 : 0;
	out[1] = (uint8_t)(length >> 24);
	out[2] = (uint8_t)(length >> 16);
	out[3] = (uint8_t)(length >> 8);
	out[4] = (uint8_t)length;
}

void rpc_prefix_decode(const uint8_t in[RPC_PREFIX_SIZE], bool *ret_compressed, uint32_t *ret_length)
{
	*ret_compressed = in[0] != 0;
	*ret_length = (uint32_t)in[1] << 24 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 8 | in[4];
}

char *rpc_percent_encode(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n * 3 + 1), *p = out;

	if (!out)
		return NULL;
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c < 0x20 || *c > 0x7e || *c == '%')
			p += sprintf(p, "%%%02X", *c);
		else
			*p++ = (char)*c;
	}
	*p = 0;
	return out;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *rpc_percent_decode(const char *s, size_t len)
{
	char *out = malloc(len + 1), *p = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < len && (hi = hexval(s[i + 1])) >= 0 && (lo = hexval(s[i + 2])) >= 0) {
			*p++ = (char)(hi << 4 | lo);
			i += 2;
		} else
			*p++ = s[i];
	}
	*p = 0;
	return out;
}

int rpc_timeout_parse(const char *s, size_t len, uint64_t *ret_usec)
{
	uint64_t v = 0, mul_num, mul_den = 1;

	/* At most 8 digits and one unit, per the spec. */
	if (len < 2 || len > 9)
		return -EINVAL;
	for (size_t i = 0; i < len - 1; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (uint64_t)(s[i] - '0');
	}
	switch (s[len - 1]) {
	case 'H': mul_num = 3600ull * 1000000; break;
	case 'M': mul_num = 60ull * 1000000; break;
	case 'S': mul_num = 1000000; break;
	case 'm': mul_num = 1000; break;
	case 'u': mul_num = 1; break;
	case 'n':
		mul_num = 1;
		mul_den = 1000;
		break;
	default: return -EINVAL;
	}
	*ret_usec = v * mul_num / mul_den;
	return 0;
}

void rpc_timeout_format(uint64_t usec, char out[16])
{
	/* Pick the finest unit that fits in 8 digits. */
	if (usec < 100000000ull)
		snprintf(out, 16, "%lluu", (unsigned long long)usec);
	else if (usec / 1000 < 100000000ull)
		snprintf(out, 16, "%llum", (unsigned long long)(usec / 1000));
	else if (usec / 1000000 < 100000000ull)
		snprintf(out, 16, "%lluS", (unsigned long long)(usec / 1000000));
	else
		snprintf(out, 16, "%lluH", (unsigned long long)(usec / 3600000000ull));
}
