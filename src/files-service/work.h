/* The worker side of valet.v1.Files: what runs in the child process a
 * call forks (docs/files.md, "Where the I/O runs"). Each function takes
 * the worker's end of the socketpair (frame.h, blocking) and the call's
 * first request message (the parent's, in the child's copy of its
 * memory), acts as the request's user, does the work with the files
 * layer, sends MSG frames, and ends with DONE or ERROR. Returns the exit
 * status for the child (unused by maitred: the frames say everything). */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "files.pb-c.h"
#include "files/creds.h"
#include "files/status.h"

/* Common start: resolves user and acts as that user (after which the
 * worker is not reused). On failure the ERROR frame is sent; -errno. */
int fsvc_work_begin(int fd, const char *user, struct files_user *ret_user);
/* An ERROR frame from a files-layer failure r with its message, or
 * from fmt when err is NULL. Returns r. */
int fsvc_work_fail(int fd, int r, const struct files_err *err);
int fsvc_work_fail_code(int fd, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
int fsvc_work_done(int fd);
/* A call's one response and its OK end, in one frame (REPLY). */
int fsvc_work_reply(int fd, const ProtobufCMessage *m);
/* Whether the worker may serve another call after this one: Write and
 * WriteTree say so once they have read the COMMIT (an error before it
 * leaves the client's frames unread in the socket). */
void fsvc_work_set_reusable(bool on);
bool fsvc_work_reusable(void);
/* The worker's ring (ring.h), every slot free at the start of each
 * call; NULL when it has none (its data goes through the socket). */
void fsvc_work_set_ring(uint8_t *map);
struct fsvc_ring *fsvc_work_ring(void);

int fsvc_work_stat(int fd, const Valet__V1__StatRequest *req);
int fsvc_work_list(int fd, const Valet__V1__ListRequest *req);
int fsvc_work_mkdir(int fd, const Valet__V1__MakeDirectoryRequest *req);
int fsvc_work_remove(int fd, const Valet__V1__RemoveRequest *req);
int fsvc_work_move(int fd, const Valet__V1__MoveRequest *req);
int fsvc_work_read(int fd, const Valet__V1__ReadRequest *req);
int fsvc_work_read_tree(int fd, const Valet__V1__ReadTreeRequest *req);
int fsvc_work_write(int fd, const Valet__V1__WriteHeader *hdr);
int fsvc_work_write_tree(int fd, const Valet__V1__TreeHeader *hdr);
