/* valet.v1.Snapshot's method table and its registration. */
#include "service.h"

#include <stdlib.h>

#include "snapshot.pb-c.h"

static const struct rpc_method methods[] = {
	{ "/valet.v1.Snapshot/Freeze", &valet__v1__freeze_request__descriptor, snap_freeze },
	{ "/valet.v1.Snapshot/Thaw", &google__protobuf__empty__descriptor, snap_thaw },
	{ "/valet.v1.Snapshot/Restored", &valet__v1__restored_request__descriptor, snap_restored },
};

/* The orderly end (a stop, PID 1's power-off) must not find the disks
 * frozen: unmounting and the last sync would wait for ever. */
static void on_stop(void *userdata)
{
	snap_thaw_now(userdata, true);
}

int snapshot_service_register(struct agent *a, struct snapshot_service *s)
{
	*s = (struct snapshot_service){
		.core = &a->core,
		.table = { methods, ARRAY_SIZE(methods), s },
		.stop_hook = { .fn = on_stop, .userdata = s },
	};
	snap_entropy_ops_kernel(&s->entropy);
	int r = maitred_add_service(a, &s->table);
	if (r < 0)
		return r;
	maitred_add_stop_hook(a, &s->stop_hook);
	return 0;
}

void snapshot_service_free(struct snapshot_service *s)
{
	snap_freeze_free(s);
	free(s->generation);
	s->generation = NULL;
}
