/* A directory tree into the guest (valet.v1.Files/WriteTree) from a local
 * walk, or out of it (Files/ReadTree) recreated locally. Both sides are
 * the files layer's (files/tree.h): the same walk the guest uses, and the
 * same writer, which opens every entry beneath the root without following
 * symlinks, so a guest's tree cannot write outside the local root either. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cp.h"
#include "pb/bytes-field.h"
#include "pb/nul-check.h"
#include "files/path.h"
#include "files/status.h"
#include "files/tree.h"
#include "rpc/status.h"

struct tree_upload {
	struct maitctl_stream s;
	struct files_tree_reader *r;
	const char *local;
	bool in_file;
	bool ended;
	uint8_t *buf;
	uint64_t bytes;
	struct maitctl_progress progress;
	Valet__V1__TreeSummary *resp;
};

static int send_entry(struct tree_upload *u, const struct files_tree_entry *e)
{
	Valet__V1__TreeRequest req = VALET__V1__TREE_REQUEST__INIT;
	Valet__V1__TreeEntry te = VALET__V1__TREE_ENTRY__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;

	te.path = (char *)e->path;
	te.type = (Valet__V1__FileInfo__Type)e->type;
	te.mode = e->mode;
	te.size = e->hardlink_to ? 0 : e->size;
	if (e->has_mtime) {
		ts.seconds = e->mtime.tv_sec;
		ts.nanos = (int32_t)e->mtime.tv_nsec;
		te.mtime = &ts;
	}
	if (e->symlink_target)
		te.symlink_target = (char *)e->symlink_target;
	if (e->hardlink_to)
		te.hardlink_to = (char *)e->hardlink_to;
	req.part_case = VALET__V1__TREE_REQUEST__PART_ENTRY;
	req.entry = &te;
	if (e->type == FILES_TYPE_FILE)
		u->progress.files++;
	return maitctl_stream_send(&u->s, &req.base);
}

/* Entries and data until the queue is full or the walk ends. */
static void tree_upload_pump(struct maitctl_stream *s, void *userdata)
{
	struct tree_upload *u = userdata;
	Valet__V1__TreeRequest req = VALET__V1__TREE_REQUEST__INIT;
	struct files_err err = { "" };
	const struct files_tree_entry *e;
	int r;

	req.part_case = VALET__V1__TREE_REQUEST__PART_DATA;
	while (!u->ended) {
		if (u->in_file) {
			ssize_t n = files_tree_reader_read(u->r, u->buf, CP_CHUNK, &err);
			if (n < 0) {
				maitctl_stream_fail(s, files_grpc_code((int)n), "%s: %s", u->local, err.msg);
				return;
			}
			if (n == 0) {
				u->in_file = false;
				continue;
			}
			req.data.data = u->buf;
			req.data.len = (size_t)n;
			r = maitctl_stream_send(s, &req.base);
			if (r >= 0) {
				u->bytes += (uint64_t)n;
				maitctl_progress_update(&u->progress, u->bytes);
			}
		} else {
			r = files_tree_reader_next(u->r, &e, &err);
			if (r < 0) {
				maitctl_stream_fail(s, files_grpc_code(r), "%s: %s", u->local, err.msg);
				return;
			}
			if (r == 0) {
				u->ended = true;
				(void)maitctl_stream_close_send(s);
				return;
			}
			u->in_file = e->type == FILES_TYPE_FILE && !e->hardlink_to && e->size > 0;
			r = send_entry(u, e);
		}
		if (r != 0)
			return; /* 1: on_writable resumes; < 0: the call is over */
	}
}

static int tree_upload_message(struct maitctl_stream *s, const uint8_t *data, size_t len, void *userdata)
{
	struct tree_upload *u = userdata;

	if (u->resp)
		return maitctl_stream_fail(s, RPC_INTERNAL, "a second response from the guest");
	u->resp = valet__v1__tree_summary__unpack(NULL, len, data);
	if (!u->resp)
		return maitctl_stream_fail(s, RPC_INTERNAL, "cannot decode the guest's TreeSummary");
	return 0;
}

static const struct maitctl_stream_ops tree_upload_ops = { tree_upload_message, tree_upload_pump };

