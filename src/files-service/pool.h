/* The worker processes of valet.v1.Files (service.h): forked from
 * maitred, each serving one call at a time over its socketpair (frame.h).
 * A worker that finished a call cleanly, as root, waits for the next one
 * (a fork costs more than a Stat), at most FSVC_IDLE_MAX of them, for
 * FSVC_IDLE_USEC; one that acted as a user, failed in the middle of a
 * client stream, or lost its call, is never reused: it exits. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service.h"

#define FSVC_IDLE_MAX 4
#define FSVC_IDLE_USEC (5 * 1000000ULL)

struct fsvc_proc;
/* What epoll reported on the worker's socket, for the call it serves. */
typedef void (*fsvc_proc_io_fn)(uint32_t events, void *userdata);
/* Called once when the process has exited (its frames before that are
 * still readable on fsvc_proc_fd()). */
typedef void (*fsvc_proc_exit_fn)(void *userdata);

/* An idle worker, or a new one: its socket, ready for a JOB frame, and
 * watched for EPOLLIN (on_io) until fsvc_proc_watch() says otherwise.
 * The watch is the worker's for its whole life, not the call's: a pooled
 * worker's calls cost no epoll_ctl. */
int fsvc_proc_get(struct files_service *s, fsvc_proc_io_fn on_io, fsvc_proc_exit_fn on_exit, void *userdata,
		  struct fsvc_proc **ret);
int fsvc_proc_fd(const struct fsvc_proc *p);
/* Its ring's memfd (ring.h), or -1: it has none. */
int fsvc_proc_ring_fd(const struct fsvc_proc *p);
/* FSVC_FRAME_MAX bytes for one frame read from the worker, allocated
 * with it: a call does not allocate its own (a 64 KiB malloc and free
 * per Stat, glibc consolidating its heap at the free). Valid until the
 * call puts the worker. */
uint8_t *fsvc_proc_frame_buf(struct fsvc_proc *p);
/* What the call waits for on the socket: EPOLLIN, EPOLLOUT or both; 0
 * takes the socket out of the epoll set until asked again (epoll reports
 * a hang-up even when asked for nothing). -errno when it cannot be
 * watched. */
int fsvc_proc_watch(struct fsvc_proc *p, uint32_t events);
/* The call is over. reuse: the worker has answered and read everything
 * it was sent; it goes back to the idle workers. Otherwise its socket is
 * closed (an abort for a call in progress) and it is forgotten once it
 * has exited. on_exit is not called after this. */
void fsvc_proc_put(struct fsvc_proc *p, bool reuse);
/* Closes every idle worker and forgets the busy ones (maitred's end). */
void fsvc_pool_free(struct files_service *s);

/* The worker process's main loop (exported for the fuzz/unit tests):
 * its socket, and its ring (ring.h) mapped, or NULL. */
int fsvc_worker_main(int fd, uint8_t *ring);
