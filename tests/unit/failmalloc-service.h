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

/* How a call ended. First in a test's own record of a call, so that
 * fm_on_done serves as its rpc_stream_call_ops.on_done. */
struct fm_end {
	struct loop *loop; /* the loop fm_on_done leaves */
	int done, code;
};

/* Records the end (printed with FM_DEBUG set when not OK) and leaves
 * the loop. userdata: the record that starts with struct fm_end. */
void fm_on_done(int code, const char *message, void *userdata);

/* Runs end->loop until the call has ended or guard_usec have passed;
 * CHECKs that it did not hang. */
void fm_run_until(struct fm_end *end, uint64_t guard_usec);
