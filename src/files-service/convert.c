#include "convert.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

static void ts_to_pb(const struct timespec *t, Google__Protobuf__Timestamp *ts)
{
	*ts = (Google__Protobuf__Timestamp)GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts->seconds = t->tv_sec;
	ts->nanos = (int32_t)t->tv_nsec;
}

/* The generated code's strings are char *, never written through. */
static char *str(const char *s)
{
	return (char *)(s ? s : "");
}

void fsvc_info_to_pb(const struct files_info *info, Valet__V1__FileInfo *ret, Google__Protobuf__Timestamp *ts)
{
	*ret = (Valet__V1__FileInfo)VALET__V1__FILE_INFO__INIT;
	ret->path = str(info->path);
	ret->type = (Valet__V1__FileInfo__Type)info->type;
	ret->size = info->size;
	ret->mode = info->mode;
	ret->uid = info->uid;
	ret->gid = info->gid;
	ts_to_pb(&info->mtime, ts);
	ret->mtime = ts;
	ret->symlink_target = str(info->symlink_target);
	ret->owner = str(info->owner);
	ret->group = str(info->group);
}

int fsvc_timespec_from_pb(const Google__Protobuf__Timestamp *t, struct timespec *ret)
{
	if (t->nanos < 0 || t->nanos > 999999999)
		return -EINVAL;
	ret->tv_sec = (time_t)t->seconds;
	ret->tv_nsec = t->nanos;
	return 0;
}

int fsvc_entry_from_pb(const Valet__V1__TreeEntry *m, struct files_tree_entry *ret)
{
	/* The core refuses strings with a NUL inside (pb/nul-check.h): their
	 * C length is the length the peer sent. */
	*ret = (struct files_tree_entry){
		.path = m->path,
		.path_len = strlen(m->path),
		.type = (enum files_type)m->type,
		.mode = m->mode,
		.size = m->size,
		.symlink_target = m->symlink_target,
		.symlink_target_len = strlen(m->symlink_target),
		.hardlink_to = m->hardlink_to,
		.hardlink_to_len = strlen(m->hardlink_to),
		.uid = m->uid,
		.gid = m->gid,
	};
	if (!m->mtime)
		return 0;
	ret->has_mtime = true;
	return fsvc_timespec_from_pb(m->mtime, &ret->mtime);
}

void fsvc_entry_to_pb(const struct files_tree_entry *e, Valet__V1__TreeEntry *ret, Google__Protobuf__Timestamp *ts)
{
	*ret = (Valet__V1__TreeEntry)VALET__V1__TREE_ENTRY__INIT;
	ret->path = str(e->path);
	ret->type = (Valet__V1__FileInfo__Type)e->type;
	ret->mode = e->mode;
	ret->size = e->size;
	if (e->has_mtime) {
		ts_to_pb(&e->mtime, ts);
		ret->mtime = ts;
	}
	ret->symlink_target = str(e->symlink_target);
	ret->hardlink_to = str(e->hardlink_to);
	ret->uid = e->uid;
	ret->gid = e->gid;
}

int fsvc_write_opts_from_pb(const Valet__V1__WriteHeader *hdr, struct files_write_opts *ret, struct files_err *err)
{
	struct files_write_opts o = { .make_parents = hdr->make_parents, .no_replace = hdr->no_replace };

	if (hdr->_mode_case == VALET__V1__WRITE_HEADER___MODE_MODE) {
		if (hdr->mode > 07777)
			return files_fail(err, -EINVAL, "%s: mode %#o is above 07777", hdr->path, hdr->mode);
		o.has_mode = true;
		o.mode = hdr->mode;
	}
	if (hdr->sha256.len) {
		if (hdr->sha256.len != SHA256_DIGEST_SIZE)
			return files_fail(err, -EINVAL, "%s: sha256 has %zu bytes, not %d", hdr->path, hdr->sha256.len,
					  SHA256_DIGEST_SIZE);
		o.sha256 = hdr->sha256.data;
	}
	if (hdr->mtime) {
		if (fsvc_timespec_from_pb(hdr->mtime, &o.mtime) < 0)
			return files_fail(err, -EINVAL, "%s: mtime nanos %d out of range", hdr->path,
					  hdr->mtime->nanos);
		o.has_mtime = true;
	}
	*ret = o;
	return 0;
}

const char *fsvc_err_message(int r, const struct files_err *err, char *buf, size_t size)
{
	if (err && err->msg[0])
		return err->msg;
	snprintf(buf, size, "%s", strerror(r < 0 ? -r : r));
	return buf;
}
