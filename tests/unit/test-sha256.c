/* base/sha256: the FIPS 180-4 vectors and odd-sized updates, through both
 * the portable code and the CPU's SHA extensions (when it has them), and
 * the throughput of each (printed, not checked: a shared machine). */
#include <time.h>

#include "base/sha256.h"
#include "test.h"

static void hex(const uint8_t d[32], char out[65])
{
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

static const struct {
	const char *in;
	size_t repeat;
	const char *digest;
} vectors[] = {
	{ "", 1, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
	{ "abc", 1, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 1,
	  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1" },
	{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopq"
	  "rstu",
	  1, "cf5b16a778af8380036ce59e7b0492370b249b11e8f07a51afac45037afee9d1" },
	{ "a", 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0" },
};

static bool check_vectors(void)
{
	for (size_t v = 0; v < sizeof(vectors) / sizeof(vectors[0]); v++) {
		struct sha256 s;
		uint8_t d[32];
		char h[65];
		sha256_init(&s);
		for (size_t i = 0; i < vectors[v].repeat; i++)
			sha256_update(&s, vectors[v].in, strlen(vectors[v].in));
		sha256_final(&s, d);
		hex(d, h);
		if (strcmp(h, vectors[v].digest) != 0) {
			fprintf(stderr, "# vector %zu: %s\n", v, h);
			return false;
		}
	}
	return true;
}

TEST(vectors_portable)
{
	sha256_select(0);
	CHECK(!sha256_uses_cpu_extensions());
	CHECK(check_vectors());
	sha256_select(-1);
}

TEST(vectors_cpu_extensions)
{
	sha256_select(1);
	if (!sha256_uses_cpu_extensions())
		printf("# no SHA extensions on this CPU\n");
	CHECK(check_vectors());
	sha256_select(-1);
}

/* Updates of every size from 0 to 200 over a 64 KiB buffer give the same
 * digest as one update, with both implementations. */
TEST(split_updates_agree)
{
	size_t len = 65536 + 13;
	uint8_t *buf = malloc(len), one[32], split[32], other[32];
	CHECK(buf);
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(i * 131 + (i >> 9));
	sha256(buf, len, one);
	for (int impl = 0; impl <= 1; impl++) {
		sha256_select(impl);
		for (size_t step = 1; step <= 200; step += 7) {
			struct sha256 s;
			sha256_init(&s);
			for (size_t off = 0; off < len; off += step)
				sha256_update(&s, buf + off, len - off < step ? len - off : step);
			sha256_final(&s, split);
			if (memcmp(one, split, 32) != 0) {
				free(buf);
				sha256_select(-1);
				CHECK(!"split digest differs");
			}
		}
		sha256(buf, len, other);
		if (memcmp(one, other, 32) != 0) {
			free(buf);
			sha256_select(-1);
			CHECK(!"implementations differ");
		}
	}
	sha256_select(-1);
	free(buf);
}

static double mb_per_s(size_t mib)
{
	size_t chunk = 1 << 20;
	uint8_t *buf = calloc(1, chunk), d[32];
	struct timespec a, b;
	struct sha256 s;
	if (!buf)
		return 0;
	sha256_init(&s);
	clock_gettime(CLOCK_MONOTONIC, &a);
	for (size_t i = 0; i < mib; i++)
		sha256_update(&s, buf, chunk);
	sha256_final(&s, d);
	clock_gettime(CLOCK_MONOTONIC, &b);
	free(buf);
	double t = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	return (double)mib * chunk / 1e6 / t;
}

/* VALET_SHA256_BENCH_MIB=1024 measures 1 GiB (docs/files.md). */
TEST(throughput)
{
	const char *e = getenv("VALET_SHA256_BENCH_MIB");
	size_t mib = e ? strtoul(e, NULL, 10) : 32;
	for (int impl = 0; impl <= 1; impl++) {
		sha256_select(impl);
		printf("# sha256 %s: %zu MiB at %.0f MB/s\n",
		       sha256_uses_cpu_extensions() ? "cpu extensions" : "portable", mib, mb_per_s(mib));
	}
	sha256_select(-1);
}
