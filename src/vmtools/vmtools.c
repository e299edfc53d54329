/* The vm_tools.Maitred method tables, one per handler family (vmtools.h),
 * and their registration with the agent. */
#include <errno.h>

#include "agent/agent.h"
#include "agent/worker.h"
#include "common.pb-c.h"
#include "guest.pb-c.h"
#include "vmtools.h"

/* Shutdown: the agent's lifecycle (userdata: the agent). */
static const struct rpc_method lifecycle_methods[] = {
	{ "/vm_tools.Maitred/Shutdown", &vm_tools__empty_message__descriptor, maitred_shutdown },
};

/* userdata: struct vmtools_net. */
static const struct rpc_method net_methods[] = {
	{ "/vm_tools.Maitred/ConfigureNetwork", &vm_tools__network_config_request__descriptor,
	  maitred_configure_network },
	{ "/vm_tools.Maitred/SetResolvConfig", &vm_tools__set_resolv_config_request__descriptor,
	  maitred_set_resolv_config },
	{ "/vm_tools.Maitred/OnHostNetworkChanged", &vm_tools__empty_message__descriptor,
	  maitred_on_host_network_changed },
	{ "/vm_tools.Maitred/ResetIPv6", &vm_tools__empty_message__descriptor, maitred_on_host_network_changed },
};

/* userdata: struct vmtools_launch. */
static const struct rpc_method launch_methods[] = {
	{ "/vm_tools.Maitred/LaunchProcess", &vm_tools__launch_process_request__descriptor, maitred_launch_process },
};

/* userdata: struct vmtools_fs. */
static const struct rpc_method fs_methods[] = {
	{ "/vm_tools.Maitred/GetAvailableSpace", &vm_tools__empty_message__descriptor, maitred_get_available_space },
	{ "/vm_tools.Maitred/ResizeFilesystem", &vm_tools__resize_filesystem_request__descriptor,
	  maitred_resize_filesystem },
	{ "/vm_tools.Maitred/GetResizeStatus", &vm_tools__empty_message__descriptor, maitred_get_resize_status },
	{ "/vm_tools.Maitred/GetResizeBounds", &vm_tools__empty_message__descriptor, maitred_get_resize_bounds },
};

/* userdata: struct vmtools_storage. */
static const struct rpc_method storage_methods[] = {
	{ "/vm_tools.Maitred/Mount", &vm_tools__mount_request__descriptor, maitred_mount },
	{ "/vm_tools.Maitred/PrepareToSuspend", &vm_tools__empty_message__descriptor, maitred_prepare_to_suspend },
};

/* Stateless, or the agent core's alone (userdata: struct maitred). */
static const struct rpc_method core_methods[] = {
	/* Added upstream after 2017. */
	{ "/vm_tools.Maitred/SetTime", &vm_tools__set_time_request__descriptor, maitred_set_time },
	{ "/vm_tools.Maitred/SetTimezone", &vm_tools__set_timezone_request__descriptor, maitred_set_timezone },
	{ "/vm_tools.Maitred/GetKernelVersion", &vm_tools__empty_message__descriptor, maitred_get_kernel_version },
	/* ChromeOS's container stack: refused with a clear message. Requests
	 * decode as EmptyMessage (any valid protobuf does). */
	{ "/vm_tools.Maitred/StartTermina", &vm_tools__empty_message__descriptor, maitred_refuse_container_method },
	{ "/vm_tools.Maitred/ConfigureContainerGuest", &vm_tools__empty_message__descriptor,
	  maitred_refuse_container_method },
	{ "/vm_tools.Maitred/Mount9P", &vm_tools__mount9_prequest__descriptor, maitred_refuse_container_method },
	{ "/vm_tools.Maitred/UpdateStorageBalloon", &vm_tools__empty_message__descriptor,
	  maitred_refuse_container_method },
};

int vmtools_register(struct agent *a, struct vmtools *v)
{
	*v = (struct vmtools){
		.net = { .core = &a->core },
		.launch = { .core = &a->core },
		.fs = { .core = &a->core, .resize = { .fd = -1 } },
		.storage = { .core = &a->core },
		.tables = {
			{ lifecycle_methods, ARRAY_SIZE(lifecycle_methods), a },
			{ net_methods, ARRAY_SIZE(net_methods), &v->net },
			{ launch_methods, ARRAY_SIZE(launch_methods), &v->launch },
			{ fs_methods, ARRAY_SIZE(fs_methods), &v->fs },
			{ storage_methods, ARRAY_SIZE(storage_methods), &v->storage },
			{ core_methods, ARRAY_SIZE(core_methods), &a->core },
		},
	};
	for (size_t i = 0; i < ARRAY_SIZE(v->tables); i++) {
		int r = maitred_add_service(a, &v->tables[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

void vmtools_free(struct vmtools *v)
{
	maitred_launch_waits_free(&v->launch);
	maitred_mkfs_jobs_free(&v->storage);
	maitred_suspend_free(&v->storage);
	/* A resize still running: the child goes on, reaped as an orphan. */
	worker_free(TAKE_PTR(v->fs.resize.worker));
	v->fs.resize.fd = safe_close(v->fs.resize.fd);
}
