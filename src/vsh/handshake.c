#include "handshake.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>

#include "base/time-util.h"
#include "vsh/frame.h"

int vsh_send_all(int fd, const uint8_t *data, size_t len, int timeout_msec)
{
	while (len) {
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			if (timeout_msec <= 0 || poll(&p, 1, timeout_msec) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

int vsh_send_setup_response(int fd, VmTools__Vsh__ConnectionStatus status, const char *description, int32_t pid,
			    int timeout_msec)
{
	VmTools__Vsh__SetupConnectionResponse resp = VM_TOOLS__VSH__SETUP_CONNECTION_RESPONSE__INIT;
	uint8_t frame[VSH_FRAME_MAX];

	resp.status = status;
	resp.description = (char *)description;
	resp.pid = pid;
	int n = vsh_frame_encode(&resp.base, frame, sizeof(frame));
	return n < 0 ? n : vsh_send_all(fd, frame, (size_t)n, timeout_msec);
}

int vsh_read_frame(int fd, uint8_t *buf, size_t size, size_t *len, uint64_t deadline, const uint8_t **ret_msg,
		   size_t *ret_msg_len, size_t *ret_frame_len)
{
	for (;;) {
		int r = vsh_frame_next(buf, *len, ret_msg, ret_msg_len, ret_frame_len);
		if (r < 0)
			return r;
		if (r > 0)
			return 0;
		if (*len == size)
			return -EMSGSIZE; /* cannot happen with VSH_FRAME_MAX bytes */
		uint64_t now = now_usec();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (now >= deadline)
			return -ETIMEDOUT;
		uint64_t ms = (deadline - now) / 1000 + 1;
		int n = poll(&p, 1, ms > 60000 ? 60000 : (int)ms);
		if (n < 0 && errno != EINTR)
			return -errno;
		if (n <= 0)
			continue;
		ssize_t got = recv(fd, buf + *len, size - *len, MSG_DONTWAIT);
		if (got == 0)
			return -ESHUTDOWN;
		if (got < 0 && errno != EAGAIN && errno != EINTR)
			return -errno;
		if (got > 0)
			*len += (size_t)got;
	}
}
