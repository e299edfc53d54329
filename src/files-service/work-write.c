/* Write and WriteTree: maitred forwards the client's data (DATA frames)
 * and tree entries (ENTRY), then COMMIT once the client has half-closed.
 * The socket's end without COMMIT (cancel, deadline, client gone) is an
 * abort: the files layer discards the unfinished file. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/macro.h"
#include "convert.h"
#include "files/writer.h"
#include "frame.h"
#include "work.h"

/* The next frame: its size (kind byte included), 0 at the socket's end,
 * -errno. */
static ssize_t next_frame(int fd, uint8_t *buf)
{
	for (;;) {
		ssize_t n = recv(fd, buf, FSVC_FRAME_MAX, 0);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

static int answer_write(int fd, const char *path, const struct stat *st, const uint8_t digest[SHA256_DIGEST_SIZE])
{
	Valet__V1__WriteResponse m = VALET__V1__WRITE_RESPONSE__INIT;
	Valet__V1__FileInfo info_pb;
	Google__Protobuf__Timestamp ts;
	struct files_info info = { 0 };
	int r = files_info_from_stat(AT_FDCWD, path, path, st, &info);

	if (r < 0)
		return fsvc_work_fail(fd, r, NULL);
	fsvc_info_to_pb(&info, &info_pb, &ts);
	m.info = &info_pb;
	m.sha256.data = (uint8_t *)digest;
	m.sha256.len = SHA256_DIGEST_SIZE;
	r = fsvc_work_reply(fd, &m.base);
	files_info_clear(&info);
	return r;
}

int fsvc_work_write(int fd, const Valet__V1__WriteHeader *hdr)
{
	_cleanup_(files_writer_freep) struct files_writer *w = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	struct files_write_opts o;
	struct files_user u = { 0 };
	struct files_err err = { 0 };
	int r = fsvc_write_opts_from_pb(hdr, &o, &err);

	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	r = fsvc_work_begin(fd, hdr->user, &u);
	if (r < 0)
		return r;
	files_user_clear(&u);
	buf = malloc(FSVC_FRAME_MAX);
	if (!buf)
		return fsvc_work_fail(fd, -ENOMEM, NULL);
	r = files_writer_open(hdr->path, &o, &w, &err);
	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	for (;;) {
		ssize_t n = next_frame(fd, buf);
		if (n <= 0)
			return n < 0 ? (int)n : -ECANCELED; /* abort: w discards the file */
		if (buf[0] == FSVC_DATA) {
			r = files_writer_write(w, buf + 1, (size_t)n - 1, &err);
			if (r < 0)
				return fsvc_work_fail(fd, r, &err);
		} else if (buf[0] == FSVC_COMMIT) {
			uint8_t digest[SHA256_DIGEST_SIZE];
			struct stat st;
			fsvc_work_set_reusable(true); /* everything sent was read */
			r = files_writer_commit(w, digest, &st, &err);
			if (r < 0)
				return fsvc_work_fail(fd, r, &err);
			return answer_write(fd, hdr->path, &st, digest);
		} else
			return fsvc_work_fail_code(fd, FILES_GRPC_INTERNAL, "unexpected frame %#x", buf[0]);
	}
}

static int tree_entry(int fd, struct files_tree_writer *w, const uint8_t *data, size_t len)
{
	Valet__V1__TreeEntry *m = valet__v1__tree_entry__unpack(NULL, len, data);
	struct files_tree_entry e;
	struct files_err err = { 0 };
	int r;

	/* maitred packed it from a message the core decoded. */
	if (!m)
		return fsvc_work_fail_code(fd, FILES_GRPC_INTERNAL, "could not decode a tree entry");
	r = fsvc_entry_from_pb(m, &e);
	if (r < 0)
		r = fsvc_work_fail_code(fd, FILES_GRPC_INVALID_ARGUMENT, "entry %s: mtime out of range", m->path);
	else {
		r = files_tree_writer_entry(w, &e, &err);
		if (r < 0)
			(void)fsvc_work_fail(fd, r, &err);
	}
	valet__v1__tree_entry__free_unpacked(m, NULL);
	return r;
}

static int answer_tree(int fd, const struct files_tree_summary *s)
{
	Valet__V1__TreeSummary m = VALET__V1__TREE_SUMMARY__INIT;

	m.files = s->files;
	m.directories = s->directories;
	m.symlinks = s->symlinks;
	m.bytes = s->bytes;
	return fsvc_work_reply(fd, &m.base);
}

/* An ENTRY or DATA frame, alone or in a BATCH. */
static int tree_part(int fd, struct files_tree_writer *w, uint8_t kind, const uint8_t *data, size_t len)
{
	struct files_err err = { 0 };
	int r;

	if (kind == FSVC_ENTRY)
		return tree_entry(fd, w, data, len);
	if (kind != FSVC_DATA)
		return fsvc_work_fail_code(fd, FILES_GRPC_INTERNAL, "unexpected frame %#x", kind);
	r = files_tree_writer_data(w, data, len, &err);
	return r < 0 ? fsvc_work_fail(fd, r, &err) : 0;
}

static int tree_batch(int fd, struct files_tree_writer *w, const uint8_t *p, size_t len)
{
	const uint8_t *data;
	size_t off = 0, n;
	uint8_t kind;
	int r;

	while ((r = fsvc_batch_next(p, len, &off, &kind, &data, &n)) > 0) {
		r = tree_part(fd, w, kind, data, n);
		if (r < 0)
			return r;
	}
	return r < 0 ? fsvc_work_fail_code(fd, FILES_GRPC_INTERNAL, "a batch cut short") : 0;
}

static int write_tree(int fd, struct files_tree_writer *w, uint8_t *buf)
{
	struct files_err err = { 0 };

	for (;;) {
		ssize_t n = next_frame(fd, buf);
		int r = 0;
		if (n <= 0)
			return n < 0 ? (int)n : -ECANCELED;
		if (buf[0] == FSVC_BATCH)
			r = tree_batch(fd, w, buf + 1, (size_t)n - 1);
		else if (buf[0] == FSVC_ENTRY || buf[0] == FSVC_DATA)
			r = tree_part(fd, w, buf[0], buf + 1, (size_t)n - 1);
		else if (buf[0] == FSVC_COMMIT) {
			struct files_tree_summary s;
			fsvc_work_set_reusable(true); /* everything sent was read */
			r = files_tree_writer_finish(w, &s, &err);
			if (r < 0)
				return fsvc_work_fail(fd, r, &err);
			return answer_tree(fd, &s);
		} else
			return fsvc_work_fail_code(fd, FILES_GRPC_INTERNAL, "unexpected frame %#x", buf[0]);
		if (r < 0)
			return r;
	}
}

int fsvc_work_write_tree(int fd, const Valet__V1__TreeHeader *hdr)
{
	_cleanup_(files_tree_writer_freep) struct files_tree_writer *w = NULL;
	_cleanup_close_ int rootfd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	struct files_user u = { 0 };
	struct files_err err = { 0 };
	struct files_tree_opts o = { .keep_owners = hdr->keep_owners };
	int r = fsvc_work_begin(fd, hdr->user, &u);

	if (r < 0)
		return r;
	o.acting_as_root = u.uid == 0;
	files_user_clear(&u);
	buf = malloc(FSVC_FRAME_MAX);
	if (!buf)
		return fsvc_work_fail(fd, -ENOMEM, NULL);
	r = files_tree_root_open(hdr->root, true, hdr->make_parents, &rootfd, &err);
	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	r = files_tree_writer_new(rootfd, &o, &w, &err);
	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	return write_tree(fd, w, buf);
}
