/* process-service/ring.c: offsets, lazy growth, dropping the oldest
 * bytes, the shared budget; and request.c's StartRequest checks. */
#include <string.h>

#include "process-service/request.h"
#include "process-service/ring.h"
#include "rpc/status.h"
#include "test.h"

/* Everything held, from ring_start(), through ring_peek(). */
static size_t held(const struct ring *r, uint8_t *out, size_t size)
{
	size_t n = 0;
	for (uint64_t off = ring_start(r); off < r->end;) {
		const uint8_t *p;
		size_t len;
		ring_peek(r, off, &p, &len);
		if (len == 0 || n + len > size)
			return (size_t)-1;
		memcpy(out + n, p, len);
		n += len;
		off += len;
	}
	return n;
}

static void fill(uint8_t *b, size_t n, uint64_t from)
{
	for (size_t i = 0; i < n; i++)
		b[i] = (uint8_t)((from + i) * 7 + ((from + i) >> 8));
}

TEST(ring_is_empty_until_written_and_grows_by_doubling)
{
	struct ring_budget b = { .total = 1 << 20 };
	struct ring r = { 0 };
	uint8_t buf[100];

	CHECK(r.data == NULL && r.cap == 0 && b.used == 0);
	fill(buf, 10, 0);
	ring_append(&r, buf, 10, 1 << 20, &b);
	CHECK_EQ(r.cap, RING_MIN_CAP);
	CHECK_EQ(b.used, RING_MIN_CAP);
	CHECK_EQ(r.end, 10);
	CHECK_EQ(ring_start(&r), 0);
	uint8_t big[3 * RING_MIN_CAP];
	fill(big, sizeof(big), 10);
	ring_append(&r, big, sizeof(big), 1 << 20, &b);
	CHECK_EQ(r.cap, 4 * RING_MIN_CAP);
	CHECK_EQ(b.used, 4 * RING_MIN_CAP);
	uint8_t out[4 * RING_MIN_CAP], want[4 * RING_MIN_CAP];
	CHECK_EQ(held(&r, out, sizeof(out)), 10 + sizeof(big));
	fill(want, 10 + sizeof(big), 0);
	CHECK(memcmp(out, want, 10 + sizeof(big)) == 0);
	ring_free(&r, &b);
	CHECK_EQ(b.used, 0);
	CHECK(r.data == NULL && r.end == 0);
}

TEST(ring_keeps_the_last_max_bytes_with_their_offsets)
{
	struct ring_budget b = { .total = 1 << 20 };
	struct ring r = { 0 };
	const size_t max = 5000; /* not a power of two */
	uint8_t chunk[777], out[5000], want[5000];
	uint64_t written = 0;

	for (int i = 0; i < 50; i++) {
		fill(chunk, sizeof(chunk), written);
		ring_append(&r, chunk, sizeof(chunk), max, &b);
		written += sizeof(chunk);
		CHECK_EQ(r.end, written);
		CHECK(r.cap <= max);
		size_t n = held(&r, out, sizeof(out));
		CHECK_EQ(n, written < max ? written : max);
		CHECK_EQ(ring_start(&r), written - n);
		fill(want, n, written - n);
		CHECK(memcmp(out, want, n) == 0);
	}
	CHECK_EQ(r.cap, max);
	/* One write larger than the whole ring: only its tail stays. */
	uint8_t huge[12345];
	fill(huge, sizeof(huge), written);
	ring_append(&r, huge, sizeof(huge), max, &b);
	written += sizeof(huge);
	CHECK_EQ(held(&r, out, sizeof(out)), max);
	fill(want, max, written - max);
	CHECK(memcmp(out, want, max) == 0);
	/* Peeking outside what is held gives nothing. */
	const uint8_t *p;
	size_t len;
	ring_peek(&r, ring_start(&r) - 1, &p, &len);
	CHECK_EQ(len, 0);
	ring_peek(&r, r.end, &p, &len);
	CHECK_EQ(len, 0);
	ring_free(&r, &b);
}

