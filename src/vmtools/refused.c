/* The methods of ChromeOS's container stack (LXD, the Termina image, a 9P
 * server on the host, the storage balloon): a general guest agent has none
 * of that, so they are refused clearly instead of with a bare
 * UNIMPLEMENTED from the method lookup. */
#include <string.h>

#include "base/log.h"
#include "vmtools.h"

void maitred_refuse_container_method(struct rpc_call *call, const ProtobufCMessage *request,
				     void *userdata)
{
	const char *method = rpc_call_method(call);
	const char *name = strrchr(method, '/');

	name = name ? name + 1 : method;
	log_info("%s from %s: refused (ChromeOS container stack)", name, rpc_call_peer(call));
	rpc_call_fail(call, RPC_UNIMPLEMENTED,
		      "%s belongs to ChromeOS's container stack (Termina, LXD, 9P, storage balloon); "
		      "valet does not implement it",
		      name);
}