static void on_skip(const char *path, void *userdata)
{
	struct tree_upload *u = userdata;

	maitctl_progress_clear(&u->progress);
	fprintf(stderr, "maitctl cp: warning: %s/%s: not a file, directory or symlink; skipped\n", u->local, path);
}

int cp_upload_tree(struct maitctl *ctl, const struct cp_opts *o, int rootfd, const char *local, const char *guest,
		   struct cp_result *ret)
{
	Valet__V1__TreeRequest req = VALET__V1__TREE_REQUEST__INIT;
	Valet__V1__TreeHeader hdr = VALET__V1__TREE_HEADER__INIT;
	struct tree_upload u = { .local = local };
	struct files_err err = { "" };
	_cleanup_free_ uint8_t *buf = malloc(CP_CHUNK);
	int r;

	if (!buf)
		return maitctl_local_error(ctl, -ENOMEM, "out of memory");
	u.buf = buf;
	r = files_tree_reader_new(rootfd, &u.r, &err);
	if (r < 0)
		return maitctl_local_error(ctl, r, "%s: %s", local, err.msg);
	/* Freed with the function, whatever happens below. */
	_cleanup_(files_tree_reader_freep) struct files_tree_reader *reader = u.r;
	files_tree_reader_on_skip(reader, on_skip, &u);

	hdr.root = (char *)guest;
	hdr.user = (char *)(o->user ? o->user : "");
	hdr.make_parents = o->parents;
	req.part_case = VALET__V1__TREE_REQUEST__PART_HEADER;
	req.header = &hdr;
	r = maitctl_stream_start(&u.s, ctl, FILES_SERVICE "WriteTree", o->timeout_usec, &tree_upload_ops, &u);
	if (r)
		return r;
	maitctl_progress_init(&u.progress, 0);
	u.s.progress = &u.progress;
	if (maitctl_stream_send(&u.s, &req.base) >= 0)
		tree_upload_pump(&u.s, &u);
	r = maitctl_stream_finish(&u.s);
	_cleanup_response_ Valet__V1__TreeSummary *resp = u.resp;
	if (r != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	maitctl_progress_end(&u.progress, u.bytes);
	if (!resp) {
		maitctl_print_error(ctl, RPC_INTERNAL, "the guest's answer has no TreeSummary");
		return MAITCTL_EXIT_RPC_ERROR;
	}
	*ret = (struct cp_result){ .path = guest,
				   .tree = true,
				   .bytes = resp->bytes,
				   .files = resp->files,
				   .directories = resp->directories,
				   .symlinks = resp->symlinks };
	return 0;
}

struct tree_download {
	struct maitctl_stream s;
	const struct cp_opts *o;
	const char *local;
	int rootfd;
	struct files_tree_writer *w;
	uint64_t bytes;
	struct maitctl_progress progress;
};

/* The local root, made when the guest's first entry arrives (or its
 * empty tree ends): a call refused by the guest leaves nothing. */
static int open_root(struct tree_download *d)
{
	struct files_tree_opts to = { 0 };
	struct files_err err = { "" };
	int r;

	if (d->w)
		return 0;
	r = files_tree_root_open(d->local, true, d->o->parents, &d->rootfd, &err);
	if (r >= 0)
		r = files_tree_writer_new(d->rootfd, &to, &d->w, &err);
	if (r < 0)
		return maitctl_stream_fail(&d->s, files_grpc_code(r), "%s", err.msg[0] ? err.msg : strerror(-r));
	return 0;
}

static int tree_download_data(struct tree_download *d, const uint8_t *data, size_t len)
{
	struct files_err err = { "" };

	if (!d->w)
		return maitctl_stream_fail(&d->s, RPC_INTERNAL, "the guest sent data before an entry");
	int r = files_tree_writer_data(d->w, data, len, &err);
	if (r < 0)
		return maitctl_stream_fail(&d->s, files_grpc_code(r), "%s: %s", d->local, err.msg);
	d->bytes += len;
	maitctl_progress_update(&d->progress, d->bytes);
	return 0;
}

static int tree_download_entry(struct tree_download *d, const Valet__V1__TreeEntry *te)
{
	struct files_err err = { "" };

	if (open_root(d) < 0)
		return -1;
	struct files_tree_entry e = {
		.path = te->path,
		.path_len = strlen(te->path),
		.type = (enum files_type)te->type,
		.mode = te->mode,
		.size = te->size,
		.has_mtime = te->mtime != NULL,
		.mtime = { te->mtime ? te->mtime->seconds : 0, te->mtime ? te->mtime->nanos : 0 },
		.symlink_target = te->symlink_target[0] ? te->symlink_target : NULL,
		.symlink_target_len = strlen(te->symlink_target),
		.hardlink_to = te->hardlink_to[0] ? te->hardlink_to : NULL,
		.hardlink_to_len = strlen(te->hardlink_to),
	};
	/* Refused entries (.., absolute, through a symlink) end the copy. */
	int r = files_tree_writer_entry(d->w, &e, &err);
	if (r < 0)
		return maitctl_stream_fail(&d->s, files_grpc_code(r), "%s: %s", d->local, err.msg);
	if (e.type == FILES_TYPE_FILE)
		d->progress.files++;
	return 0;
}

static int tree_download_message(struct maitctl_stream *s, const uint8_t *data, size_t len, void *userdata)
{
	struct tree_download *d = userdata;
	const uint8_t *p;
	size_t n;

	if (pb_bytes_field(data, len, 2, &p, &n))
		return tree_download_data(d, p, n);
	/* A name with a NUL byte would arrive cut short: refused whole. */
	char field[64];
	if (pb_find_nul_string(&valet__v1__tree_response__descriptor, data, len, field, sizeof(field)) != 0)
		return maitctl_stream_fail(s, RPC_INTERNAL,
					   "the guest sent a TreeEntry %s with a NUL byte, or a broken one", field);
	_cleanup_response_ Valet__V1__TreeResponse *m = valet__v1__tree_response__unpack(NULL, len, data);
	if (!m)
		return maitctl_stream_fail(s, RPC_INTERNAL, "cannot decode the guest's TreeResponse");
	switch (m->part_case) {
	case VALET__V1__TREE_RESPONSE__PART_ENTRY: return tree_download_entry(d, m->entry);
	case VALET__V1__TREE_RESPONSE__PART_DATA: return tree_download_data(d, m->data.data, m->data.len);
	default: return maitctl_stream_fail(s, RPC_INTERNAL, "the guest sent an empty TreeResponse");
	}
}

static const struct maitctl_stream_ops tree_download_ops = { tree_download_message, NULL };

int cp_download_tree(struct maitctl *ctl, const struct cp_opts *o, const char *guest, const char *local,
		     struct cp_result *ret)
{
	Valet__V1__ReadTreeRequest req = VALET__V1__READ_TREE_REQUEST__INIT;
	struct tree_download d = { .o = o, .local = local, .rootfd = -1 };
	struct files_tree_summary sum = { 0 };
	struct files_err err = { "" };
	int r;

