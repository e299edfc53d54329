/* The output of one stream of a process: the last bytes it wrote, with
 * their offsets (bytes since the stream began). Allocated on the first
 * byte and grown as output comes (never preallocated), up to the
 * process's buffer size and as far as the service's total allows; once
 * full, the oldest bytes make room and are dropped. Pure: no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Buffer memory shared by every ring of a service. */
struct ring_budget {
	size_t used;
	size_t total;
};

struct ring {
	uint8_t *data;
	size_t cap;   /* allocated */
	size_t len;   /* held: the bytes [end - len, end) */
	size_t head;  /* index in data of the byte at offset end - len */
	uint64_t end; /* bytes written since the start */
};

/* The smallest allocation: a process writing a line costs a page. */
#define RING_MIN_CAP 4096

/* Appends n bytes, keeping the last max (max >= 1); grows when it can
 * (within b), else drops the oldest. Cannot fail: what does not fit is
 * dropped, and an allocation that fails is a growth that did not happen. */
void ring_append(struct ring *r, const uint8_t *data, size_t n, size_t max, struct ring_budget *b);
/* The offset of the oldest byte held. */
static inline uint64_t ring_start(const struct ring *r)
{
	return r->end - r->len;
}
/* The bytes held from offset (ring_start() <= offset <= end) that are
 * contiguous in memory: *ret_len may be less than end - offset. */
void ring_peek(const struct ring *r, uint64_t offset, const uint8_t **ret, size_t *ret_len);
/* Gives the memory back to b. */
void ring_free(struct ring *r, struct ring_budget *b);
