/* maitred's side of a Files call: the relay between the call and its
 * worker (frame.h has the protocol, service.h the shape).
 *
 * A job lives from submit() until its worker has exited, which may be
 * after the call has ended (cancelled while the worker is stuck on its
 * disk): the worker count bounds the processes, not the calls. */
#include "job.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/worker.h"
#include "base/macro.h"
#include "frame.h"
#include "rpc/alloc.h"
#include "work.h"

struct fsvc_job {
	struct files_service *svc;
	struct fsvc_job *next_queued;
	struct fsvc_job *prev, *next; /* svc->jobs */
	struct rpc_call *call;	      /* NULL once the call has ended */
	enum fsvc_method method;
	ProtobufCMessage *request; /* our copy; the worker reads it */
	int fd;			   /* maitred's end of the socketpair */
	struct loop_io *io;
	struct worker *worker;
	uint8_t *rbuf; /* one frame from the worker */
	/* Data for the worker that its socket had no room for: the rest of
	 * one client message, as frames of kind pending_kind. */
	uint8_t *pending;
	size_t pending_len, pending_off;
	enum fsvc_frame_kind pending_kind;
	bool commit_due;   /* the client half-closed while data was pending */
	bool send_blocked; /* the call's send queue is full: not reading */
	bool worker_deaf;  /* the worker stopped reading (it failed) */
};

static void job_start(struct fsvc_job *j);
static void on_io(struct loop_io *io, int fd, uint32_t events, void *userdata);
static void job_finish(struct fsvc_job *j, int code, const char *fmt, ...) _printf_(3, 4);

/* Watches the worker's socket for what the job waits for. Not watched at
 * all while the call's send queue is full and nothing is pending: epoll
 * reports a hang-up even when asked for nothing, and the worker may well
 * have exited with its last frames unread. */
static void job_update_events(struct fsvc_job *j)
{
	uint32_t ev = 0;
	int r;

	if (j->call && !j->send_blocked)
		ev |= EPOLLIN;
	if (j->call && j->pending)
		ev |= EPOLLOUT;
	if (!ev) {
		loop_io_free(j->io);
		j->io = NULL;
		return;
	}
	r = j->io ? loop_io_set_events(j->io, ev) : loop_add_io(j->svc->core->loop, j->fd, ev, on_io, j, &j->io);
	if (r < 0)
		job_finish(j, RPC_RESOURCE_EXHAUSTED, "could not watch the worker: %s", strerror(-r));
}

/* The call is over (answered here, or cancelled by the core): forget it,
 * and tell the worker by closing our end (without COMMIT: an abort). The
 * job itself stays until the worker has exited. */
static void job_drop_call(struct fsvc_job *j)
{
	j->call = NULL;
	loop_io_free(j->io);
	j->io = NULL;
	if (j->fd >= 0)
		close(j->fd);
	j->fd = -1;
	free(j->pending);
	j->pending = NULL;
	free(j->rbuf);
	j->rbuf = NULL;
}

static void job_free(struct fsvc_job *j)
{
	struct files_service *s = j->svc;

	job_drop_call(j);
	worker_free(j->worker);
	if (j->request)
		protobuf_c_message_free_unpacked(j->request, NULL);
	if (j->prev)
		j->prev->next = j->next;
	else
		s->jobs = j->next;
	if (j->next)
		j->next->prev = j->prev;
	free(j);
}

static void queue_remove(struct files_service *s, struct fsvc_job *j)
{
	struct fsvc_job **p = &s->queue, *last = NULL;

	while (*p && *p != j) {
		last = *p;
		p = &(*p)->next_queued;
	}
	if (!*p)
		return;
	*p = j->next_queued;
	if (s->queue_last == j)
		s->queue_last = last;
	j->next_queued = NULL;
}

/* A worker slot is free: the oldest waiting call gets it. */
static void start_queued(struct files_service *s)
{
	while (s->queue && s->workers < FSVC_MAX_WORKERS) {
		struct fsvc_job *j = s->queue;
		queue_remove(s, j);
		job_start(j);
	}
}

