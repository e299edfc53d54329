#include "connector.h"

#include <errno.h>
#include <stdlib.h>

#include "base/macro.h"
#include "base/time-util.h"
#include "net/hvsock.h"
#include "net/sock.h"

struct connector {
	int fd;
	struct loop_io *io;
	struct loop_timer *timer;
	uint64_t deadline;
	uint32_t hvsock_port;
	bool hvsock;
	bool handshaking; /* CONNECT sent, waiting for the VMM's answer */
	struct hvsock_reply reply;
	connector_done_fn done;
	void *userdata;
};

void connector_free(struct connector *c)
{
	if (!c)
		return;
	loop_io_free(c->io);
	loop_timer_free(c->timer);
	safe_close(c->fd);
	free(c);
}

static void finish(struct connector *c, int r)
{
	int fd = r >= 0 ? TAKE_FD(c->fd) : r;
	connector_done_fn done = c->done;
	void *userdata = c->userdata;

	connector_free(c);
	done(fd, userdata);
}

static void on_deadline(struct loop_timer *t, void *userdata)
{
	finish(userdata, -ETIMEDOUT);
}

static void on_io(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct connector *c = userdata;
	uint32_t host_port;
	int r;

	if (!c->handshaking) {
		r = sock_connect_finish(fd);
		if (r < 0 || !c->hvsock)
			return finish(c, r);
		r = hvsock_send_connect(fd, c->hvsock_port);
		if (r < 0)
			return finish(c, r);
		c->handshaking = true;
		r = loop_io_set_events(c->io, EPOLLIN);
		if (r < 0)
			return finish(c, r);
		/* The VMM's answer has a bound of its own. */
		uint64_t bound = now_usec() + HVSOCK_HANDSHAKE_USEC;
		if (bound < c->deadline)
			loop_timer_set(c->timer, bound);
		return;
	}
	r = hvsock_read_reply(fd, &c->reply, &host_port);
	if (r != -EAGAIN)
		finish(c, r);
}

int connector_start(struct loop *l, const struct addr *a, uint64_t deadline, connector_done_fn done, void *userdata,
		    struct connector **ret)
{
	_cleanup_(connector_freep) struct connector *c = calloc(1, sizeof(*c));
	int r;

	if (!c)
		return -ENOMEM;
	*c = (struct connector){ .fd = -1,
				 .deadline = deadline,
				 .hvsock = a->family == ADDR_HVSOCK,
				 .hvsock_port = a->hvsock_port,
				 .done = done,
				 .userdata = userdata };
	r = sock_connect(a, &c->fd);
	/* Connected or not yet, the socket becomes writable when it is
	 * settled: one path for both, and done is never called from here. */
	if (r < 0 && r != -EINPROGRESS)
		return r;
	r = loop_add_io(l, c->fd, EPOLLOUT, on_io, c, &c->io);
	if (r < 0)
		return r;
	r = loop_add_timer(l, deadline, on_deadline, c, &c->timer);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(c);
	return 0;
}
