/* One file into the guest (valet.v1.Files/Write) or out of it
 * (Files/Read). The data path reads and writes CP_CHUNK at a time and
 * hashes only with --sha256; a download's data messages are not decoded
 * (pb/bytes-field.h), so their bytes go from the receive buffer to
 * the file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/buf.h"
#include "cp.h"
#include "pb/bytes-field.h"
#include "files/status.h"
#include "files/writer.h"
#include "rpc/status.h"

struct upload {
	struct maitctl_stream s;
	int fd;
	const char *name;
	uint8_t *buf;
	uint64_t sent;
	bool hashing; /* stdin: hashed as read, checked against the answer */
	struct sha256 sha;
	struct maitctl_progress progress;
	Valet__V1__WriteResponse *resp;
};

/* Sends data until the queue is full (on_writable resumes) or the file
 * ends (the half-close: the guest commits). */
static void upload_pump(struct maitctl_stream *s, void *userdata)
{
	struct upload *u = userdata;
	Valet__V1__WriteRequest req = VALET__V1__WRITE_REQUEST__INIT;

	req.part_case = VALET__V1__WRITE_REQUEST__PART_DATA;
	for (;;) {
		ssize_t n = read(u->fd, u->buf, CP_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			maitctl_stream_fail(s, RPC_INTERNAL, "%s: %s", u->name, strerror(errno));
			return;
		}
		if (n == 0) {
			(void)maitctl_stream_close_send(s);
			return;
		}
		if (u->hashing)
			sha256_update(&u->sha, u->buf, (size_t)n);
		req.data.data = u->buf;
		req.data.len = (size_t)n;
		int r = maitctl_stream_send(s, &req.base);
		if (r < 0)
			return;
		u->sent += (uint64_t)n;
		maitctl_progress_update(&u->progress, u->sent);
		if (r == 1)
			return;
	}
}

static int upload_message(struct maitctl_stream *s, const uint8_t *data, size_t len, void *userdata)
{
	struct upload *u = userdata;

	if (u->resp)
		return maitctl_stream_fail(s, RPC_INTERNAL, "a second response from the guest");
	u->resp = valet__v1__write_response__unpack(NULL, len, data);
	if (!u->resp)
		return maitctl_stream_fail(s, RPC_INTERNAL, "cannot decode the guest's WriteResponse");
	return 0;
}

static const struct maitctl_stream_ops upload_ops = { upload_message, upload_pump };

/* The SHA-256 of a regular file, read before it is sent: the header
 * carries it, so the guest refuses a mismatch before it replaces
 * anything. The second read comes from the page cache. */
