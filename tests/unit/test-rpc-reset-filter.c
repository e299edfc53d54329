/* rpc/reset-filter.c: a client's RST_STREAM for a stream no HEADERS named
 * is taken out of the bytes; everything else goes through unchanged and
 * in order, however the bytes are cut into reads. */
#include <errno.h>
#include <string.h>

#include "rpc/reset-filter.h"
#include "test.h"

static const char PREFACE[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

struct sink {
	uint8_t data[4096];
	size_t len;
	unsigned calls;
	int fail_at; /* the call that fails (1-based), 0: none */
};

static int to_sink(const uint8_t *data, size_t len, void *arg)
{
	struct sink *k = arg;
	k->calls++;
	if (k->fail_at && (int)k->calls == k->fail_at)
		return -EPIPE;
	if (len == 0 || k->len + len > sizeof(k->data))
		return -E2BIG; /* the test fails on the result */
	memcpy(k->data + k->len, data, len);
	k->len += len;
	return 0;
}

/* Appends a frame: 24-bit length, type, flags, stream id, payload. */
static size_t put_frame(uint8_t *out, size_t at, uint8_t type, uint32_t stream, const void *payload, size_t len)
{
	uint8_t *p = out + at;
	const uint8_t head[9] = { len >> 16, len >> 8, len, type, 0, stream >> 24, stream >> 16, stream >> 8, stream };
	memcpy(p, head, sizeof(head));
	memcpy(p + 9, payload, len);
	return at + 9 + len;
}

static size_t put_rst(uint8_t *out, size_t at, uint32_t stream)
{
	return put_frame(out, at, 3, stream, "\0\0\0\x08", 4); /* CANCEL */
}

/* A connection's bytes and, in want, the same without the frames that
 * must be dropped: a call on stream 1 reset after its HEADERS (kept), a
 * reset of stream 5 before any HEADERS named it (dropped), a DATA whose
 * payload looks like such a reset (kept), a reset of 0, of an even id
 * and a 5-byte one (kept: nghttp2 judges those), stream 5 opened, then
 * reset (kept), and a reset of 7 (dropped). */
#define CONNECTION_MAX 260 /* bytes, at most */
static void connection(uint8_t *in, size_t *in_len, uint8_t *want, size_t *want_len)
{
	size_t n = 0, w = 0;
	uint8_t fake[13];

	put_rst(fake, 0, 9);
#define KEEP(expr)                                        \
	do {                                              \
		size_t from = n;                          \
		n = (expr);                               \
		memcpy(want + w, in + from, n - from);    \
		w += n - from;                            \
	} while (0)
	memcpy(in, PREFACE, 24);
	memcpy(want, PREFACE, 24);
	n = w = 24;
	KEEP(put_frame(in, n, 4, 0, "", 0));		/* SETTINGS */
	KEEP(put_frame(in, n, 1, 1, "\x83\x86", 2));	/* HEADERS 1 */
	KEEP(put_rst(in, n, 1));
	n = put_rst(in, n, 5);
	KEEP(put_frame(in, n, 0, 3, fake, sizeof(fake))); /* DATA */
	KEEP(put_rst(in, n, 0));
	KEEP(put_rst(in, n, 4));
	KEEP(put_frame(in, n, 3, 11, "\0\0\0\x08\x00", 5));
	KEEP(put_frame(in, n, 1, 5, "\x83\x86", 2));	/* HEADERS 5 */
	KEEP(put_rst(in, n, 5));
	n = put_rst(in, n, 7);
	KEEP(put_frame(in, n, 8, 0, "\0\0\0\x01", 4));	/* WINDOW_UPDATE */
#undef KEEP
	*in_len = n;
	*want_len = w;
}

TEST(idle_resets_dropped_all_else_passed)
{
	uint8_t in[512], want[512];
	size_t in_len, want_len;
	struct reset_filter f;
	struct sink k = { 0 };

	connection(in, &in_len, want, &want_len);
	CHECK(in_len < CONNECTION_MAX);
	reset_filter_init(&f);
	CHECK_EQ(reset_filter_feed(&f, in, in_len, to_sink, &k), 0);
	CHECK_EQ(f.dropped, 2);
	CHECK_EQ(k.len, want_len);
	CHECK(memcmp(k.data, want, want_len) == 0);
	CHECK_EQ(f.highest_opened, 5);
	/* Passed in runs, not frame by frame: one before each dropped
	 * frame and one after the last. */
	CHECK_EQ(k.calls, 3);
}

/* Feeds the connection in reads cut at the given offsets (ascending);
 * true when exactly the frames to drop were taken out. */
static bool same_bytes_when_cut(const size_t *cuts, size_t n)
{
	uint8_t in[512], want[512];
	size_t in_len, want_len, from = 0;
	struct reset_filter f;
	struct sink k = { 0 };

	connection(in, &in_len, want, &want_len);
	reset_filter_init(&f);
	for (size_t i = 0; i <= n; i++) {
		size_t to = i < n && cuts[i] < in_len ? cuts[i] : in_len;
		if (reset_filter_feed(&f, in + from, to - from, to_sink, &k) < 0)
			return false;
		from = to;
	}
	return f.dropped == 2 && k.len == want_len && memcmp(k.data, want, want_len) == 0;
}

TEST(every_cut_into_two_and_three_reads_gives_the_same_bytes)
{
	for (size_t a = 0; a <= CONNECTION_MAX; a++)
		for (size_t b = a; b <= CONNECTION_MAX; b += 7)
			CHECK(same_bytes_when_cut((size_t[]){ a, b }, 2));
}

TEST(byte_by_byte_gives_the_same_bytes)
{
	size_t cuts[512];

	for (size_t i = 0; i < 512; i++)
		cuts[i] = i + 1;
	CHECK(same_bytes_when_cut(cuts, 512));
}

TEST(an_error_from_pass_stops_and_is_returned)
{
	uint8_t in[512], want[512];
	size_t in_len, want_len;
	struct reset_filter f;
	struct sink k = { .fail_at = 2 };

	connection(in, &in_len, want, &want_len);
	reset_filter_init(&f);
	CHECK_EQ(reset_filter_feed(&f, in, in_len, to_sink, &k), -EPIPE);
	CHECK_EQ(k.calls, 2);
	/* A header kept across reads is passed from the filter's copy, and
	 * its error returned too. */
	struct sink k2 = { .fail_at = 2 };
	reset_filter_init(&f);
	CHECK_EQ(reset_filter_feed(&f, in, 28, to_sink, &k2), 0); /* the preface + 4 bytes */
	CHECK_EQ(k2.len, 24);
	CHECK_EQ(reset_filter_feed(&f, in + 28, 5, to_sink, &k2), -EPIPE);
}
