/* Stat, List, MakeDirectory, Remove, Move: one answer (a stream of them
 * for List) from the files layer's metadata calls. */
#include <errno.h>
#include <stdlib.h>

#include "convert.h"
#include "frame.h"
#include "work.h"

#define MODE_MAX 07777

/* Sends info as one FileInfo message; the call's answer when last. */
static int send_info(int fd, const struct files_info *info, bool last)
{
	Valet__V1__FileInfo m;
	Google__Protobuf__Timestamp ts;

	fsvc_info_to_pb(info, &m, &ts);
	return last ? fsvc_work_reply(fd, &m.base) : fsvc_send_message(fd, FSVC_MSG, &m.base);
}

/* The answer of a call that ends with one FileInfo of path. */
static int answer_info(int fd, const char *path, bool follow)
{
	struct files_info info = { 0 };
	struct files_err err = { 0 };
	int r = files_stat(path, follow, &info, &err);

	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	r = send_info(fd, &info, true);
	files_info_clear(&info);
	return r;
}

int fsvc_work_stat(int fd, const Valet__V1__StatRequest *req)
{
	struct files_user u = { 0 };
	int r = fsvc_work_begin(fd, req->user, &u);

	if (r < 0)
		return r;
	r = answer_info(fd, req->path, req->follow_symlinks);
	files_user_clear(&u);
	return r;
}

static int list_one(const struct files_info *info, void *userdata)
{
	return send_info(*(int *)userdata, info, false);
}

int fsvc_work_list(int fd, const Valet__V1__ListRequest *req)
{
	struct files_user u = { 0 };
	struct files_err err = { 0 };
	int r = fsvc_work_begin(fd, req->user, &u);

	if (r < 0)
		return r;
	r = files_list(req->path, req->depth, list_one, &fd, &err);
	files_user_clear(&u);
	if (r == -EPIPE || r == -ECONNRESET)
		return r; /* maitred is gone: nobody to tell */
	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	return fsvc_work_done(fd);
}

int fsvc_work_mkdir(int fd, const Valet__V1__MakeDirectoryRequest *req)
{
	struct files_user u = { 0 };
	struct files_err err = { 0 };
	int mode = -1, r;

	if (req->_mode_case == VALET__V1__MAKE_DIRECTORY_REQUEST___MODE_MODE) {
		if (req->mode > MODE_MAX)
			return fsvc_work_fail_code(fd, FILES_GRPC_INVALID_ARGUMENT, "mode %#o is above 07777",
						   req->mode);
		mode = (int)req->mode;
	}
	r = fsvc_work_begin(fd, req->user, &u);
	if (r < 0)
		return r;
	r = files_mkdir(req->path, mode, req->parents, &err);
	r = r < 0 ? fsvc_work_fail(fd, r, &err) : answer_info(fd, req->path, false);
	files_user_clear(&u);
	return r;
}

int fsvc_work_remove(int fd, const Valet__V1__RemoveRequest *req)
{
	Valet__V1__RemoveResponse m = VALET__V1__REMOVE_RESPONSE__INIT;
	struct files_user u = { 0 };
	struct files_err err = { 0 };
	uint64_t removed = 0;
	int r = fsvc_work_begin(fd, req->user, &u);

	if (r < 0)
		return r;
	r = files_remove(req->path, req->recursive, &removed, &err);
	files_user_clear(&u);
	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	m.removed = removed;
	return fsvc_work_reply(fd, &m.base);
}

int fsvc_work_move(int fd, const Valet__V1__MoveRequest *req)
{
	struct files_user u = { 0 };
	struct files_err err = { 0 };
	int r = fsvc_work_begin(fd, req->user, &u);

	if (r < 0)
		return r;
	r = files_move(req->source, req->destination, req->no_replace, &err);
	r = r < 0 ? fsvc_work_fail(fd, r, &err) : answer_info(fd, req->destination, false);
	files_user_clear(&u);
	return r;
}
