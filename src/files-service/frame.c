#include "frame.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "base/macro.h"

/* Room for a few frames in flight: the worker reads ahead of maitred's
 * HTTP/2 side by this much at most. */
#define SNDBUF (4 * FSVC_FRAME_MAX)

int fsvc_socketpair(int fds[2])
{
	int size = SNDBUF;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0)
		return -errno;
	for (int i = 0; i < 2; i++)
		if (setsockopt(fds[i], SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size)) < 0)
			(void)setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
	return 0;
}

int fsvc_send(int fd, enum fsvc_frame_kind kind, const void *a, size_t alen, const void *b, size_t blen)
{
	uint8_t k = (uint8_t)kind;
	struct iovec iov[] = {
		{ &k, 1 },
		{ (void *)a, alen },
		{ (void *)b, blen },
	};
	struct msghdr mh = { .msg_iov = iov, .msg_iovlen = ARRAY_SIZE(iov) };

	if (1 + alen + blen > FSVC_FRAME_MAX)
		return -E2BIG;
	for (;;) {
		if (sendmsg(fd, &mh, MSG_NOSIGNAL) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

int fsvc_send_headed_message(int fd, enum fsvc_frame_kind kind, const void *head, size_t head_len,
			     const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	_cleanup_free_ uint8_t *buf = NULL;

	if (1 + head_len + len > FSVC_FRAME_MAX)
		return -E2BIG;
	buf = malloc(len ? len : 1);
	if (!buf)
		return -ENOMEM;
	protobuf_c_message_pack(m, buf);
	return head_len ? fsvc_send(fd, kind, head, head_len, buf, len) : fsvc_send(fd, kind, buf, len, NULL, 0);
}

int fsvc_send_message(int fd, enum fsvc_frame_kind kind, const ProtobufCMessage *m)
{
	return fsvc_send_headed_message(fd, kind, NULL, 0, m);
}

size_t fsvc_bytes_field_head(uint8_t out[FSVC_FIELD_HEAD_MAX], unsigned field, size_t len)
{
	size_t n = 0;

	out[n++] = (uint8_t)(field << 3 | 2); /* fields below 16: one byte */
	do {
		out[n] = (uint8_t)(len & 0x7f);
		len >>= 7;
		if (len)
			out[n] |= 0x80;
		n++;
	} while (len);
	return n;
}

uint8_t *fsvc_batch_add(uint8_t *buf, size_t *len, enum fsvc_frame_kind kind, size_t n)
{
	uint8_t *p = buf + *len;

	p[0] = (uint8_t)kind;
	for (int i = 0; i < 4; i++)
		p[1 + i] = (uint8_t)((uint32_t)n >> (8 * i));
	*len += FSVC_SUB_HEAD + n;
	return p + FSVC_SUB_HEAD;
}

void fsvc_batch_put(uint8_t *buf, size_t *len, enum fsvc_frame_kind kind, const void *a, size_t alen, const void *b,
		    size_t blen)
{
	uint8_t *p = fsvc_batch_add(buf, len, kind, alen + blen);

	if (alen)
		memcpy(p, a, alen);
	if (blen)
		memcpy(p + alen, b, blen);
}

/* The size of the frame at p (len bytes left), head included; 0 when cut. */
static size_t sub_size(const uint8_t *p, size_t len)
{
	if (len < FSVC_SUB_HEAD)
		return 0;
	size_t n = (size_t)p[1] | (size_t)p[2] << 8 | (size_t)p[3] << 16 | (size_t)p[4] << 24;
	return n <= len - FSVC_SUB_HEAD ? FSVC_SUB_HEAD + n : 0;
}

int fsvc_batch_next(const uint8_t *p, size_t len, size_t *off, uint8_t *ret_kind, const uint8_t **ret_data,
		    size_t *ret_len)
{
	if (*off >= len)
		return 0;
	size_t n = sub_size(p + *off, len - *off);
	if (n == 0)
		return -EBADMSG;
	*ret_kind = p[*off];
	*ret_data = p + *off + FSVC_SUB_HEAD;
	*ret_len = n - FSVC_SUB_HEAD;
	*off += n;
	return 1;
}

size_t fsvc_batch_span(const uint8_t *p, size_t len, size_t max)
{
	size_t off = 0;

	while (off < len) {
		size_t n = sub_size(p + off, len - off);
		if (n == 0)
			return len; /* cut: maitred's own buffer never is */
		if (off > 0 && off + n > max)
			break;
		off += n;
	}
	return off;
}
