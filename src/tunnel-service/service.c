/* valet.v1.Tunnel's method table and registration. */
#include "service.h"

#include <stdlib.h>

#include "tunnel.h"
#include "tunnel.pb-c.h"

static void h_connect(struct rpc_call *call, const ProtobufCMessage *req, void *ud)
{
	tunnel_start(ud, call, req);
}

static const struct rpc_method methods[] = {
	{ "/valet.v1.Tunnel/Connect", &valet__v1__tunnel_request__descriptor, h_connect, .client_streaming = true,
	  .server_streaming = true },
};

/* A tunnel may stay open for hours: the orderly stop would wait for it
 * for ever, so it ends the tunnels (their calls get UNAVAILABLE). */
static void on_stop(void *userdata)
{
	tunnel_end_all(userdata, true);
}

int tunnel_service_register(struct agent *a, struct tunnel_service *s)
{
	int r;

	*s = (struct tunnel_service){
		.core = &a->core,
		.table = { methods, ARRAY_SIZE(methods), s },
		.stop_hook = { on_stop, s },
	};
	r = maitred_add_service(a, &s->table);
	if (r < 0)
		return r;
	maitred_add_stop_hook(a, &s->stop_hook);
	return 0;
}

void tunnel_service_free(struct tunnel_service *s)
{
	tunnel_end_all(s, false);
	free(s->rbuf);
	s->rbuf = NULL;
}
