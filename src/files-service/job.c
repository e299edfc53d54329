/* maitred's side of a Files call: the relay between the call and its
 * worker (frame.h has the protocol, pool.h the workers). A job lives as
 * long as its call; the worker may outlive it (pool.c). */
#include "job.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/list.h"
#include "base/macro.h"
#include "files.pb-c.h"
#include "frame.h"
#include "pool.h"
#include "ring.h"

#define FSVC_SEND_HIGH (256 * 1024)
#define FSVC_SEND_LOW (64 * 1024)

struct fsvc_job {
	struct files_service *svc;
	struct fsvc_job *prev, *next; /* svc->jobs */
	struct fsvc_job *next_queued;
	struct rpc_call *call;
	enum fsvc_method method;
	uint8_t *job_frame; /* the JOB frame's payload: method, request */
	size_t job_frame_len;
	struct fsvc_proc *proc; /* its worker, once started */
	int fd;			/* the worker's socket (the pool's) */
	int ring_fd;		/* its ring (ring.h, the pool's), or -1 */
	bool ring_used;		/* its pages are given back at the end */
	/* A Write's data that the socket had no room for: the rest of one
	 * client message. */
	uint8_t *pending;
	size_t pending_len, pending_off;
	bool commit_due;   /* the client half-closed; COMMIT not sent yet (data
			    * pending, or the socket full: on EPOLLOUT) */
	bool send_blocked; /* the call's send queue is full: not reading */
	bool worker_deaf;  /* the worker stopped reading (it failed) */
	/* WriteTree: entries and data gathered as the frames of BATCH
	 * packets, from batch_off, until a packet's worth is there or the
	 * loop's round ends (batch_defer). */
	uint8_t *batch;
	size_t batch_len, batch_off, batch_cap;
	struct loop_defer *batch_defer;
	bool batch_blocked; /* the socket is full: receiving paused, EPOLLOUT */
};

static void on_io(uint32_t events, void *userdata);
static void job_finish(struct fsvc_job *j, int code, const char *fmt, ...) _printf_(3, 4);

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

/* The call is over (answered, or cancelled by the core). reuse: the
 * worker answered after reading all it was sent, and said it may serve
 * again. */
static void job_free(struct fsvc_job *j, bool reuse)
{
	struct files_service *s = j->svc;

	queue_remove(s, j);
	loop_defer_free(j->batch_defer);
	free(j->batch);
	free(j->pending);
	free(j->job_frame);
	LIST_REMOVE(s->jobs, j);
	if (j->ring_used)
		fsvc_ring_release(j->ring_fd);
	/* Last: putting the worker back may start a queued job at once. */
	if (j->proc)
		fsvc_proc_put(j->proc, reuse);
	free(j);
}

/* Watches the worker's socket (the pool's watch) for what the job waits
 * for. Not watched at all while the call's send queue is full and nothing
 * is pending: the worker may well have exited with its last frames
 * unread. */
static int job_update_events(struct fsvc_job *j)
{
	uint32_t ev = (j->send_blocked ? 0 : EPOLLIN) | (j->pending || j->batch_blocked || j->commit_due ? EPOLLOUT : 0);
	int r = fsvc_proc_watch(j->proc, ev);

	if (r < 0)
		job_finish(j, RPC_RESOURCE_EXHAUSTED, "could not watch the worker: %s", strerror(-r));
	return r;
}

static void job_end(struct fsvc_job *j, bool reuse, int code, const char *msg)
{
	struct rpc_call *call = j->call;

	rpc_call_set_cancel(call, NULL, NULL);
	job_free(j, reuse);
	rpc_call_finish(call, code, msg ? "%s" : NULL, msg);
}

/* Ends the call with a status; the worker is not reused. */
static void job_finish(struct fsvc_job *j, int code, const char *fmt, ...)
{
	char msg[512]; /* what grpc-message carries at most */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	job_end(j, false, code, msg);
}

/* A BATCH of response messages (ReadTree's entries and data). False once
 * the call has ended. The call's queue takes them all: at most a packet
 * above its high mark. */
