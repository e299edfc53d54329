/* A worker process's main loop (pool.h): one JOB after another, each
 * run by the method's work function (work.h), until maitred closes the
 * socket or a call leaves the worker unfit for another. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>

#include "base/macro.h"
#include "files/names-watch.h"
#include "frame.h"
#include "job.h"
#include "pool.h"
#include "work.h"

static const ProtobufCMessageDescriptor *const request_types[] = {
	[FSVC_STAT] = &valet__v1__stat_request__descriptor,
	[FSVC_LIST] = &valet__v1__list_request__descriptor,
	[FSVC_MKDIR] = &valet__v1__make_directory_request__descriptor,
	[FSVC_REMOVE] = &valet__v1__remove_request__descriptor,
	[FSVC_MOVE] = &valet__v1__move_request__descriptor,
	[FSVC_READ] = &valet__v1__read_request__descriptor,
	[FSVC_READ_TREE] = &valet__v1__read_tree_request__descriptor,
	[FSVC_WRITE] = &valet__v1__write_request__descriptor,
	[FSVC_WRITE_TREE] = &valet__v1__tree_request__descriptor,
};

static int run_method(int fd, enum fsvc_method m, const ProtobufCMessage *req)
{
	switch (m) {
	case FSVC_STAT:
		return fsvc_work_stat(fd, (const Valet__V1__StatRequest *)req);
	case FSVC_LIST:
		return fsvc_work_list(fd, (const Valet__V1__ListRequest *)req);
	case FSVC_MKDIR:
		return fsvc_work_mkdir(fd, (const Valet__V1__MakeDirectoryRequest *)req);
	case FSVC_REMOVE:
		return fsvc_work_remove(fd, (const Valet__V1__RemoveRequest *)req);
	case FSVC_MOVE:
		return fsvc_work_move(fd, (const Valet__V1__MoveRequest *)req);
	case FSVC_READ:
		return fsvc_work_read(fd, (const Valet__V1__ReadRequest *)req);
	case FSVC_READ_TREE:
		return fsvc_work_read_tree(fd, (const Valet__V1__ReadTreeRequest *)req);
	case FSVC_WRITE:
		return fsvc_work_write(fd, ((const Valet__V1__WriteRequest *)req)->header);
	case FSVC_WRITE_TREE:
		return fsvc_work_write_tree(fd, ((const Valet__V1__TreeRequest *)req)->header);
	}
	return -EINVAL;
}

int fsvc_worker_main(int fd, uint8_t *ring)
{
	_cleanup_free_ uint8_t *buf = NULL;

	/* A worker outliving maitred would be nobody's: its socket's end is
	 * what it waits on, but a stuck disk is not. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	/* maitred's: reading it here would take maitred's events. */
	files_names_watch_stop();
	buf = malloc(FSVC_FRAME_MAX);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ProtobufCMessage *req;
		ssize_t n = recv(fd, buf, FSVC_FRAME_MAX, 0);
		if (n < 0 && errno == EINTR)
			continue;
		/* Slots given back after the last call's answer was sent. */
		if (n == 2 && buf[0] == FSVC_FREE)
			continue;
		/* The end of the socket: maitred is done with this worker. Any
		 * other frame here is what an aborted call left. */
		if (n < 2 || buf[0] != FSVC_JOB || buf[1] >= ARRAY_SIZE(request_types))
			return 0;
		/* A client stream's frames may wait unread behind an early
		 * error: reusable again only once the worker has read its
		 * COMMIT (work-write.c). */
		fsvc_work_set_reusable(buf[1] != FSVC_WRITE && buf[1] != FSVC_WRITE_TREE);
		fsvc_work_set_ring(ring);
		req = protobuf_c_message_unpack(request_types[buf[1]], NULL, (size_t)n - 2, buf + 2);
		if (!req) {
			fsvc_work_set_reusable(false);
			(void)fsvc_work_fail_code(fd, FILES_GRPC_INTERNAL, "the worker could not decode its request");
			return -EBADMSG;
		}
		(void)run_method(fd, (enum fsvc_method)buf[1], req);
		protobuf_c_message_free_unpacked(req, NULL);
		if (!fsvc_work_reusable())
			return 0;
	}
}
