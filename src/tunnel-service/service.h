/* valet.v1.Tunnel in maitred (shared/spec valet-v1.md; docs/tunnel.md):
 * Connect, one TCP or unix connection inside the guest per call, relayed
 * both ways in maitred's loop with HTTP/2 flow control as the
 * back-pressure. Nothing is allocated until the first call. */
#pragma once

#include "agent/agent.h"

struct tunnel;

struct tunnel_service {
	struct maitred *core;
	struct rpc_service table;
	struct maitred_stop_hook stop_hook;
	struct tunnel *tunnels; /* every call in progress */
	unsigned n_tunnels;
	/* What a socket read lands in, shared by every tunnel (one loop,
	 * one read at a time): allocated with the first tunnel, freed with
	 * the last. */
	uint8_t *rbuf;
};

int tunnel_service_register(struct agent *a, struct tunnel_service *s);
/* Once the loop has ended: closes the tunnels left. */
void tunnel_service_free(struct tunnel_service *s);
