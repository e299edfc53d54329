/* The one refusal of every call that would write to a disk while
 * valet.v1.Snapshot has the file systems frozen (maitred.h). */
#include <string.h>

#include "base/log.h"
#include "maitred.h"
#include "rpc/server-session.h"

bool maitred_refuse_if_frozen(const struct maitred *m, struct rpc_call *call)
{
	const char *method = rpc_call_method(call);
	const char *name = strrchr(method, '/');

	if (!m->frozen)
		return false;
	log_info("%s from %s: FAILED_PRECONDITION: %s", name ? name + 1 : method, rpc_call_peer(call),
		 MAITRED_FROZEN_MESSAGE);
	rpc_call_fail(call, RPC_FAILED_PRECONDITION, MAITRED_FROZEN_MESSAGE);
	return true;
}
