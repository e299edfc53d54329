/* What the allocation-failure sweeps over maitred's services share
 * (test-failmalloc-{files,process,tunnel}-service.c): the real rpc
 * server in the test's loop, and running that loop until a call has
 * ended, with a guard against a hang. The test's own allocations here are
 * held (failmalloc_hold): they are not under test. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "agent/agent.h"
#include "loop/loop.h"
#include "rpc/server.h"

/* An rpc server for the services registered in a, listening on spec
 * ("unix:PATH"): 0, or -errno with nothing left. */
int fm_serve(struct loop *l, struct agent *a, const char *spec, struct rpc_server **ret);

/* Runs l until *done is set (the call's end calls loop_exit) or
 * guard_usec have passed; CHECKs that it did not hang. */
void fm_run_until(struct loop *l, const int *done, uint64_t guard_usec);
