#include "sock.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "base/macro.h"
#include "base/time-util.h"
#include "net/hvsock.h"

void peer_policy_init(struct peer_policy *p)
{
	*p = (struct peer_policy){ .cids = { VMADDR_CID_HOST }, .n_cids = 1, .self_uid = geteuid() };
}

int peer_policy_allow_cid(struct peer_policy *p, uint32_t cid)
{
	for (unsigned i = 0; i < p->n_cids; i++)
		if (p->cids[i] == cid)
			return 0;
	if (p->n_cids == PEER_POLICY_MAX_CIDS)
		return -E2BIG;
	p->cids[p->n_cids++] = cid;
	return 0;
}

bool peer_policy_check(const struct peer_policy *p, const struct peer *peer)
{
	switch (peer->family) {
	case ADDR_VSOCK:
		for (unsigned i = 0; i < p->n_cids; i++)
			if (p->cids[i] == peer->cid || p->cids[i] == VMADDR_CID_ANY)
				return true;
		return false;
	case ADDR_UNIX: return peer->uid == 0 || peer->uid == p->self_uid;
	case ADDR_TCP: return true;
	case ADDR_HVSOCK: return false; /* never a peer's family */
	}
	return false;
}

/* gRPC answers are small writes that must leave at once: with Nagle, a
 * reply written while an earlier one is unacknowledged waits for the peer's
 * delayed ACK (~40 ms). Best effort: a socket without it still works. */
