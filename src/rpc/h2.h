/* rpc-internal: small pieces the client and server sessions (and the
 * tests' nghttp2 peer) share about nghttp2. Not part of the rpc API. */
#pragma once

#include <nghttp2/nghttp2.h>
#include <stdbool.h>
#include <string.h>

/* An nghttp2 header field from two NUL-terminated strings; nghttp2 copies
 * both when the headers are submitted. */
#define RPC_NV(n, v)                                                                       \
	{                                                                                  \
		(uint8_t *)(n), (uint8_t *)(v), strlen(n), strlen(v), NGHTTP2_NV_FLAG_NONE \
	}

/* A session is alive while nghttp2 still wants to read or to write. */
static inline bool rpc_h2_alive(nghttp2_session *h2)
{
	return nghttp2_session_want_read(h2) || nghttp2_session_want_write(h2);
}
