/* Making a connection without blocking the event loop: the socket's
 * connect and, for hvsock addresses, the VMM's CONNECT handshake, within a
 * deadline. Used by the one-call gRPC client (maitctl, VmReady). */
#pragma once

#include <stdint.h>

#include "base/macro.h"
#include "loop/loop.h"
#include "net/addr.h"

struct connector;

/* fd >= 0: connected (and handed over, non-blocking, close-on-exec);
 * otherwise -errno (-ETIMEDOUT at the deadline). Either way the connector
 * is freed right after this returns. */
typedef void (*connector_done_fn)(int fd, void *userdata);

/* deadline: absolute, now_usec() clock; USEC_INFINITY for none (the hvsock
 * handshake has its own bound anyway). done is always called from the
 * loop, never from here; an error returned here means it never will be. */
int connector_start(struct loop *l, const struct addr *a, uint64_t deadline, connector_done_fn done, void *userdata,
		    struct connector **ret);
/* Gives up; done is not called. Accepts NULL. */
void connector_free(struct connector *c);
DEFINE_FREEP(struct connector, connector_free)
