/* maitctl forward: host connections to a guest port or unix socket, each
 * one valet.v1.Tunnel/Connect stream on one HTTP/2 connection to maitred
 * (rpc/channel.h). cmd-forward.c has the command (specs, listeners,
 * signals, the end); cmd-forward-conn.c one accepted connection's relay.
 * docs/tunnel.md, "maitctl forward". */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "loop/loop.h"
#include "maitctl.h"
#include "net/listener.h"
#include "rpc/channel.h"

/* Bytes read from a local connection per data message, about what
 * maitred reads from the guest's side (TUNNEL_CHUNK): maitred raises the
 * window of a stream whose message is larger than it (docs/architecture.md,
 * "How a streaming call flows") and takes a message of data alone in
 * place. */
#define FWD_CHUNK (128 * 1024)
#define FWD_MAX_SPECS NET_LISTENER_MAX

struct fwd;
struct fwd_conn;

/* One LOCAL=GUEST: where it listens and what each connection reaches. */
struct fwd_spec {
	struct fwd *f;
	struct net_listener *listener;
	char local[128];      /* as printed: "tcp:127.0.0.1:8080" */
	char guest_host[64];  /* TunnelTarget.host, "" for the default */
	uint32_t guest_port;  /* or 0 */
	char guest_path[108]; /* TunnelTarget.unix_path, or "" */
	char guest[192];      /* as printed: "8080", "/run/app.sock" */
};

struct fwd {
	struct maitctl *ctl;
	struct loop *loop;
	struct rpc_channel *ch;
	struct fwd_spec specs[FWD_MAX_SPECS];
	unsigned n_specs;
	struct fwd_conn *conns;
	unsigned n_conns;
	uint8_t rbuf[FWD_CHUNK]; /* what a local read lands in */
	int exit_code;
};

/* An accepted connection (fd handed over) becomes a Tunnel stream. */
void fwd_conn_start(struct fwd_spec *sp, int fd);
/* Closes every connection at once (their streams reset). */
void fwd_conn_close_all(struct fwd *f);
