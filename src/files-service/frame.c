#include "frame.h"

#include <errno.h>
#include <stdlib.h>
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
