#include "hvsock.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "base/parse.h"

int hvsock_send_connect(int fd, uint32_t port)
{
	char line[32];
	int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
	ssize_t w;

	do
		w = send(fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (w < 0 && errno == EINTR);
	if (w < 0)
		return -errno;
	/* A partial write of a few bytes into an empty socket buffer does
	 * not happen; if it did, the VMM would see garbage. */
	return w == n ? 0 : -EIO;
}

int hvsock_parse_reply(const char *line, size_t len, uint32_t *ret_host_port)
{
	char num[16];
	uint32_t port;

	if (len >= 3 && memcmp(line, "ERR", 3) == 0)
		return -ECONNREFUSED;
	if (len < 4 || memcmp(line, "OK ", 3) != 0 || len - 3 >= sizeof(num))
		return -EPROTO;
	memcpy(num, line + 3, len - 3);
	num[len - 3] = 0;
	if (parse_u32(num, &port) < 0)
		return -EPROTO;
	*ret_host_port = port;
	return 0;
}

int hvsock_read_reply(int fd, struct hvsock_reply *st, uint32_t *ret_host_port)
{
	/* A byte at a time: only the answer line is ours to consume, and an
	 * EOF in the middle of it must be seen (a peek would hide it). */
	for (;;) {
		char c;
		ssize_t n = recv(fd, &c, 1, MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN : -errno;
		}
		if (n == 0)
			return st->len ? -EPROTO : -ECONNREFUSED;
		if (c == '\n')
			break;
		if (st->len == sizeof(st->line))
			return -EPROTO;
		st->line[st->len++] = c;
	}
	size_t len = st->len;
	if (len && st->line[len - 1] == '\r')
		len--;
	return hvsock_parse_reply(st->line, len, ret_host_port);
}

const char *hvsock_strerror(int r)
{
	switch (r) {
	case -ECONNREFUSED: return "the VMM refused the port (is anything listening on it in the guest?)";
	case -EPROTO: return "the VMM answered something other than \"OK <port>\"";
	case -ETIMEDOUT: return "the VMM did not answer in time";
	default: return strerror(-r);
	}
}
