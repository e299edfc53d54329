/* SHA-256 (FIPS 180-4), streaming, libc only: valet.v1.Files verifies and
 * reports the digest of every byte it writes or reads.
 *
 * On x86-64 CPUs with the SHA extensions the blocks are hashed with them
 * (about 1.5-2 GB/s, above the service's 1 GB/s target); elsewhere with
 * portable C (about 0.3 GB/s). docs/files.md has the choice and the
 * figures. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_SIZE 32

struct sha256 {
	uint32_t h[8];
	uint64_t bytes;
	uint8_t buf[64];
	size_t n;
};

void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *data, size_t len);
/* Writes the digest; s must be initialised again before it is reused. */
void sha256_final(struct sha256 *s, uint8_t out[SHA256_DIGEST_SIZE]);
/* One buffer at once. */
void sha256(const void *data, size_t len, uint8_t out[SHA256_DIGEST_SIZE]);
/* Whether the SHA extensions are used (the benchmark reports it). */
int sha256_uses_cpu_extensions(void);
/* For tests: 0 forces the portable code, 1 the extensions (only when
 * the CPU has them), -1 decides again from the CPU. */
void sha256_select(int use_extensions);