static bool relay_batch(struct fsvc_job *j, const uint8_t *p, size_t len)
{
	const uint8_t *m;
	size_t off = 0, n;
	uint8_t kind;
	int r;

	while ((r = fsvc_batch_next(p, len, &off, &kind, &m, &n)) > 0) {
		if (kind != FSVC_MSG) {
			r = -EBADMSG;
			break;
		}
		r = rpc_call_send_encoded(j->call, m, n);
		if (r < 0) {
			job_finish(j, RPC_INTERNAL, "could not send a response: %s", strerror(-r));
			return false;
		}
		if (r > 0)
			j->send_blocked = true;
	}
	if (r < 0) {
		job_finish(j, RPC_INTERNAL, "the worker of this call sent a bad frame");
		return false;
	}
	return true;
}

struct slot_fill {
	int fd;
	unsigned slot;
	const uint8_t *head;
	size_t hlen;
};

/* A response message: its head from the SLOT frame, then the slot's
 * data read from the ring straight into the call's send queue. */
static int fill_from_slot(uint8_t *buf, size_t len, void *arg)
{
	const struct slot_fill *f = arg;
	size_t n = len - f->hlen;
	ssize_t r;

	if (f->hlen)
		memcpy(buf, f->head, f->hlen);
	r = pread(f->fd, buf + f->hlen, n, (off_t)f->slot * FSVC_CHUNK);
	if (r < 0)
		return -errno;
	return (size_t)r == n ? 0 : -EIO;
}

/* A Read's data in a slot of the ring: queued for the client, and the
 * slot given back. False once the call has ended. */
static bool relay_slot(struct fsvc_job *j, const uint8_t *p, size_t n)
{
	struct slot_fill f = { .fd = j->ring_fd };
	size_t len;
	int r;

	if (j->ring_fd < 0 || fsvc_slot_parse(p, n, &f.slot, &len, &f.head, &f.hlen) < 0) {
		job_finish(j, RPC_INTERNAL, "the worker of this call sent a bad frame");
		return false;
	}
	j->ring_used = true;
	r = rpc_call_send_filled(j->call, f.hlen + len, fill_from_slot, &f);
	if (r < 0) {
		job_finish(j, RPC_INTERNAL, "could not send a response: %s", strerror(-r));
		return false;
	}
	if (r > 0)
		j->send_blocked = true;
	if (j->worker_deaf)
		return true;
	r = fsvc_send_free(j->fd, f.slot);
	/* Never full: a FREE per slot at most is on its way. A worker that
	 * has exited after its answer (it acted as a user) reads no more. */
	if (r == -EAGAIN) {
		job_finish(j, RPC_INTERNAL, "the worker of this call stopped reading");
		return false;
	}
	if (r < 0)
		j->worker_deaf = true;
	return true;
}

/* One frame from the worker. False once the call has ended. */
static bool handle_frame(struct fsvc_job *j, const uint8_t *f, size_t n)
{
	const struct fsvc_end_head *h = (const struct fsvc_end_head *)(f + 1);
	char msg[512];
	int r;

	switch (f[0]) {
	case FSVC_BATCH:
		return relay_batch(j, f + 1, n - 1);
	case FSVC_SLOT:
		return relay_slot(j, f + 1, n - 1);
	case FSVC_MSG:
		r = rpc_call_send_encoded(j->call, f + 1, n - 1);
		if (r < 0) {
			job_finish(j, RPC_INTERNAL, "could not send a response: %s", strerror(-r));
			return false;
		}
		if (r > 0)
			j->send_blocked = true;
		return true;
	case FSVC_REPLY:
		if (n < 1 + sizeof(*h))
			break;
		r = rpc_call_send_encoded(j->call, f + 1 + sizeof(*h), n - 1 - sizeof(*h));
		if (r < 0) {
			job_finish(j, RPC_INTERNAL, "could not send a response: %s", strerror(-r));
			return false;
		}
		job_end(j, h->reusable && !j->worker_deaf, RPC_OK, NULL);
		return false;
	case FSVC_DONE:
		if (n < 1 + sizeof(*h))
			break;
		job_end(j, h->reusable && !j->worker_deaf, RPC_OK, NULL);
		return false;
	case FSVC_ERROR:
		if (n < 1 + sizeof(*h))
			break;
		snprintf(msg, sizeof(msg), "%.*s", (int)(n - 1 - sizeof(*h)), (const char *)(f + 1 + sizeof(*h)));
		job_end(j, h->reusable && !j->worker_deaf, (int)h->code, msg);
		return false;
	}
	job_finish(j, RPC_INTERNAL, "the worker of this call sent a bad frame");
	return false;
}

