#include "inflate.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "base/macro.h"

int rpc_encoding_parse(const char *s, size_t len, enum rpc_encoding *ret)
{
	static const struct {
		const char *name;
		enum rpc_encoding enc;
	} table[] = {
		{ "identity", RPC_ENCODING_IDENTITY },
		{ "deflate", RPC_ENCODING_DEFLATE },
		{ "gzip", RPC_ENCODING_GZIP },
	};

	for (size_t i = 0; i < ARRAY_SIZE(table); i++)
		if (len == strlen(table[i].name) && strncasecmp(s, table[i].name, len) == 0) {
			*ret = table[i].enc;
			return 0;
		}
	return -EOPNOTSUPP;
}

static void inflate_endp(z_stream *z)
{
	(void)inflateEnd(z);
}

int rpc_inflate(enum rpc_encoding enc, const uint8_t *in, size_t len, size_t limit, uint8_t **ret, size_t *ret_len)
{
	_cleanup_(inflate_endp) z_stream z = { 0 };
	_cleanup_free_ uint8_t *out = NULL;
	size_t cap, allocated = 0, produced = 0;
	int r;

	if (enc == RPC_ENCODING_IDENTITY || len > UINT_MAX || limit >= UINT_MAX)
		return -EINVAL;
	/* 15: the largest window; +16: expect the gzip wrapper instead of zlib's. */
	if (inflateInit2(&z, enc == RPC_ENCODING_GZIP ? 15 + 16 : 15) != Z_OK)
		return -ENOMEM;
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	/* Start near a typical ratio and grow; never beyond limit + 1, the one
	 * byte that tells "too big" from "exactly the limit". */
	cap = MIN(MAX(len * 4, (size_t)4096), limit + 1);
	for (;;) {
		if (produced == allocated) {
			if (allocated == cap)
				cap = MIN(cap * 2, limit + 1);
			uint8_t *p = realloc(out, cap);
			if (!p)
				return -ENOMEM;
			out = p;
			allocated = cap;
		}
		z.next_out = out + produced;
		z.avail_out = (uInt)(allocated - produced);
		r = inflate(&z, Z_NO_FLUSH);
		produced = z.total_out;
		if (produced > limit)
			return -E2BIG;
		if (r == Z_STREAM_END)
			break;
		if (r == Z_MEM_ERROR)
			return -ENOMEM;
		if (r != Z_OK && r != Z_BUF_ERROR)
			return -EBADMSG;
		if (z.avail_in == 0 && z.avail_out > 0)
			return -EBADMSG; /* truncated: no input left, stream not ended */
	}
	if (z.avail_in != 0)
		return -EBADMSG;
	*ret_len = produced;
	*ret = TAKE_PTR(out);
	return 0;
}
