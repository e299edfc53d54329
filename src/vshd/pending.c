#include "pending.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "base/macro.h"
#include "base/time-util.h"
#include "loop/loop.h"
#include "vsh/frame.h"
#include "vsh/handshake.h"
#include "vsh.pb-c.h"

struct pending {
	struct pending_set *set;
	int fd;
	struct loop_io *io;
	uint64_t deadline;
	char peer[80];
	size_t len;
	uint8_t data[VSH_FRAME_MAX];
	struct pending *prev, *next;
};

struct pending_set {
	struct loop *loop;
	unsigned max, n;
	uint64_t timeout_usec;
	pending_ready_fn fn;
	void *userdata;
	/* Oldest first: deadlines are in the same order. */
	struct pending *head, *tail;
	struct loop_timer *timer;
};

void vshd_refuse(int fd, const char *why)
{
	/* A courtesy: one attempt that does not wait. */
	(void)vsh_send_setup_response(fd, VM_TOOLS__VSH__CONNECTION_STATUS__FAILED, why, 0, 0);
}

static void rearm(struct pending_set *p)
{
	loop_timer_set(p->timer, p->head ? p->head->deadline : UINT64_MAX);
}

/* Unlinks and frees c; closes its fd unless it was handed over (-1). */
static void drop(struct pending *c)
{
	struct pending_set *p = c->set;
	if (c->prev)
		c->prev->next = c->next;
	else
		p->head = c->next;
	if (c->next)
		c->next->prev = c->prev;
	else
		p->tail = c->prev;
	p->n--;
	loop_io_free(c->io);
	safe_close(c->fd);
	free(c);
}

static void refuse_and_drop(struct pending *c, const char *why)
{
	vshd_refuse(c->fd, why);
	drop(c);
}

static void on_readable(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct pending *c = userdata;
	struct pending_set *p = c->set;
	const uint8_t *msg;
	size_t mlen, flen;

	ssize_t n = recv(fd, c->data + c->len, sizeof(c->data) - c->len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) {
		log_info("connection from %s: closed before a setup request", c->peer);
		drop(c);
		rearm(p);
		return;
	}
	c->len += (size_t)n;
	int r = vsh_frame_next(c->data, c->len, &msg, &mlen, &flen);
	if (r == 0)
		return;
	if (r < 0) {
		log_warning("connection from %s: setup request larger than %d bytes", c->peer, VSH_MAX_MESSAGE);
		refuse_and_drop(c, "setup request larger than 4096 bytes");
		rearm(p);
		return;
	}
	/* Hand it over: the callee owns the fd from here. Out of the epoll
	 * set first: once the fd is closed here while a session process
	 * still holds the socket, a DEL could no longer remove it. */
	loop_io_free(TAKE_PTR(c->io));
	int cfd = TAKE_FD(c->fd);
	p->fn(cfd, c->data, c->len, c->peer, p->userdata);
	drop(c);
	rearm(p);
}

static void on_deadline(struct loop_timer *t, void *userdata)
{
	struct pending_set *p = userdata;
	uint64_t now = now_usec();
	char why[64];

	snprintf(why, sizeof(why), "no setup request within %llu s", (unsigned long long)(p->timeout_usec / 1000000));
	while (p->head && p->head->deadline <= now) {
		log_warning("connection from %s: %s", p->head->peer, why);
		refuse_and_drop(p->head, why);
	}
	rearm(p);
}

int pending_set_new(struct loop *l, unsigned max, uint64_t timeout_usec, pending_ready_fn fn, void *userdata,
		    struct pending_set **ret)
{
	_cleanup_free_ struct pending_set *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	*p = (struct pending_set){
		.loop = l, .max = max, .timeout_usec = timeout_usec, .fn = fn, .userdata = userdata
	};
	int r = loop_add_timer(l, UINT64_MAX, on_deadline, p, &p->timer);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(p);
	return 0;
}

void pending_add(struct pending_set *p, int take_fd, const char *peer)
{
	_cleanup_close_ int fd = take_fd;

	if (p->n >= p->max) {
		/* The oldest has had the longest to speak: it makes room. */
		log_warning("connection from %s: %u connections without a setup request; dropping the oldest",
			    p->head->peer, p->n);
		refuse_and_drop(p->head, "too many connections waiting to set up; this one was the oldest");
	}
	_cleanup_free_ struct pending *c = calloc(1, sizeof(*c));
	if (!c) {
		log_warning("refused connection from %s: out of memory", peer);
		vshd_refuse(fd, "out of resources");
		return;
	}
	*c = (struct pending){ .set = p, .fd = -1, .deadline = now_usec() + p->timeout_usec };
	snprintf(c->peer, sizeof(c->peer), "%s", peer);
	int r = loop_add_io(p->loop, fd, EPOLLIN, on_readable, c, &c->io);
	if (r < 0) {
		log_warning_errno(r, "refused connection from %s: cannot watch it", peer);
		vshd_refuse(fd, "out of resources");
		return;
	}
	c->fd = TAKE_FD(fd);
	c->prev = p->tail;
	if (p->tail)
		p->tail->next = c;
	else
		p->head = c;
	p->tail = TAKE_PTR(c); /* the set's now */
	p->n++;
	rearm(p);
}

unsigned pending_count(const struct pending_set *p)
{
	return p->n;
}

void pending_set_free(struct pending_set *p)
{
	if (!p)
		return;
	while (p->head)
		drop(p->head);
	loop_timer_free(p->timer);
	free(p);
}

void pending_set_free_after_fork(struct pending_set *p)
{
	if (!p)
		return;
	for (struct pending *c = p->head, *next; c; c = next) {
		next = c->next;
		safe_close(c->fd);
		free(c);
	}
	free(p);
}