static void on_worker_exit(int result, void *userdata)
{
	struct fsvc_job *j = userdata;
	struct files_service *s = j->svc;

	s->workers--;
	worker_free(j->worker);
	j->worker = NULL;
	/* Frames it sent before exiting are still in the socket: the io
	 * callback reads them, and the end of the socket after them. */
	if (!j->call) {
		job_free(j);
		start_queued(s);
	}
}

/* Ends the call with a status and drops it. */
static void job_finish(struct fsvc_job *j, int code, const char *fmt, ...)
{
	char msg[512]; /* what grpc-message carries at most */
	va_list ap;
	struct rpc_call *call = j->call;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	job_drop_call(j);
	rpc_call_finish(call, code, "%s", msg);
	if (!j->worker) {
		struct files_service *s = j->svc;
		job_free(j);
		start_queued(s);
	}
}

static void job_finish_ok(struct fsvc_job *j)
{
	struct rpc_call *call = j->call;

	job_drop_call(j);
	rpc_call_finish(call, RPC_OK, NULL);
	if (!j->worker) {
		struct files_service *s = j->svc;
		job_free(j);
		start_queued(s);
	}
}

/* One frame from the worker. False once the call has ended. */
static bool handle_frame(struct fsvc_job *j, const uint8_t *f, size_t n)
{
	const struct fsvc_error_head *h;
	int r;

	switch (f[0]) {
	case FSVC_MSG:
		r = rpc_call_send_encoded(j->call, f + 1, n - 1);
		if (r < 0) {
			job_finish(j, RPC_INTERNAL, "could not send a response: %s", strerror(-r));
			return false;
		}
		if (r > 0)
			j->send_blocked = true;
		return true;
	case FSVC_DONE:
		job_finish_ok(j);
		return false;
	case FSVC_ERROR:
		if (n < 1 + sizeof(*h))
			break;
		h = (const struct fsvc_error_head *)(f + 1);
		job_finish(j, (int)h->code, "%.*s", (int)(n - 1 - sizeof(*h)), (const char *)(f + 1 + sizeof(*h)));
		return false;
	}
	job_finish(j, RPC_INTERNAL, "the worker of this call sent a bad frame");
	return false;
}

