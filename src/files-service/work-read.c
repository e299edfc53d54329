/* Read and ReadTree: the worker reads, maitred passes the messages on.
 * Data messages are a field head and the worker's buffer (frame.h), so
 * the bytes are copied once into the packet and never packed. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

#include "base/macro.h"
#include "convert.h"
#include "files/reader.h"
#include "frame.h"
#include "ring.h"
#include "work.h"

/* ReadResponse.data and TreeResponse.data. */
#define READ_DATA_FIELD 2
#define READ_SHA256_FIELD 3
#define TREE_DATA_FIELD 2

static int send_data(int fd, unsigned field, const void *buf, size_t len)
{
	uint8_t head[FSVC_FIELD_HEAD_MAX];
	size_t n = fsvc_bytes_field_head(head, field, len);

	return fsvc_send(fd, FSVC_MSG, head, n, buf, len);
}

/* The same for data read into a slot of the ring. */
static int send_slot_data(int fd, unsigned field, unsigned slot, size_t len)
{
	uint8_t head[FSVC_FIELD_HEAD_MAX];
	size_t n = fsvc_bytes_field_head(head, field, len);

	return fsvc_send_slot(fd, slot, len, head, n);
}

/* A Read's data: each piece read into a free slot of the ring and sent
 * from there (ring.h, a slot's worth), or into buf and through the
 * socket without one (FSVC_READ_CHUNK).
 * 0 at the end of the range; -errno after an ERROR frame was sent, or
 * when maitred is gone (or the call: nothing to answer). */
static int read_data(int fd, struct files_reader *rd, uint8_t *buf)
{
	struct fsvc_ring *ring = fsvc_work_ring();
	struct files_err err = { 0 };

	for (;;) {
		int slot = ring ? fsvc_ring_take(ring, fd) : 0;
		if (slot < 0)
			return slot == -EBADMSG ? fsvc_work_fail_code(fd, FILES_GRPC_INTERNAL, "unexpected frame")
						: slot;
		uint8_t *dst = ring ? fsvc_ring_slot(ring, (unsigned)slot) : buf;
		ssize_t n = files_reader_read(rd, dst, ring ? FSVC_CHUNK : FSVC_READ_CHUNK, &err);
		if (n <= 0 && ring)
			fsvc_ring_put(ring, (unsigned)slot);
		if (n < 0)
			return fsvc_work_fail(fd, (int)n, &err);
		if (n == 0)
			return 0;
		int r = ring ? send_slot_data(fd, READ_DATA_FIELD, (unsigned)slot, (size_t)n)
			     : send_data(fd, READ_DATA_FIELD, buf, (size_t)n);
		if (r < 0)
			return r;
	}
}

static int send_read_info(int fd, const char *path, const struct stat *st)
{
	Valet__V1__ReadResponse m = VALET__V1__READ_RESPONSE__INIT;
	Valet__V1__FileInfo info_pb;
	Google__Protobuf__Timestamp ts;
	struct files_info info = { 0 };
	int r = files_info_from_stat(AT_FDCWD, path, path, st, &info);

	if (r < 0)
		return r;
	fsvc_info_to_pb(&info, &info_pb, &ts);
	m.part_case = VALET__V1__READ_RESPONSE__PART_INFO;
	m.info = &info_pb;
	r = fsvc_send_message(fd, FSVC_MSG, &m.base);
	files_info_clear(&info);
	return r;
}

int fsvc_work_read(int fd, const Valet__V1__ReadRequest *req)
{
	_cleanup_(files_reader_freep) struct files_reader *rd = NULL;
	_cleanup_free_ uint8_t *buf = NULL;
	struct files_user u = { 0 };
	struct files_err err = { 0 };
	struct stat st;
	int r = fsvc_work_begin(fd, req->user, &u);

	if (r < 0)
		return r;
	files_user_clear(&u);
	r = files_reader_open(req->path, req->offset, req->length, &rd, &st, &err);
	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	if (!req->sha256)
		files_reader_skip_digest(rd);
	if (!fsvc_work_ring() && !(buf = malloc(FSVC_READ_CHUNK)))
		return fsvc_work_fail(fd, -ENOMEM, NULL);
	r = send_read_info(fd, req->path, &st);
	if (r < 0)
		return r == -ENOMEM ? fsvc_work_fail(fd, r, NULL) : r;
	r = read_data(fd, rd, buf);
	if (r < 0)
		return r;
	if (req->sha256) {
		uint8_t digest[SHA256_DIGEST_SIZE];
		r = files_reader_digest(rd, digest);
		if (r < 0)
			return fsvc_work_fail(fd, r, NULL);
		r = send_data(fd, READ_SHA256_FIELD, digest, sizeof(digest));
		if (r < 0)
			return r;
	}
	return fsvc_work_done(fd);
}