/* False once the call has ended. */
static bool read_frames(struct fsvc_job *j)
{
	uint8_t *buf = fsvc_proc_frame_buf(j->proc);

	while (!j->send_blocked) {
		ssize_t n = recv(j->fd, buf, FSVC_FRAME_MAX, MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		/* A worker that exits with our frames unread in its socket (a
		 * Write refused at its header) leaves ECONNRESET here, and the
		 * kernel reports it once, before the frames the worker did
		 * send: its answer is still to be read. */
		if (n < 0 && errno == ECONNRESET)
			continue;
		if (n <= 0) {
			job_finish(j, RPC_INTERNAL, "the worker of this call ended without an answer");
			return false;
		}
		if (!handle_frame(j, buf, (size_t)n))
			return false;
	}
	return job_update_events(j) == 0;
}

/* Sends as much of the pending data as the socket takes: 0 when all of
 * it went, -EAGAIN when some is left, other -errno when the worker is
 * gone. */
static int flush_pending(struct fsvc_job *j)
{
	while (j->pending_off < j->pending_len) {
		size_t k = MIN(j->pending_len - j->pending_off, (size_t)FSVC_CHUNK);
		int r = fsvc_send(j->fd, FSVC_DATA, j->pending + j->pending_off, k, NULL, 0);
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
	int r;

	j->commit_due = false;
	/* A worker that failed has its answer in the socket already. */
	if (j->worker_deaf)
		return;
	r = fsvc_send(j->fd, FSVC_COMMIT, NULL, 0, NULL, 0);
	/* The socket full of the last data frames (a slow disk): COMMIT goes
	 * once it has room. Taking EAGAIN for a deaf worker left the worker
	 * waiting for it, and the call for ever. */
	if (r == -EAGAIN)
		j->commit_due = true;
	else if (r < 0)
		j->worker_deaf = true;
}

/* Sends the batch's whole packets (all: the last, partial one too). 0,
 * or -EAGAIN when the socket is full: receiving is paused and
 * batch_blocked set (the caller updates the events). A worker gone
 * drops the batch. */
static int send_batch(struct fsvc_job *j, bool all)
{
	while (j->batch_off < j->batch_len) {
		size_t left = j->batch_len - j->batch_off;
		size_t k = fsvc_batch_span(j->batch + j->batch_off, left, FSVC_CHUNK);
		if (k == left && !all)
			break;
		int r = fsvc_send(j->fd, FSVC_BATCH, j->batch + j->batch_off, k, NULL, 0);
		if (r == -EAGAIN) {
			j->batch_blocked = true;
			rpc_call_pause_receiving(j->call);
			return r;
		}
		if (r < 0) {
			j->worker_deaf = true;
			break;
		}
		j->batch_off += k;
	}
	if (j->worker_deaf || j->batch_off == j->batch_len) {
		j->batch_off = j->batch_len = 0;
		/* After a message larger than a packet: back to a packet's room. */
		if (j->batch_cap > FSVC_FRAME_MAX) {
			free(j->batch);
			j->batch = NULL;
			j->batch_cap = 0;
		}
	}
	return 0;
}

static void on_batch_due(struct loop_defer *d, void *userdata)
{
	struct fsvc_job *j = userdata;

	if (!j->batch_blocked && send_batch(j, true) == -EAGAIN)
		(void)job_update_events(j);
}

static void on_io(uint32_t events, void *userdata)
{
	struct fsvc_job *j = userdata;

	if ((events & EPOLLOUT) && j->batch_blocked) {
		if (send_batch(j, true) == 0) {
			j->batch_blocked = false;
			if (j->commit_due)
				send_commit(j);
			else
				rpc_call_resume_receiving(j->call);
		}
	} else if ((events & EPOLLOUT) && j->pending) {
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
	} else if ((events & EPOLLOUT) && j->commit_due)
		send_commit(j);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR))
		(void)read_frames(j);
	else
		(void)job_update_events(j);
}

/* A Write's data for the worker, in frames of at most FSVC_CHUNK. What
 * the socket has no room for is kept (one message at most: receiving
 * pauses until it is sent). */
