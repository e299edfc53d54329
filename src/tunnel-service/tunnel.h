/* One Tunnel.Connect call: the connect in the background, then the relay
 * between the call and the socket (docs/tunnel.md, "The relay"). */
#pragma once

#include "rpc/server-session.h"
#include "service.h"

/* Bytes read from the socket per data message: large enough that the
 * per-message costs vanish next to the copies (docs/tunnel.md has the
 * measurements), and a message's allocation (outq.c: the chunk, its
 * headers) under maitred's fixed mmap threshold of 128 KiB
 * (agent/malloc-tuning.c): above it each message was a fresh mapping,
 * its pages faulted in and zeroed, 68 000 page faults per GiB. */
#define TUNNEL_CHUNK (127 * 1024)
/* A target that does not answer within this is UNAVAILABLE (the call's
 * own deadline, when earlier, ends it first). */
#define TUNNEL_CONNECT_TIMEOUT_USEC (30 * 1000000ull)

/* The call's first message (a TunnelRequest): checks the target and
 * starts connecting; the call is answered in any case, now or later. */
void tunnel_start(struct tunnel_service *s, struct rpc_call *call, const ProtobufCMessage *request);
/* Ends every tunnel: with UNAVAILABLE when graceful (maitred stopping),
 * silently (the call is not touched) at the very end. */
void tunnel_end_all(struct tunnel_service *s, bool graceful);
