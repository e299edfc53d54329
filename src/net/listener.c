#include "listener.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/un.h>
#include <unistd.h>

#include "loop/loop.h"

/* Accepts per wake-up, so that one busy socket cannot starve the loop. */
#define ACCEPT_BATCH 32

struct listening {
	int fd;
	struct loop_io *io;
	char unix_path[sizeof(((struct sockaddr_un *)0)->sun_path)]; /* "" unless we created it */
};

struct net_listener {
	struct loop *loop;
	struct peer_policy policy;
	int backlog;
	const struct net_listener_ops *ops;
	void *userdata;
	struct listening socks[NET_LISTENER_MAX];
	unsigned n_socks;
};

int net_listener_new(struct loop *l, const struct peer_policy *policy, int backlog,
		     const struct net_listener_ops *ops, void *userdata, struct net_listener **ret)
{
	struct net_listener *li = calloc(1, sizeof(*li));

	if (!li)
		return -ENOMEM;
	*li = (struct net_listener){
		.loop = l, .policy = *policy, .backlog = backlog, .ops = ops, .userdata = userdata
	};
	*ret = li;
	return 0;
}

static void on_listening(struct loop_io *io, int lfd, uint32_t events, void *userdata)
{
	struct net_listener *li = userdata;

	for (int i = 0; i < ACCEPT_BATCH; i++) {
		struct peer peer;
		int fd, r = sock_accept(lfd, &fd, &peer);
		if (r == -EAGAIN || r == -EINTR)
			return;
		if (r < 0) {
			if (li->ops->failed)
				li->ops->failed(r, li->userdata);
			return;
		}
		if (!peer_policy_check(&li->policy, &peer)) {
			safe_close(fd);
			if (li->ops->refused)
				li->ops->refused(&peer, li->userdata);
			continue;
		}
		li->ops->accepted(fd, &peer, li->userdata);
	}
}

int net_listener_add(struct net_listener *li, const struct addr *a)
{
	struct listening *s;
	_cleanup_close_ int fd = -1;
	int r;

	if (li->n_socks == NET_LISTENER_MAX)
		return -E2BIG;
	r = sock_listen(a, li->backlog, &fd);
	if (r < 0)
		return r;
	s = &li->socks[li->n_socks];
	*s = (struct listening){ .fd = -1 };
	r = loop_add_io(li->loop, fd, EPOLLIN, on_listening, li, &s->io);
	if (r < 0) {
		if (addr_unix_path(a))
			(void)unlink(addr_unix_path(a));
		return r;
	}
	if (addr_unix_path(a))
		snprintf(s->unix_path, sizeof(s->unix_path), "%s", addr_unix_path(a));
	s->fd = TAKE_FD(fd);
	li->n_socks++;
	return 0;
}

unsigned net_listener_count(const struct net_listener *li)
{
	return li->n_socks;
}

int net_listener_fd(const struct net_listener *li, unsigned i)
{
	return i < li->n_socks ? li->socks[i].fd : -1;
}

void net_listener_close(struct net_listener *li)
{
	for (unsigned i = 0; i < li->n_socks; i++) {
		struct listening *s = &li->socks[i];
		loop_io_free(s->io);
		safe_close(s->fd);
		if (s->unix_path[0])
			(void)unlink(s->unix_path);
	}
	li->n_socks = 0;
}

void net_listener_free(struct net_listener *li)
{
	if (!li)
		return;
	net_listener_close(li);
	free(li);
}

void net_listener_free_after_fork(struct net_listener *li)
{
	if (!li)
		return;
	for (unsigned i = 0; i < li->n_socks; i++)
		safe_close(li->socks[i].fd);
	free(li);
}