static void read_frames(struct fsvc_job *j)
{
	if (!j->rbuf) {
		j->rbuf = malloc(FSVC_FRAME_MAX);
		if (!j->rbuf)
			return job_finish(j, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	while (j->call && !j->send_blocked) {
		ssize_t n = recv(j->fd, j->rbuf, FSVC_FRAME_MAX, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return job_finish(j, RPC_INTERNAL, "the worker of this call ended without an answer");
		if (!handle_frame(j, j->rbuf, (size_t)n))
			return;
	}
	job_update_events(j);
}

/* Sends as much of the pending data as the socket takes. 0 when all of it
 * went, -EAGAIN when some is left, other -errno when the worker is gone. */
static int flush_pending(struct fsvc_job *j)
{
	while (j->pending_off < j->pending_len) {
		size_t k = MIN(j->pending_len - j->pending_off, (size_t)FSVC_CHUNK);
		int r = fsvc_send(j->fd, j->pending_kind, j->pending + j->pending_off, k, NULL, 0);
		if (r < 0)
			return r;
		j->pending_off += k;
	}
	free(j->pending);
	j->pending = NULL;
	return 0;
}

static void send_commit(struct fsvc_job *j)
{
	j->commit_due = false;
	/* A worker that failed has its answer in the socket already. */
	if (fsvc_send(j->fd, FSVC_COMMIT, NULL, 0, NULL, 0) < 0)
		j->worker_deaf = true;
}

static void on_io(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct fsvc_job *j = userdata;

	if ((events & EPOLLOUT) && j->pending) {
		int r = flush_pending(j);
		if (r == 0) {
			if (j->commit_due)
				send_commit(j);
			else
				rpc_call_resume_receiving(j->call);
		} else if (r != -EAGAIN) {
			free(j->pending);
			j->pending = NULL;
			j->worker_deaf = true;
		}
	}
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		read_frames(j);
	else
		job_update_events(j);
}

/* Data or an entry for the worker, in frames of at most FSVC_CHUNK. What
 * the socket has no room for is kept (one message at most: receiving
 * pauses until it is sent). */
static void to_worker(struct fsvc_job *j, enum fsvc_frame_kind kind, const uint8_t *data, size_t len)
{
	size_t off = 0;

	if (j->worker_deaf)
		return; /* its answer is on the way */
	do {
		size_t k = MIN(len - off, (size_t)FSVC_CHUNK);
		int r = fsvc_send(j->fd, kind, data + off, k, NULL, 0);
		if (r == -EAGAIN)
			break;
		if (r < 0) {
			j->worker_deaf = true;
			return;
		}
		off += k;
	} while (off < len);
	if (off == len)
		return;
	j->pending = malloc(len - off);
	if (!j->pending)
		return job_finish(j, RPC_RESOURCE_EXHAUSTED, "out of memory");
	memcpy(j->pending, data + off, len - off);
	j->pending_len = len - off;
	j->pending_off = 0;
	j->pending_kind = kind;
	rpc_call_pause_receiving(j->call);
	job_update_events(j);
}

static void on_write_message(struct rpc_call *call, const ProtobufCMessage *msg, void *userdata)
{
	const Valet__V1__WriteRequest *m = (const Valet__V1__WriteRequest *)msg;
	struct fsvc_job *j = userdata;

	if (m->part_case != VALET__V1__WRITE_REQUEST__PART_DATA)
		return job_finish(j, RPC_INVALID_ARGUMENT, "Write: only the first message is a header; then data");
	if (m->data.len)
		to_worker(j, FSVC_DATA, m->data.data, m->data.len);
}

static void on_tree_message(struct rpc_call *call, const ProtobufCMessage *msg, void *userdata)
{
	const Valet__V1__TreeRequest *m = (const Valet__V1__TreeRequest *)msg;
	struct fsvc_job *j = userdata;
	uint8_t *buf;
	size_t len;

	switch (m->part_case) {
	case VALET__V1__TREE_REQUEST__PART_DATA:
		if (m->data.len)
			to_worker(j, FSVC_DATA, m->data.data, m->data.len);
		return;
	case VALET__V1__TREE_REQUEST__PART_ENTRY:
		len = valet__v1__tree_entry__get_packed_size(m->entry);
		if (len > FSVC_CHUNK)
			return job_finish(j, RPC_INVALID_ARGUMENT, "WriteTree: an entry of %zu bytes is too large",
					  len);
		buf = malloc(len ? len : 1);
		if (!buf)
			return job_finish(j, RPC_RESOURCE_EXHAUSTED, "out of memory");
		valet__v1__tree_entry__pack(m->entry, buf);
		to_worker(j, FSVC_ENTRY, buf, len);
		free(buf);
		return;
	default:
		return job_finish(j, RPC_INVALID_ARGUMENT, "WriteTree: only the first message is a header; then entries and data");
	}
}

static void on_client_end(struct rpc_call *call, void *userdata)
{
	struct fsvc_job *j = userdata;

	if (j->pending)
		j->commit_due = true;
	else
		send_commit(j);
}

static void on_writable(struct rpc_call *call, void *userdata)
{
	struct fsvc_job *j = userdata;

	j->send_blocked = false;
	job_update_events(j);
}

static void on_cancel(struct rpc_call *call, void *userdata)
{
	struct fsvc_job *j = userdata;
	struct files_service *s = j->svc;

	j->call = NULL; /* freed by the core after this */
	job_drop_call(j);
	queue_remove(s, j);
	if (!j->worker) {
		job_free(j);
		start_queued(s);
	}
}

/* In the worker: the method's work on its end of the socketpair. */
static int run_in_worker(void *arg)
{
	struct fsvc_job *j = arg;
	int fd = j->fd; /* the worker's end, set just before the fork */

	switch (j->method) {
	case FSVC_STAT:
		return fsvc_work_stat(fd, (const Valet__V1__StatRequest *)j->request);
	case FSVC_LIST:
		return fsvc_work_list(fd, (const Valet__V1__ListRequest *)j->request);
	case FSVC_MKDIR:
		return fsvc_work_mkdir(fd, (const Valet__V1__MakeDirectoryRequest *)j->request);
	case FSVC_REMOVE:
		return fsvc_work_remove(fd, (const Valet__V1__RemoveRequest *)j->request);
	case FSVC_MOVE:
		return fsvc_work_move(fd, (const Valet__V1__MoveRequest *)j->request);
	case FSVC_READ:
		return fsvc_work_read(fd, (const Valet__V1__ReadRequest *)j->request);
	case FSVC_READ_TREE:
		return fsvc_work_read_tree(fd, (const Valet__V1__ReadTreeRequest *)j->request);
	case FSVC_WRITE:
		return fsvc_work_write(fd, ((const Valet__V1__WriteRequest *)j->request)->header);
	case FSVC_WRITE_TREE:
		return fsvc_work_write_tree(fd, ((const Valet__V1__TreeRequest *)j->request)->header);
	}
	return -EINVAL;
}

static void job_start(struct fsvc_job *j)
{
	struct files_service *s = j->svc;
	int fds[2], r;

	r = fsvc_socketpair(fds);
	if (r < 0)
		return job_finish(j, RPC_RESOURCE_EXHAUSTED, "could not start a worker: %s", strerror(-r));
	j->fd = fds[1];
	r = worker_start(s->core->loop, run_in_worker, j, fds[1], on_worker_exit, j, &j->worker);
	close(fds[1]);
	j->fd = fds[0];
	if (r < 0) {
		close(fds[0]);
		j->fd = -1;
		return job_finish(j, RPC_RESOURCE_EXHAUSTED, "could not start a worker: %s", strerror(-r));
	}
	s->workers++;
	(void)fcntl(j->fd, F_SETFL, O_NONBLOCK);
	job_update_events(j);
	if (!j->call)
		return;
	rpc_call_set_writable(j->call, on_writable, j);
	if (j->method == FSVC_WRITE)
		rpc_call_set_receiver(j->call, on_write_message, on_client_end, j);
	else if (j->method == FSVC_WRITE_TREE)
		rpc_call_set_receiver(j->call, on_tree_message, on_client_end, j);
}

/* An owned copy of a message the core will free. */
static ProtobufCMessage *message_dup(const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	_cleanup_free_ uint8_t *buf = malloc(len ? len : 1);

	if (!buf)
		return NULL;
	protobuf_c_message_pack(m, buf);
	return protobuf_c_message_unpack(m->descriptor, NULL, len, buf);
}

void fsvc_job_submit(struct files_service *s, struct rpc_call *call, enum fsvc_method m,
		     const ProtobufCMessage *request)
{
	struct fsvc_job *j = calloc(1, sizeof(*j));

	if (!j)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	j->request = message_dup(request);
	if (!j->request) {
		free(j);
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	j->svc = s;
	j->call = call;
	j->method = m;
	j->fd = -1;
	j->next = s->jobs;
	if (s->jobs)
		s->jobs->prev = j;
	s->jobs = j;
	rpc_call_set_cancel(call, on_cancel, j);
	if (s->workers < FSVC_MAX_WORKERS && !s->queue)
		return job_start(j);
	if (s->queue_last)
		s->queue_last->next_queued = j;
	else
		s->queue = j;
	s->queue_last = j;
}

void fsvc_job_free_all(struct files_service *s)
{
	while (s->jobs) {
		struct fsvc_job *j = s->jobs;
		if (j->call)
			rpc_call_set_cancel(j->call, NULL, NULL);
		job_free(j);
	}
	s->queue = s->queue_last = NULL;
}
