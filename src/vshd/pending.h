/* Connections that have not sent their SetupConnectionRequest yet, held
 * by vshd itself (a descriptor and at most one frame each, no process).
 *
 * Their own cap and time bound keep them from starving anybody: a client
 * that stays silent is answered FAILED after the setup timeout; at the cap
 * the oldest is answered FAILED to make room, so a new client always gets
 * its chance to send a request, and established sessions are never touched. */
#pragma once

#include <stddef.h>
#include <stdint.h>

struct loop;
struct pending_set;

/* A whole frame has arrived (data holds it, maybe followed by more). fd is
 * the callee's; data lasts for the call only. */
typedef void (*pending_ready_fn)(int fd, const uint8_t *data, size_t len, const char *peer, void *userdata);

int pending_set_new(struct loop *l, unsigned max, uint64_t timeout_usec, pending_ready_fn fn, void *userdata,
		    struct pending_set **ret);
/* Takes fd. Answers FAILED and closes it when it cannot be held. */
void pending_add(struct pending_set *p, int take_fd, const char *peer);
unsigned pending_count(const struct pending_set *p);
void pending_set_free(struct pending_set *p);
/* In a forked child: closes the inherited descriptors without touching the
 * loop (its epoll set is the parent's too). */
void pending_set_free_after_fork(struct pending_set *p);

/* Answers FAILED to a client without waiting for its request. */
void vshd_refuse(int fd, const char *why);
