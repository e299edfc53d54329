#include "ring.h"

#include <stdlib.h>
#include <string.h>

/* A new buffer of cap bytes with the held bytes at its start (head 0). */
static int ring_grow(struct ring *r, size_t cap, struct ring_budget *b)
{
	if (cap <= r->cap || cap - r->cap > b->total - b->used)
		return -1;
	uint8_t *d = malloc(cap);
	if (!d)
		return -1;
	size_t first = r->len < r->cap - r->head ? r->len : r->cap - r->head;
	if (r->len) {
		memcpy(d, r->data + r->head, first);
		memcpy(d + first, r->data, r->len - first);
	}
	free(r->data);
	b->used += cap - r->cap;
	r->data = d;
	r->cap = cap;
	r->head = 0;
	return 0;
}

/* The capacity to hold want bytes: doubling from RING_MIN_CAP (few
 * copies), at most max. */
static size_t next_cap(size_t cap, size_t want, size_t max)
{
	size_t c = cap ? cap : RING_MIN_CAP;

	while (c < want && c < max)
		c = c > max / 2 ? max : c * 2;
	return c < max ? c : max;
}

void ring_append(struct ring *r, const uint8_t *data, size_t n, size_t max, struct ring_budget *b)
{
	r->end += n;
	if (n > max) {
		/* Only the last max bytes can be kept. */
		data += n - max;
		n = max;
	}
	size_t want = r->len + n < max ? r->len + n : max;
	if (want > r->cap && ring_grow(r, next_cap(r->cap, want, max), b) < 0) {
		/* Then just what is wanted, or what the budget has left, else
		 * the ring as it is. */
		size_t left = b->total - b->used;
		(void)ring_grow(r, want - r->cap < left ? want : r->cap + left, b);
	}
	if (r->cap == 0) {
		r->len = 0;
		return;
	}
	if (n > r->cap) {
		data += n - r->cap;
		n = r->cap;
	}
	/* Drop the oldest bytes to make room. */
	if (r->len + n > r->cap) {
		size_t drop = r->len + n - r->cap;
		r->head = (r->head + drop) % r->cap;
		r->len -= drop;
	}
	size_t tail = (r->head + r->len) % r->cap;
	size_t first = n < r->cap - tail ? n : r->cap - tail;
	memcpy(r->data + tail, data, first);
	memcpy(r->data, data + first, n - first);
	r->len += n;
}

void ring_peek(const struct ring *r, uint64_t offset, const uint8_t **ret, size_t *ret_len)
{
	uint64_t start = ring_start(r);

	if (offset < start || offset >= r->end || r->cap == 0) {
		*ret = NULL;
		*ret_len = 0;
		return;
	}
	size_t skip = (size_t)(offset - start);
	size_t pos = (r->head + skip) % r->cap;
	size_t avail = r->len - skip;
	*ret = r->data + pos;
	*ret_len = avail < r->cap - pos ? avail : r->cap - pos;
}

void ring_free(struct ring *r, struct ring_budget *b)
{
	free(r->data);
	b->used -= r->cap;
	*r = (struct ring){ 0 };
}