static void tcp_nodelay(int fd)
{
	int one = 1;
	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int unix_remove_stale(const char *path)
{
	struct stat st;

	if (lstat(path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	return unlink(path) < 0 ? -errno : 0;
}

/* A unix socket's file appears at bind(), before listen(): a client that
 * waits for the file could connect in between and be refused. So the
 * socket is bound to a temporary name next to it, listens, and is renamed
 * into place (bound directly when that name would not fit). */
static int unix_listen(int fd, const char *path, int backlog)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n, r;

	r = unix_remove_stale(path);
	if (r < 0)
		return r;
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s.%d.tmp", path, (int)getpid());
	bool staged = n > 0 && (size_t)n < sizeof(sa.sun_path);
	if (staged && unix_remove_stale(sa.sun_path) < 0)
		staged = false;
	if (!staged)
		snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	/* The mode comes from the umask at bind time; no window in which
	 * others could connect. */
	mode_t old = umask(0177);
	r = bind(fd, (const struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sa.sun_path) + 1));
	umask(old);
	if (r < 0)
		return -errno;
	if (listen(fd, backlog) < 0 || (staged && rename(sa.sun_path, path) < 0)) {
		r = -errno;
		(void)unlink(sa.sun_path);
		return r;
	}
	return 0;
}

int sock_listen(const struct addr *a, int backlog, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	int r;

	if (a->family == ADDR_HVSOCK)
		return -EAFNOSUPPORT; /* the VMM listens there, not us */
	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (a->family == ADDR_TCP) {
		int one = 1;
		(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		tcp_nodelay(fd); /* inherited by accepted sockets */
	}
	if (a->family == ADDR_UNIX)
		r = unix_listen(fd, addr_unix_path(a), backlog);
	else if (bind(fd, (const struct sockaddr *)&a->sa, a->sa_len) < 0 || listen(fd, backlog) < 0)
		r = -errno;
	else
		r = 0;
	if (r < 0)
		return r;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

static void peer_describe(struct peer *p, const struct sockaddr_storage *ss)
{
	char host[INET6_ADDRSTRLEN] = "?";

	switch (p->family) {
	case ADDR_VSOCK:
		snprintf(p->desc, sizeof(p->desc), "vsock cid %u port %u", p->cid,
			 ((const struct sockaddr_vm *)ss)->svm_port);
		break;
	case ADDR_UNIX: snprintf(p->desc, sizeof(p->desc), "unix pid %d uid %u", (int)p->pid, (unsigned)p->uid); break;
	case ADDR_TCP:
		if (ss->ss_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, host, sizeof(host));
		else
			inet_ntop(AF_INET, &((const struct sockaddr_in *)ss)->sin_addr, host, sizeof(host));
		snprintf(p->desc, sizeof(p->desc), "tcp %s", host);
		break;
	case ADDR_HVSOCK: break;
	}
}

int sock_accept(int listen_fd, int *ret_fd, struct peer *ret_peer)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len = sizeof(ss);
	struct peer peer = { 0 };
	_cleanup_close_ int fd = -1;

	fd = accept4(listen_fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
	if (fd < 0)
		return -errno;
	switch (ss.ss_family) {
	case AF_VSOCK:
		peer.family = ADDR_VSOCK;
		peer.cid = ((struct sockaddr_vm *)&ss)->svm_cid;
		break;
	case AF_UNIX: {
		struct ucred cred;
		socklen_t clen = sizeof(cred);
		peer.family = ADDR_UNIX;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &clen) < 0)
			return -errno;
		peer.pid = cred.pid;
		peer.uid = cred.uid;
		peer.gid = cred.gid;
		break;
	}
	default:
		peer.family = ADDR_TCP;
		tcp_nodelay(fd); /* Linux inherits it from the listener; others may not */
		break;
	}
	peer_describe(&peer, &ss);
	*ret_peer = peer;
	*ret_fd = TAKE_FD(fd);
	return 0;
}

int sock_connect(const struct addr *a, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	int r = 0;

	fd = socket(a->sa.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (a->family == ADDR_TCP)
		tcp_nodelay(fd);
	if (connect(fd, (const struct sockaddr *)&a->sa, a->sa_len) < 0) {
		if (errno != EINPROGRESS)
			return -errno;
		r = -EINPROGRESS;
	}
	*ret_fd = TAKE_FD(fd);
	return r;
}

int sock_connect_finish(int fd)
{
	int err = 0;
	socklen_t len = sizeof(err);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
		return -errno;
	return -err;
}

/* Waits for events on fd until the deadline: 0 when they came. */
static int wait_for(int fd, short events, uint64_t deadline)
{
	for (;;) {
		uint64_t now = now_usec();
		if (now >= deadline)
			return -ETIMEDOUT;
		struct pollfd p = { .fd = fd, .events = events };
		uint64_t ms = (deadline - now + 999) / 1000;
		int n = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
		if (n > 0)
			return 0;
		if (n < 0 && errno != EINTR)
			return -errno;
	}
}

int sock_connect_wait(const struct addr *a, uint64_t timeout_usec, int *ret_fd)
{
	_cleanup_close_ int fd = -1;
	uint64_t deadline = timeout_usec ? now_usec() + timeout_usec : USEC_INFINITY;
	int r;

	r = sock_connect(a, &fd);
	if (r == -EINPROGRESS) {
		r = wait_for(fd, POLLOUT, deadline);
		if (r >= 0)
			r = sock_connect_finish(fd);
	}
	if (r < 0)
		return r;
	if (a->family == ADDR_HVSOCK) {
		struct hvsock_reply reply = { 0 };
		uint32_t host_port;

		r = hvsock_send_connect(fd, a->hvsock_port);
		if (r < 0)
			return r;
		deadline = MIN(deadline, now_usec() + HVSOCK_HANDSHAKE_USEC);
		while ((r = hvsock_read_reply(fd, &reply, &host_port)) == -EAGAIN) {
			r = wait_for(fd, POLLIN, deadline);
			if (r < 0)
				return r;
		}
		if (r < 0)
			return r;
	}
	*ret_fd = TAKE_FD(fd);
	return 0;
}

const char *sock_connect_strerror(const struct addr *a, int r)
{
	return a->family == ADDR_HVSOCK ? hvsock_strerror(r) : strerror(-r);
}