static void to_worker(struct fsvc_job *j, const uint8_t *data, size_t len)
{
	size_t off = 0;

	if (j->worker_deaf)
		return; /* its answer is on the way */
	do {
		size_t k = MIN(len - off, (size_t)FSVC_CHUNK);
		int r = fsvc_send(j->fd, FSVC_DATA, data + off, k, NULL, 0);
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
	rpc_call_pause_receiving(j->call);
	(void)job_update_events(j);
}

/* A Write's data, taken in place when the message is data alone. */
static void on_write_data(struct rpc_call *call, const uint8_t *data, size_t len, void *userdata)
{
	if (len)
		to_worker(userdata, data, len);
}

static void on_write_message(struct rpc_call *call, const ProtobufCMessage *msg, void *userdata)
{
	const Valet__V1__WriteRequest *m = (const Valet__V1__WriteRequest *)msg;
	struct fsvc_job *j = userdata;

	if (m->part_case != VALET__V1__WRITE_REQUEST__PART_DATA)
		return job_finish(j, RPC_INVALID_ARGUMENT, "Write: only the first message is a header; then data");
	on_write_data(call, m->data.data, m->data.len, j);
}

/* Room for need more bytes in the batch, its sent part dropped. */
static int batch_reserve(struct fsvc_job *j, size_t need)
{
	if (j->batch_off) {
		memmove(j->batch, j->batch + j->batch_off, j->batch_len - j->batch_off);
		j->batch_len -= j->batch_off;
		j->batch_off = 0;
	}
	if (j->batch_len + need <= j->batch_cap)
		return 0;
	size_t cap = MAX(j->batch_len + need, (size_t)FSVC_FRAME_MAX);
	uint8_t *p = realloc(j->batch, cap);
	if (!p)
		return -ENOMEM;
	j->batch = p;
	j->batch_cap = cap;
	return 0;
}

/* A WriteTree entry (encoded) or data for the worker: into the batch,
 * data larger than a packet's room split in several frames; whole
 * packets go at once, the rest at the end of the loop's round. */
static void tree_to_worker(struct fsvc_job *j, enum fsvc_frame_kind kind, const uint8_t *data, size_t len)
{
	const size_t most = FSVC_CHUNK - FSVC_SUB_HEAD;
	size_t off = 0;

	if (j->worker_deaf)
		return; /* its answer is on the way */
	if (batch_reserve(j, len + FSVC_SUB_HEAD * (len / most + 1)) < 0)
		return job_finish(j, RPC_RESOURCE_EXHAUSTED, "out of memory");
	do {
		size_t k = MIN(len - off, most);
		fsvc_batch_put(j->batch, &j->batch_len, kind, data + off, k, NULL, 0);
		off += k;
	} while (off < len);
	if (send_batch(j, false) == -EAGAIN)
		(void)job_update_events(j);
	else if (j->batch_len)
		loop_defer_schedule(j->batch_defer);
}

static void on_tree_data(struct rpc_call *call, const uint8_t *data, size_t len, void *userdata)
{
	if (len)
		tree_to_worker(userdata, FSVC_DATA, data, len);
}

static void on_tree_message(struct rpc_call *call, const ProtobufCMessage *msg, void *userdata)
{
	const Valet__V1__TreeRequest *m = (const Valet__V1__TreeRequest *)msg;
	struct fsvc_job *j = userdata;
	uint8_t buf[1024];
	_cleanup_free_ uint8_t *big = NULL;
	uint8_t *p = buf;
	size_t len;

	switch (m->part_case) {
	case VALET__V1__TREE_REQUEST__PART_DATA:
		return on_tree_data(call, m->data.data, m->data.len, j);
	case VALET__V1__TREE_REQUEST__PART_ENTRY:
		len = valet__v1__tree_entry__get_packed_size(m->entry);
		if (len > FSVC_CHUNK - FSVC_SUB_HEAD)
			return job_finish(j, RPC_INVALID_ARGUMENT, "WriteTree: an entry of %zu bytes is too large",
					  len);
		if (len > sizeof(buf) && !(p = big = malloc(len)))
			return job_finish(j, RPC_RESOURCE_EXHAUSTED, "out of memory");
		valet__v1__tree_entry__pack(m->entry, p);
		tree_to_worker(j, FSVC_ENTRY, p, len);
		return;
	default:
		return job_finish(j, RPC_INVALID_ARGUMENT,
				  "WriteTree: only the first message is a header; then entries and data");
	}
}

static void on_client_end(struct rpc_call *call, void *userdata)
{
	struct fsvc_job *j = userdata;

	/* WriteTree's last entries first; COMMIT follows them (on_io). */
	if (j->pending || j->batch_blocked || send_batch(j, true) == -EAGAIN)
		j->commit_due = true;
	else
		send_commit(j);
	if (j->commit_due)
		(void)job_update_events(j); /* for EPOLLOUT */
}

static void on_writable(struct rpc_call *call, void *userdata)
{
	struct fsvc_job *j = userdata;

	j->send_blocked = false;
	(void)job_update_events(j);
}

static void on_cancel(struct rpc_call *call, void *userdata)
{
	job_free(userdata, false);
}

/* The worker has exited; what it sent before is still in the socket. */
static void on_worker_exit(void *userdata)
{
	struct fsvc_job *j = userdata;

	if (!j->send_blocked)
		(void)job_update_events(j);
}

static void job_start(struct fsvc_job *j)
{
	int r = fsvc_proc_get(j->svc, on_io, on_worker_exit, j, &j->proc);

	if (r < 0)
		return job_finish(j, RPC_RESOURCE_EXHAUSTED, "could not start a worker: %s", strerror(-r));
	j->fd = fsvc_proc_fd(j->proc);
	j->ring_fd = fsvc_proc_ring_fd(j->proc);
	/* An idle or new worker's socket is empty: the frame fits. */
	r = fsvc_send(j->fd, FSVC_JOB, j->job_frame, j->job_frame_len, NULL, 0);
	free(j->job_frame);
	j->job_frame = NULL;
	if (r < 0)
		return job_finish(j, RPC_INTERNAL, "could not reach the worker: %s", strerror(-r));
	if (job_update_events(j) < 0)
		return;
	rpc_call_set_writable(j->call, on_writable, j);
	/* The worker's socket buffers frames too: a quarter of the default
	 * marks keeps the connection busy, and 16 downloads at once hold
	 * 4 MiB here instead of 16. */
	rpc_call_set_send_marks(j->call, FSVC_SEND_HIGH, FSVC_SEND_LOW);
	if (j->method == FSVC_WRITE) {
		rpc_call_set_receiver(j->call, on_write_message, on_client_end, j);
		rpc_call_set_data_receiver(j->call, 2 /* WriteRequest.data */, on_write_data);
	} else if (j->method == FSVC_WRITE_TREE) {
		r = loop_add_defer(j->svc->core->loop, on_batch_due, j, &j->batch_defer);
		if (r < 0)
			return job_finish(j, RPC_RESOURCE_EXHAUSTED, "out of memory");
		rpc_call_set_receiver(j->call, on_tree_message, on_client_end, j);
		rpc_call_set_data_receiver(j->call, 3 /* TreeRequest.data */, on_tree_data);
	}
}

void fsvc_job_start_queued(struct files_service *s)
{
	while (s->queue && s->busy < FSVC_MAX_WORKERS) {
		struct fsvc_job *j = s->queue;
		queue_remove(s, j);
		job_start(j);
	}
}

void fsvc_job_submit(struct files_service *s, struct rpc_call *call, enum fsvc_method m,
		     const ProtobufCMessage *request)
{
	size_t len = protobuf_c_message_get_packed_size(request);
	struct fsvc_job *j;

	/* Paths are at most 4 KiB: a request this large is wrong anyway. */
	if (len + 2 > FSVC_FRAME_MAX)
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "the request of %zu bytes is too large", len);
	j = calloc(1, sizeof(*j));
	if (!j)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	j->job_frame = malloc(len + 1);
	if (!j->job_frame) {
		free(j);
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	j->job_frame[0] = (uint8_t)m;
	protobuf_c_message_pack(request, j->job_frame + 1);
	j->job_frame_len = len + 1;
	j->svc = s;
	j->call = call;
	j->method = m;
	j->fd = -1;
	j->ring_fd = -1;
	LIST_PREPEND(s->jobs, j);
	rpc_call_set_cancel(call, on_cancel, j);
	if (s->busy < FSVC_MAX_WORKERS && !s->queue)
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
		rpc_call_set_cancel(j->call, NULL, NULL);
		job_free(j, false);
	}
}