static int hash_file(int fd, uint8_t *buf, uint8_t out[SHA256_DIGEST_SIZE])
{
	struct sha256 sha;
	off_t off = 0;

	sha256_init(&sha);
	for (;;) {
		ssize_t n = pread(fd, buf, CP_CHUNK, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		sha256_update(&sha, buf, (size_t)n);
		off += n;
	}
	sha256_final(&sha, out);
	return 0;
}

int cp_upload_file(struct maitctl *ctl, const struct cp_opts *o, int fd, const struct stat *st, const char *name,
		   const char *guest, struct cp_result *ret)
{
	Valet__V1__WriteRequest req = VALET__V1__WRITE_REQUEST__INIT;
	Valet__V1__WriteHeader hdr = VALET__V1__WRITE_HEADER__INIT;
	uint8_t digest[SHA256_DIGEST_SIZE];
	struct upload u = { .fd = fd, .name = name };
	_cleanup_free_ uint8_t *buf = malloc(CP_CHUNK);
	bool regular = S_ISREG(st->st_mode);
	int r;

	if (!buf)
		return maitctl_local_error(ctl, -ENOMEM, "out of memory");
	u.buf = buf;
	hdr.path = (char *)guest;
	hdr.user = (char *)(o->user ? o->user : "");
	hdr.make_parents = o->parents;
	hdr.no_replace = o->no_replace;
	/* The local file's permission bits, as scp gives them; from a pipe,
	 * the guest's default (0644, or the replaced file's). */
	if (o->has_mode || regular) {
		hdr._mode_case = VALET__V1__WRITE_HEADER___MODE_MODE;
		hdr.mode = o->has_mode ? o->mode : (uint32_t)(st->st_mode & 07777);
	}
	if (o->sha256 && regular) {
		r = hash_file(fd, buf, digest);
		if (r < 0)
			return maitctl_local_error(ctl, r, "%s: %s", name, strerror(-r));
		hdr.sha256.data = digest;
		hdr.sha256.len = sizeof(digest);
	} else if (o->sha256) {
		u.hashing = true;
		sha256_init(&u.sha);
	}
	req.part_case = VALET__V1__WRITE_REQUEST__PART_HEADER;
	req.header = &hdr;

	r = maitctl_stream_start(&u.s, ctl, FILES_SERVICE "Write", o->timeout_usec, &upload_ops, &u);
	if (r)
		return r;
	maitctl_progress_init(&u.progress, regular ? (uint64_t)st->st_size : 0);
	u.s.progress = &u.progress;
	if (maitctl_stream_send(&u.s, &req.base) >= 0)
		upload_pump(&u.s, &u);
	r = maitctl_stream_finish(&u.s);
	_cleanup_response_ Valet__V1__WriteResponse *resp = u.resp;
	if (r != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	if (!resp || resp->sha256.len != SHA256_DIGEST_SIZE) {
		maitctl_progress_clear(&u.progress);
		maitctl_print_error(ctl, RPC_INTERNAL, "the guest's answer has no SHA-256");
		return MAITCTL_EXIT_RPC_ERROR;
	}
	maitctl_progress_end(&u.progress, u.sent);
	if (u.hashing) {
		sha256_final(&u.sha, digest);
		if (memcmp(digest, resp->sha256.data, sizeof(digest)) != 0) {
			char msg[600];
			snprintf(msg, sizeof(msg), "%s: the guest wrote data whose SHA-256 differs from what was sent",
				 guest);
			maitctl_print_error(ctl, RPC_DATA_LOSS, msg);
			return MAITCTL_EXIT_RPC_ERROR;
		}
	}
	*ret = (struct cp_result){ .path = guest, .bytes = u.sent, .has_sha256 = true };
	memcpy(ret->sha256, resp->sha256.data, SHA256_DIGEST_SIZE);
	return 0;
}

struct download {
	struct maitctl_stream s;
	const struct cp_opts *o;
	const char *guest;
	int dirfd; /* < 0: standard output */
	const char *name;
	const char *local;
	struct files_writer *w;
	bool have_info;
	bool have_digest;
	uint8_t digest[SHA256_DIGEST_SIZE];
	struct sha256 sha; /* standard output with --sha256 */
	uint64_t got;
	struct maitctl_progress progress;
};

static int download_data(struct download *d, const uint8_t *data, size_t len)
{
	struct files_err err = { "" };

	if (!d->have_info || d->have_digest)
		return maitctl_stream_fail(&d->s, RPC_INTERNAL, "the guest sent data out of order");
	if (d->w) {
		int r = files_writer_write(d->w, data, len, &err);
		if (r < 0)
			return maitctl_stream_fail(&d->s, files_grpc_code(r), "%s", err.msg);
	} else {
		int r = buf_write_all(STDOUT_FILENO, data, len);
		if (r < 0)
			return maitctl_stream_fail(&d->s, files_grpc_code(r), "standard output: %s", strerror(-r));
		if (d->o->sha256)
			sha256_update(&d->sha, data, len);
	}
	d->got += len;
	maitctl_progress_update(&d->progress, d->got);
	return 0;
}

static int download_info(struct download *d, const Valet__V1__FileInfo *info)
{
	struct files_err err = { "" };

	if (d->have_info || !info)
		return maitctl_stream_fail(&d->s, RPC_INTERNAL, "the guest sent a second FileInfo");
	d->have_info = true;
	d->progress.total = info->size;
	if (d->dirfd < 0)
		return 0;
	/* The guest's mode, as a file it made would have it. */
	struct files_write_opts wo = {
		.has_mode = true,
		.mode = info->mode & 07777,
		.no_replace = d->o->no_replace,
		.no_digest = !d->o->sha256,
	};
	int r = files_writer_open_at(d->dirfd, d->name, d->local, &wo, &d->w, &err);
	if (r < 0)
		return maitctl_stream_fail(&d->s, files_grpc_code(r), "%s", err.msg[0] ? err.msg : strerror(-r));
	return 0;
}

static int download_message(struct maitctl_stream *s, const uint8_t *data, size_t len, void *userdata)
{
	struct download *d = userdata;
	const uint8_t *p;
	size_t n;

	if (pb_bytes_field(data, len, 2, &p, &n))
		return download_data(d, p, n);
	_cleanup_response_ Valet__V1__ReadResponse *m = valet__v1__read_response__unpack(NULL, len, data);
	if (!m)
		return maitctl_stream_fail(s, RPC_INTERNAL, "cannot decode the guest's ReadResponse");
	switch (m->part_case) {
	case VALET__V1__READ_RESPONSE__PART_INFO: return download_info(d, m->info);
	case VALET__V1__READ_RESPONSE__PART_DATA: return download_data(d, m->data.data, m->data.len);
	case VALET__V1__READ_RESPONSE__PART_SHA256:
		if (d->have_digest || m->sha256.len != SHA256_DIGEST_SIZE)
			return maitctl_stream_fail(s, RPC_INTERNAL, "the guest sent a bad SHA-256");
		memcpy(d->digest, m->sha256.data, SHA256_DIGEST_SIZE);
		d->have_digest = true;
		return 0;
	default: return maitctl_stream_fail(s, RPC_INTERNAL, "the guest sent an empty ReadResponse");
	}
}

static const struct maitctl_stream_ops download_ops = { download_message, NULL };

int cp_download_file(struct maitctl *ctl, const struct cp_opts *o, const char *guest, int dirfd, const char *name,
		     const char *local, struct cp_result *ret)
{
	Valet__V1__ReadRequest req = VALET__V1__READ_REQUEST__INIT;
	struct download d = { .o = o, .guest = guest, .dirfd = dirfd, .name = name, .local = local };
	struct files_err err = { "" };
	uint8_t digest[SHA256_DIGEST_SIZE];
	int r;

	req.path = (char *)guest;
	req.user = (char *)(o->user ? o->user : "");
	req.sha256 = o->sha256;
	sha256_init(&d.sha);
	r = maitctl_stream_start(&d.s, ctl, FILES_SERVICE "Read", o->timeout_usec, &download_ops, &d);
	if (r)
		return r;
	maitctl_progress_init(&d.progress, 0);
	/* Standard output may be the terminal the line would be drawn on. */
	if (dirfd < 0)
		d.progress.on = false;
	d.s.progress = &d.progress;
	if (maitctl_stream_send(&d.s, &req.base) >= 0)
		(void)maitctl_stream_close_send(&d.s);
	r = maitctl_stream_finish(&d.s);
	_cleanup_(files_writer_freep) struct files_writer *w = d.w; /* unlinks what is not committed */
	if (r != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	maitctl_progress_end(&d.progress, d.got);
	if (!d.have_info) {
		maitctl_print_error(ctl, RPC_INTERNAL, "the guest's answer has no FileInfo");
		return MAITCTL_EXIT_RPC_ERROR;
	}
	if (o->sha256 && !d.have_digest) {
		maitctl_print_error(ctl, RPC_DATA_LOSS, "the guest's answer has no SHA-256");
		return MAITCTL_EXIT_RPC_ERROR;
	}
	if (w) {
		if (o->sha256)
			files_writer_expect(w, d.digest);
		r = files_writer_commit(w, digest, NULL, &err);
		if (r == -FILES_EDIGEST) {
			char msg[700];
			snprintf(msg, sizeof(msg), "%s: SHA-256 of the data received differs from the guest's", guest);
			maitctl_print_error(ctl, RPC_DATA_LOSS, msg);
			return MAITCTL_EXIT_RPC_ERROR;
		}
		if (r < 0)
			return maitctl_local_error(ctl, r, "%s", err.msg[0] ? err.msg : strerror(-r));
	} else if (o->sha256) {
		sha256_final(&d.sha, digest);
		if (memcmp(digest, d.digest, sizeof(digest)) != 0) {
			char msg[700];
			snprintf(msg, sizeof(msg), "%s: SHA-256 of the data received differs from the guest's", guest);
			maitctl_print_error(ctl, RPC_DATA_LOSS, msg);
			return MAITCTL_EXIT_RPC_ERROR;
		}
	}
	*ret = (struct cp_result){ .path = local, .bytes = d.got, .has_sha256 = o->sha256 };
	memcpy(ret->sha256, d.digest, SHA256_DIGEST_SIZE);
	return 0;
}
