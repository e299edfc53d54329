/* A Stat answered in maitred's loop when the kernel's caches hold the
 * whole answer (docs/files.md, "Stat in maitred's loop"): no worker, no
 * process wake-up, and still never a wait for a disk. */
#pragma once

#include <stdbool.h>

#include "files.pb-c.h"
#include "rpc/server-session.h"

/* True when the call was answered (its FileInfo or its error, exactly as
 * a worker would have answered); false when a worker must: a `user` to
 * act as, or anything the caches do not hold. */
bool fsvc_stat_here(struct rpc_call *call, const Valet__V1__StatRequest *req);
