/* valet.v1.Files' method table: each handler checks the shape of the
 * call's first message and hands the call to a job (job.h). */
#include "service.h"

#include "files.pb-c.h"
#include "files/names-watch.h"
#include "job.h"
#include "pool.h"
#include "stat-here.h"

/* The calls that write go to their worker only while the file systems
 * are not frozen: a worker would wait for the thaw, the call with it. */
static bool refused(void *ud, struct rpc_call *call)
{
	return maitred_refuse_if_frozen(((struct files_service *)ud)->core, call);
}

/* Never refused while frozen: it writes nothing, here or in a worker. */
static void h_stat(struct rpc_call *call, const ProtobufCMessage *req, void *ud)
{
	if (fsvc_stat_here(call, (const Valet__V1__StatRequest *)req))
		return;
	fsvc_job_submit(ud, call, FSVC_STAT, req);
}

static void h_list(struct rpc_call *call, const ProtobufCMessage *req, void *ud)
{
	fsvc_job_submit(ud, call, FSVC_LIST, req);
}

static void h_mkdir(struct rpc_call *call, const ProtobufCMessage *req, void *ud)
{
	if (refused(ud, call))
		return;
	fsvc_job_submit(ud, call, FSVC_MKDIR, req);
}

static void h_remove(struct rpc_call *call, const ProtobufCMessage *req, void *ud)
{
	if (refused(ud, call))
		return;
	fsvc_job_submit(ud, call, FSVC_REMOVE, req);
}

static void h_move(struct rpc_call *call, const ProtobufCMessage *req, void *ud)
{
	if (refused(ud, call))
		return;
	fsvc_job_submit(ud, call, FSVC_MOVE, req);
}

static void h_read(struct rpc_call *call, const ProtobufCMessage *req, void *ud)
{
	fsvc_job_submit(ud, call, FSVC_READ, req);
}

static void h_read_tree(struct rpc_call *call, const ProtobufCMessage *req, void *ud)
{
	fsvc_job_submit(ud, call, FSVC_READ_TREE, req);
}

static void h_write(struct rpc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Valet__V1__WriteRequest *m = (const Valet__V1__WriteRequest *)req;

	if (m->part_case != VALET__V1__WRITE_REQUEST__PART_HEADER)
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "Write: the first message must be the header");
	if (refused(ud, call))
		return;
	fsvc_job_submit(ud, call, FSVC_WRITE, req);
}

static void h_write_tree(struct rpc_call *call, const ProtobufCMessage *req, void *ud)
{
	const Valet__V1__TreeRequest *m = (const Valet__V1__TreeRequest *)req;

	if (m->part_case != VALET__V1__TREE_REQUEST__PART_HEADER)
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "WriteTree: the first message must be the header");
	if (refused(ud, call))
		return;
	fsvc_job_submit(ud, call, FSVC_WRITE_TREE, req);
}

static const struct rpc_method methods[] = {
	{ "/valet.v1.Files/Write", &valet__v1__write_request__descriptor, h_write, .client_streaming = true },
	{ "/valet.v1.Files/Read", &valet__v1__read_request__descriptor, h_read, .server_streaming = true },
	{ "/valet.v1.Files/Stat", &valet__v1__stat_request__descriptor, h_stat },
	{ "/valet.v1.Files/List", &valet__v1__list_request__descriptor, h_list, .server_streaming = true },
	{ "/valet.v1.Files/MakeDirectory", &valet__v1__make_directory_request__descriptor, h_mkdir },
	{ "/valet.v1.Files/Remove", &valet__v1__remove_request__descriptor, h_remove },
	{ "/valet.v1.Files/Move", &valet__v1__move_request__descriptor, h_move },
	{ "/valet.v1.Files/WriteTree", &valet__v1__tree_request__descriptor, h_write_tree, .client_streaming = true },
	{ "/valet.v1.Files/ReadTree", &valet__v1__read_tree_request__descriptor, h_read_tree,
	  .server_streaming = true },
};

int files_service_register(struct agent *a, struct files_service *s)
{
	/* Without it, a Stat answered here checks the names' files each
	 * time: slower, as right. */
	(void)files_names_watch_start();
	*s = (struct files_service){
		.core = &a->core,
		.table = { methods, ARRAY_SIZE(methods), s },
		.worker_free = fsvc_job_start_queued,
	};
	return maitred_add_service(a, &s->table);
}

void files_service_free(struct files_service *s)
{
	fsvc_job_free_all(s);
	fsvc_pool_free(s);
	files_names_watch_stop();
}
