/* A Read's data through shared memory (docs/files.md, "Where the I/O
 * runs"): each worker has a ring of FSVC_RING_SLOTS slots of FSVC_CHUNK
 * bytes, a memfd. The worker has it mapped (inherited from the fork) and
 * reads the file straight into a free slot; maitred keeps only the
 * descriptor and preads the slot straight into the call's send queue, so
 * none of the ring counts in maitred's RSS.
 *
 * A SLOT frame (frame.h) from the worker says "slot i holds len bytes",
 * with the head of the response message to put before them; maitred's
 * FREE frame gives the slot back. Through the socket, each piece was
 * copied into a socket buffer allocated for it, out of it, and again
 * into the send queue; through the ring it is copied once, and the
 * socket carries a few bytes per slot. The slots are the back-pressure,
 * as the socket's buffer was: a worker with no free slot waits for a
 * FREE, which maitred sends once the piece is queued, and maitred stops
 * reading the worker's frames while the call's send queue is full.
 *
 * Not for a Write: the worker's FREE for each slot woke maitred once
 * more per piece, and a 1 GiB upload was slower than through the
 * socket (docs/benchmarks.md). */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "frame.h"

#define FSVC_RING_SLOTS 4
#define FSVC_RING_SIZE ((size_t)FSVC_RING_SLOTS * FSVC_CHUNK)

/* A SLOT frame's payload, then the message head. */
struct fsvc_slot_head {
	uint8_t slot;
	uint32_t len;
} __attribute__((packed));

/* maitred: a new ring's memfd, sized, close-on-exec: -errno. */
int fsvc_ring_create(int *ret_fd);
/* maitred: the ring mapped shared, for a worker about to be forked to
 * inherit (maitred unmaps its own copy once the fork is done): NULL on
 * failure. */
uint8_t *fsvc_ring_map(int fd);
void fsvc_ring_unmap(uint8_t *map);
/* maitred: the ring's pages given back once a call that used it is over
 * (an idle worker holds none). */
void fsvc_ring_release(int fd);

/* A SLOT frame: slot, len bytes in it, and the message's head. */
int fsvc_send_slot(int fd, unsigned slot, size_t len, const void *head, size_t hlen);
int fsvc_send_free(int fd, unsigned slot);
/* A SLOT frame's payload (p, n): its slot (below FSVC_RING_SLOTS), its
 * length (at most FSVC_CHUNK) and head; -EBADMSG otherwise. */
int fsvc_slot_parse(const uint8_t *p, size_t n, unsigned *ret_slot, size_t *ret_len, const uint8_t **ret_head,
		    size_t *ret_hlen);
/* A FREE frame's payload: its slot, or -EBADMSG. */
int fsvc_free_parse(const uint8_t *p, size_t n);

/* The worker's side: which slots it may fill. */
struct fsvc_ring {
	uint8_t *map; /* NULL: no ring, data goes through the socket */
	unsigned free; /* a bit per slot */
};

static inline uint8_t *fsvc_ring_slot(const struct fsvc_ring *r, unsigned i)
{
	return r->map + (size_t)i * FSVC_CHUNK;
}
/* Every slot free: at the start of a call. */
void fsvc_ring_reset(struct fsvc_ring *r);
/* A free slot, waiting for maitred's FREE frames when none is: its
 * index, -ECANCELED at the socket's end (the call aborted), -EBADMSG for
 * any other frame, -errno. */
int fsvc_ring_take(struct fsvc_ring *r, int fd);
/* A slot taken and not sent (nothing was read into it). */
void fsvc_ring_put(struct fsvc_ring *r, unsigned slot);
