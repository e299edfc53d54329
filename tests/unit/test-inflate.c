/* grpc-encoding values and inflating under a cap, in memory. */
#include <time.h>
#include <zlib.h>

#include "rpc/inflate.h"
#include "rpc/wire.h"
#include "test.h"

/* Compresses in with zlib (windowBits 15 = zlib format, 31 = gzip). */
static uint8_t *squeeze(const uint8_t *in, size_t len, int wbits, size_t *ret_len)
{
	z_stream z = { 0 };
	size_t cap = deflateBound(&z, len) + 64;
	uint8_t *out = malloc(cap);
	deflateInit2(&z, 9, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)len;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	deflate(&z, Z_FINISH);
	*ret_len = z.total_out;
	deflateEnd(&z);
	return out;
}

/* Deflates what is given (nothing: only flushes) into out; returns the
 * bytes written. */
static size_t deflate_into(z_stream *z, uint8_t *in, size_t in_len, uint8_t *out, size_t out_len, int flush)
{
	if (in) {
		z->next_in = in;
		z->avail_in = (uInt)in_len;
	}
	z->next_out = out;
	z->avail_out = (uInt)out_len;
	deflate(z, flush);
	return out_len - z->avail_out;
}

/* A bomb: about 1 MiB of deflate data that inflates to 1 GiB of zeros.
 * After a full flush every MiB of zeros compresses to the same bytes, so
 * one such piece is repeated instead of compressing a whole GiB. */
static uint8_t *make_bomb(int wbits, size_t *ret_len)
{
	static uint8_t zeros[1 << 20];
	uint8_t first[4096], piece[4096], tail[64];
	size_t n_first, n_piece, n_tail;
	z_stream z = { 0 };
	deflateInit2(&z, 9, Z_DEFLATED, wbits, 8, Z_DEFAULT_STRATEGY);
	n_first = deflate_into(&z, zeros, sizeof(zeros), first, sizeof(first), Z_FULL_FLUSH);
	n_piece = deflate_into(&z, zeros, sizeof(zeros), piece, sizeof(piece), Z_FULL_FLUSH);
	n_tail = deflate_into(&z, NULL, 0, tail, sizeof(tail), Z_FINISH);
	deflateEnd(&z);
	size_t len = n_first + 1023 * n_piece + n_tail;
	uint8_t *out = malloc(len), *p = out;
	p = mempcpy(p, first, n_first);
	for (int i = 0; i < 1023; i++)
		p = mempcpy(p, piece, n_piece);
	memcpy(p, tail, n_tail);
	*ret_len = len;
	return out;
}

TEST(encoding_names)
{
	enum rpc_encoding e;
	CHECK_EQ(rpc_encoding_parse("gzip", 4, &e), 0);
	CHECK_EQ(e, RPC_ENCODING_GZIP);
	CHECK_EQ(rpc_encoding_parse("deflate", 7, &e), 0);
	CHECK_EQ(e, RPC_ENCODING_DEFLATE);
	CHECK_EQ(rpc_encoding_parse("identity", 8, &e), 0);
	CHECK_EQ(e, RPC_ENCODING_IDENTITY);
	CHECK_EQ(rpc_encoding_parse("snappy", 6, &e), -EOPNOTSUPP);
	CHECK_EQ(rpc_encoding_parse("gzipx", 5, &e), -EOPNOTSUPP);
	CHECK_EQ(rpc_encoding_parse("", 0, &e), -EOPNOTSUPP);
}

TEST(gzip_and_deflate_round_trip)
{
	static uint8_t text[100000];
	for (size_t i = 0; i < sizeof(text); i++)
		text[i] = (uint8_t)("valet "[i % 6] + (i / 5000));
	const int wbits[] = { 31, 15 };
	const enum rpc_encoding enc[] = { RPC_ENCODING_GZIP, RPC_ENCODING_DEFLATE };
	for (int k = 0; k < 2; k++) {
		size_t zlen, olen;
		uint8_t *z = squeeze(text, sizeof(text), wbits[k], &zlen), *out = NULL;
		CHECK(zlen < sizeof(text) / 10);
		CHECK_EQ(rpc_inflate(enc[k], z, zlen, RPC_MAX_MESSAGE_SIZE, &out, &olen), 0);
		CHECK_EQ(olen, sizeof(text));
		CHECK(memcmp(out, text, olen) == 0);
		free(out);
		/* The other wrapper is refused, not misread. */
		CHECK_EQ(rpc_inflate(enc[1 - k], z, zlen, RPC_MAX_MESSAGE_SIZE, &out, &olen), -EBADMSG);
		free(z);
	}
}

TEST(empty_message_inflates_to_nothing)
{
	size_t zlen, olen = 99;
	uint8_t *z = squeeze((const uint8_t *)"", 0, 31, &zlen), *out = NULL;
	CHECK_EQ(rpc_inflate(RPC_ENCODING_GZIP, z, zlen, 100, &out, &olen), 0);
	CHECK_EQ(olen, 0);
	free(out);
	free(z);
}

TEST(limit_is_exact)
{
	static uint8_t data[5000];
	size_t zlen, olen;
	uint8_t *z = squeeze(data, sizeof(data), 15, &zlen), *out = NULL;
	CHECK_EQ(rpc_inflate(RPC_ENCODING_DEFLATE, z, zlen, sizeof(data), &out, &olen), 0);
	CHECK_EQ(olen, sizeof(data));
	free(out);
	out = NULL;
	CHECK_EQ(rpc_inflate(RPC_ENCODING_DEFLATE, z, zlen, sizeof(data) - 1, &out, &olen), -E2BIG);
	CHECK(out == NULL);
	free(z);
}

TEST(bomb_stops_at_the_limit_cheaply)
{
	size_t blen, olen;
	uint8_t *bomb = make_bomb(31, &blen), *out = NULL;
	CHECK(blen < 1100 * 1024);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(rpc_inflate(RPC_ENCODING_GZIP, bomb, blen, RPC_MAX_MESSAGE_SIZE, &out, &olen), -E2BIG);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* Inflating 4 MiB of a 1 GiB bomb: milliseconds, not the seconds
	 * (and the GiB) the whole would take. Generous for sanitizers. */
	double ms = (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6;
	CHECK(ms < 500);
	free(bomb);
}

TEST(corrupt_truncated_and_trailing_data)
{
	static uint8_t data[3000];
	size_t zlen, olen;
	uint8_t *z = squeeze(data, sizeof(data), 31, &zlen), *out = NULL;
	CHECK_EQ(rpc_inflate(RPC_ENCODING_GZIP, z, zlen - 1, 1 << 20, &out, &olen), -EBADMSG);
	CHECK_EQ(rpc_inflate(RPC_ENCODING_GZIP, z, zlen / 2, 1 << 20, &out, &olen), -EBADMSG);
	uint8_t *longer = malloc(zlen + 1);
	memcpy(longer, z, zlen);
	longer[zlen] = 0;
	CHECK_EQ(rpc_inflate(RPC_ENCODING_GZIP, longer, zlen + 1, 1 << 20, &out, &olen), -EBADMSG);
	z[zlen / 2] ^= 0xff;
	CHECK(rpc_inflate(RPC_ENCODING_GZIP, z, zlen, 1 << 20, &out, &olen) < 0);
	CHECK_EQ(rpc_inflate(RPC_ENCODING_GZIP, (const uint8_t *)"junk", 4, 1 << 20, &out, &olen), -EBADMSG);
	free(longer);
	free(z);
}