	req.root = (char *)guest;
	req.user = (char *)(o->user ? o->user : "");
	r = maitctl_stream_start(&d.s, ctl, FILES_SERVICE "ReadTree", o->timeout_usec, &tree_download_ops, &d);
	if (r)
		return r;
	maitctl_progress_init(&d.progress, 0);
	d.s.progress = &d.progress;
	if (maitctl_stream_send(&d.s, &req.base) >= 0)
		(void)maitctl_stream_close_send(&d.s);
	r = maitctl_stream_finish(&d.s);
	_cleanup_close_ int rootfd = d.rootfd;
	_cleanup_(files_tree_writer_freep) struct files_tree_writer *w = d.w;
	if (r != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	if (!w) {
		d.s.failed = false;
		if (open_root(&d) < 0) {
			maitctl_print_error(ctl, d.s.code, d.s.message);
			return MAITCTL_EXIT_RPC_ERROR;
		}
		rootfd = d.rootfd;
		w = d.w;
	}
	r = files_tree_writer_finish(w, &sum, &err);
	if (r < 0) {
		maitctl_progress_clear(&d.progress);
		return maitctl_local_error(ctl, r, "%s: %s", local, err.msg);
	}
	maitctl_progress_end(&d.progress, d.bytes);
	*ret = (struct cp_result){ .path = local,
				   .tree = true,
				   .bytes = sum.bytes,
				   .files = sum.files,
				   .directories = sum.directories,
				   .symlinks = sum.symlinks };
	return 0;
}
