/* Listening sockets on the loop: listens on parsed addresses, accepts
 * (a bounded batch per wake-up), applies the peer policy, and hands each
 * accepted connection with its peer's identity to a callback. The unix
 * sockets it created are unlinked when it stops listening. Used by the
 * gRPC server and by vshd. */
#pragma once

#include "base/macro.h"
#include "net/sock.h"

struct loop;
struct net_listener;

#define NET_LISTENER_MAX 8

struct net_listener_ops {
	/* A connection the policy allows; fd is the callee's. */
	void (*accepted)(int fd, const struct peer *peer, void *userdata);
	/* Optional: the policy said no (the fd is closed already). */
	void (*refused)(const struct peer *peer, void *userdata);
	/* Optional: accept() failed with error (-errno), not for EAGAIN. */
	void (*failed)(int error, void *userdata);
};

/* policy is copied; ops must outlive the listener. */
int net_listener_new(struct loop *l, const struct peer_policy *policy, int backlog,
		     const struct net_listener_ops *ops, void *userdata, struct net_listener **ret);
/* Listens on a and watches it. -E2BIG past NET_LISTENER_MAX addresses;
 * -errno from sock_listen() or the loop. */
int net_listener_add(struct net_listener *li, const struct addr *a);
unsigned net_listener_count(const struct net_listener *li);
/* The i-th listening socket, in the order added (getsockname() after
 * listening on port 0), or -1. */
int net_listener_fd(const struct net_listener *li, unsigned i);
/* Stops listening: closes every socket and unlinks the unix sockets it
 * created. Can be called more than once; net_listener_add() works again
 * afterwards. */
void net_listener_close(struct net_listener *li);
/* net_listener_close(), then frees. Accepts NULL. */
void net_listener_free(struct net_listener *li);
DEFINE_FREEP(struct net_listener, net_listener_free)
/* In a forked child: closes the inherited sockets and frees, without
 * touching the loop (its epoll set is the parent's too) and without
 * unlinking anything (the parent still listens there). */
void net_listener_free_after_fork(struct net_listener *li);