/* ReadTree's messages gathered in BATCH packets (frame.h): an entry and
 * a small file's data, and the next ones, in one send where they made
 * two a file. A packet goes when the next message would not fit, and
 * before the end (DONE or ERROR). */
struct tree_out {
	int fd;
	uint8_t buf[FSVC_CHUNK];
	size_t len;
};

static int out_flush(struct tree_out *o)
{
	if (o->len == 0)
		return 0;
	size_t n = o->len;
	o->len = 0;
	return fsvc_send(o->fd, FSVC_BATCH, o->buf, n, NULL, 0);
}

/* Room for a message of n bytes: 0, or the failed send's -errno. */
static int out_room(struct tree_out *o, size_t n)
{
	return o->len + FSVC_SUB_HEAD + n <= sizeof(o->buf) ? 0 : out_flush(o);
}

static int out_fail(struct tree_out *o, int r, const struct files_err *err)
{
	int s = out_flush(o);
	return s < 0 ? s : fsvc_work_fail(o->fd, r, err);
}

static int send_entry(struct tree_out *o, const struct files_tree_entry *e)
{
	Valet__V1__TreeResponse m = VALET__V1__TREE_RESPONSE__INIT;
	Valet__V1__TreeEntry entry;
	Google__Protobuf__Timestamp ts;

	fsvc_entry_to_pb(e, &entry, &ts);
	m.part_case = VALET__V1__TREE_RESPONSE__PART_ENTRY;
	m.entry = &entry;
	size_t n = protobuf_c_message_get_packed_size(&m.base);
	int r = out_room(o, n);
	if (r < 0)
		return r;
	if (FSVC_SUB_HEAD + n > sizeof(o->buf))
		return -E2BIG; /* paths of at most 4 KiB: never */
	protobuf_c_message_pack(&m.base, fsvc_batch_add(o->buf, &o->len, FSVC_MSG, n));
	return 0;
}

/* A piece of a file: with the messages around it when small; alone,
 * sent from buf, when it is most of a packet (a large file's). */
static int send_tree_data(struct tree_out *o, const uint8_t *buf, size_t len)
{
	uint8_t head[FSVC_FIELD_HEAD_MAX];
	size_t h = fsvc_bytes_field_head(head, TREE_DATA_FIELD, len);
	int r;

	if (len > sizeof(o->buf) / 2) {
		r = out_flush(o);
		return r < 0 ? r : send_data(o->fd, TREE_DATA_FIELD, buf, len);
	}
	r = out_room(o, h + len);
	if (r < 0)
		return r;
	fsvc_batch_put(o->buf, &o->len, FSVC_MSG, head, h, buf, len);
	return 0;
}

static int read_tree(struct tree_out *o, struct files_tree_reader *rd, uint8_t *buf)
{
	struct files_err err = { 0 };

	for (;;) {
		const struct files_tree_entry *e;
		int r = files_tree_reader_next(rd, &e, &err);
		if (r < 0)
			return out_fail(o, r, &err);
		if (r == 0) {
			r = out_flush(o);
			return r < 0 ? r : fsvc_work_done(o->fd);
		}
		r = send_entry(o, e);
		if (r < 0)
			return r;
		if (e->type != FILES_TYPE_FILE || e->size == 0 || e->hardlink_to_len)
			continue;
		for (;;) {
			ssize_t n = files_tree_reader_read(rd, buf, FSVC_CHUNK, &err);
			if (n < 0)
				return out_fail(o, (int)n, &err);
			if (n == 0)
				break;
			r = send_tree_data(o, buf, (size_t)n);
			if (r < 0)
				return r;
		}
	}
}

int fsvc_work_read_tree(int fd, const Valet__V1__ReadTreeRequest *req)
{
	_cleanup_(files_tree_reader_freep) struct files_tree_reader *rd = NULL;
	_cleanup_close_ int rootfd = -1;
	_cleanup_free_ uint8_t *buf = NULL;
	_cleanup_free_ struct tree_out *o = NULL;
	struct files_user u = { 0 };
	struct files_err err = { 0 };
	int r = fsvc_work_begin(fd, req->user, &u);

	if (r < 0)
		return r;
	files_user_clear(&u);
	r = files_tree_root_open(req->root, false, false, &rootfd, &err);
	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	r = files_tree_reader_new(rootfd, &rd, &err);
	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	buf = malloc(FSVC_CHUNK);
	o = malloc(sizeof(*o));
	if (!buf || !o)
		return fsvc_work_fail(fd, -ENOMEM, NULL);
	o->fd = fd;
	o->len = 0;
	return read_tree(o, rd, buf);
}
