/* What every fuzz target shares: the libFuzzer entry point, a check that
 * crashes (so that both libFuzzer and the replay driver see it), and a
 * small deterministic random source seeded from the input, for schedules
 * (chunk sizes, when to answer) that must not depend on anything else. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* An invariant of the code under test: a violation is a finding. */
#define FUZZ_CHECK(expr)                                                                         \
	do {                                                                                     \
		if (!(expr)) {                                                                   \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #expr); \
			abort();                                                                 \
		}                                                                                \
	} while (0)

/* splitmix64: tiny, and the same sequence everywhere for the same seed. */
struct fuzz_rng {
	uint64_t s;
};

static inline uint64_t fuzz_rng_next(struct fuzz_rng *r)
{
	uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* 0 <= result < n */
static inline unsigned fuzz_rng_below(struct fuzz_rng *r, unsigned n)
{
	return n ? (unsigned)(fuzz_rng_next(r) % n) : 0;
}

/* Consumes a little-endian integer of n <= 8 bytes from the front. */
static inline uint64_t fuzz_take(const uint8_t **data, size_t *size, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n && *size; i++, (*data)++, (*size)--)
		v |= (uint64_t) * *data << (8 * i);
	return v;
}

/* A chunk size for feeding a stream piecewise: mostly small (to split
 * frames and headers anywhere), sometimes everything that is left. */
static inline size_t fuzz_chunk(struct fuzz_rng *r, size_t left)
{
	size_t n;
	switch (fuzz_rng_below(r, 4)) {
	case 0: n = 1 + fuzz_rng_below(r, 9); break;
	case 1: n = 1 + fuzz_rng_below(r, 64); break;
	case 2: n = 1 + fuzz_rng_below(r, 1024); break;
	default: n = left; break;
	}
	return n < left ? n : left;
}
