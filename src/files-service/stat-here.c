#include "stat-here.h"

#include <errno.h>

#include "convert.h"
#include "files/ops.h"

bool fsvc_stat_here(struct rpc_call *call, const Valet__V1__StatRequest *req)
{
	struct files_info info = { 0 };
	struct files_err err = { 0 };
	Valet__V1__FileInfo m;
	Google__Protobuf__Timestamp ts;
	char buf[256];
	int r;

	/* A user: a worker acts as that user (it cannot be undone in
	 * maitred). "": a worker keeps maitred's credentials, as here. */
	if (req->user[0])
		return false;
	r = files_stat_cached(req->path, req->follow_symlinks, &info, &err);
	if (r == -EAGAIN)
		return false;
	if (r < 0) {
		rpc_call_fail(call, files_grpc_code(r), "%s", fsvc_err_message(r, &err, buf, sizeof(buf)));
		return true;
	}
	fsvc_info_to_pb(&info, &m, &ts);
	rpc_call_reply(call, &m.base);
	files_info_clear(&info);
	return true;
}