TEST(ring_within_the_budget)
{
	struct ring_budget b = { .total = 6000 };
	struct ring r1 = { 0 }, r2 = { 0 };
	uint8_t buf[10000], out[10000], want[10000];

	fill(buf, sizeof(buf), 0);
	ring_append(&r1, buf, sizeof(buf), 1 << 20, &b);
	/* Not the 10000 wanted: what the budget had. */
	CHECK_EQ(r1.cap, 6000);
	CHECK_EQ(b.used, 6000);
	CHECK_EQ(held(&r1, out, sizeof(out)), 6000);
	fill(want, 6000, 4000);
	CHECK(memcmp(out, want, 6000) == 0);
	/* Nothing left for another: it counts, and keeps nothing. */
	ring_append(&r2, buf, 100, 1 << 20, &b);
	CHECK_EQ(r2.cap, 0);
	CHECK_EQ(r2.end, 100);
	CHECK_EQ(ring_start(&r2), 100);
	ring_free(&r1, &b);
	ring_append(&r2, buf, 100, 1 << 20, &b);
	CHECK_EQ(r2.cap, RING_MIN_CAP);
	CHECK_EQ(ring_start(&r2), 100);
	CHECK_EQ(r2.end, 200);
	ring_free(&r2, &b);
	CHECK_EQ(b.used, 0);
}

TEST(start_request_checks)
{
	Valet__V1__StartRequest req = VALET__V1__START_REQUEST__INIT;
	Valet__V1__StartRequest__EnvEntry e = VALET__V1__START_REQUEST__ENV_ENTRY__INIT;
	Valet__V1__StartRequest__EnvEntry *env[] = { &e };
	char *argv[] = { "true" }, *empty[] = { "" };
	char err[256];
	size_t buffer = 0;

	CHECK_EQ(process_check_start(&req, 1 << 24, &buffer, err, sizeof(err)), RPC_INVALID_ARGUMENT);
	CHECK(strstr(err, "argv"));
	req.argv = empty;
	req.n_argv = 1;
	CHECK_EQ(process_check_start(&req, 1 << 24, &buffer, err, sizeof(err)), RPC_INVALID_ARGUMENT);
	req.argv = argv;
	CHECK_EQ(process_check_start(&req, 1 << 24, &buffer, err, sizeof(err)), 0);
	CHECK_EQ(buffer, PROCESS_DEFAULT_BUFFER);
	CHECK_EQ(process_check_start(&req, 4096, &buffer, err, sizeof(err)), 0);
	CHECK_EQ(buffer, 4096);
	req.buffer_bytes = 4097;
	CHECK_EQ(process_check_start(&req, 4096, &buffer, err, sizeof(err)), RPC_RESOURCE_EXHAUSTED);
	CHECK(strstr(err, "buffer_bytes"));
	req.buffer_bytes = 1;
	CHECK_EQ(process_check_start(&req, 4096, &buffer, err, sizeof(err)), 0);
	CHECK_EQ(buffer, 1);
	req.cwd = "tmp";
	CHECK_EQ(process_check_start(&req, 4096, &buffer, err, sizeof(err)), RPC_INVALID_ARGUMENT);
	CHECK(strstr(err, "cwd"));
	req.cwd = "/tmp";
	req.env = env;
	req.n_env = 1;
	e.key = "A=B";
	CHECK_EQ(process_check_start(&req, 4096, &buffer, err, sizeof(err)), RPC_INVALID_ARGUMENT);
	e.key = "";
	CHECK_EQ(process_check_start(&req, 4096, &buffer, err, sizeof(err)), RPC_INVALID_ARGUMENT);
	e.key = "A";
	CHECK_EQ(process_check_start(&req, 4096, &buffer, err, sizeof(err)), 0);
	req.rows = 65536;
	CHECK_EQ(process_check_start(&req, 4096, &buffer, err, sizeof(err)), RPC_INVALID_ARGUMENT);
	req.rows = 65535;
	char tag[300];
	memset(tag, 't', sizeof(tag) - 1);
	tag[sizeof(tag) - 1] = 0;
	req.tag = tag;
	CHECK_EQ(process_check_start(&req, 4096, &buffer, err, sizeof(err)), RPC_INVALID_ARGUMENT);
	tag[256] = 0;
	CHECK_EQ(process_check_start(&req, 4096, &buffer, err, sizeof(err)), 0);
}
