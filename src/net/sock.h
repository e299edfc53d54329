/* Listening, accepting and connecting on the addresses of addr.h, and the
 * identity of the peer at the other end. Every socket is non-blocking and
 * close-on-exec. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "addr.h"

struct peer {
	enum addr_family family;
	uint32_t cid; /* vsock */
	pid_t pid;    /* unix, from SO_PEERCRED */
	uid_t uid;
	gid_t gid;
	char desc[80]; /* "vsock cid 2 port 1025", "unix pid 12 uid 0" */
};

#define PEER_POLICY_MAX_CIDS 16

/* Who may connect: vsock peers by CID (VMADDR_CID_ANY: any), unix peers
 * root or the same uid,
 * TCP peers always (TCP is an opt-in transport for VMs without vsock). */
struct peer_policy {
	uint32_t cids[PEER_POLICY_MAX_CIDS];
	unsigned n_cids;
	uid_t self_uid;
};

/* The default: the host (CID 2) only, and our own uid or root. */
void peer_policy_init(struct peer_policy *p);
int peer_policy_allow_cid(struct peer_policy *p, uint32_t cid);
bool peer_policy_check(const struct peer_policy *p, const struct peer *peer);

/* Unix sockets are created mode 0600, replacing a stale socket file. */
int sock_listen(const struct addr *a, int backlog, int *ret_fd);
/* -EAGAIN when nothing is pending. */
int sock_accept(int listen_fd, int *ret_fd, struct peer *ret_peer);
/* Starts a connection; returns 0 when connected, -EINPROGRESS when the
 * caller must wait for writability and then call sock_connect_finish(). */
int sock_connect(const struct addr *a, int *ret_fd);
int sock_connect_finish(int fd);
/* Connects, blocking up to timeout_usec (0: no limit), including the VMM's
 * handshake for hvsock addresses (which has its own bound too). */
int sock_connect_wait(const struct addr *a, uint64_t timeout_usec, int *ret_fd);
/* Words for a connect error: the VMM's answer for hvsock addresses. */
const char *sock_connect_strerror(const struct addr *a, int r);
