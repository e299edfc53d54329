/* The host side of "hybrid vsock" (Firecracker, Cloud Hypervisor): the VMM
 * exposes the guest's vsock ports through one unix socket. The host
 * connects to it, writes "CONNECT <port>\n" and reads "OK <host port>\n";
 * from then on the stream is the guest's port. Anything else (EOF, an
 * error line, garbage) means the connection was not made. */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* The VMM's answer is a short line: more than this is garbage. */
#define HVSOCK_REPLY_MAX 32
/* How long a VMM may take to answer CONNECT. */
#define HVSOCK_HANDSHAKE_USEC (5 * 1000000ull)

/* Writes "CONNECT <port>\n" (a fresh socket's buffer always takes it). */
int hvsock_send_connect(int fd, uint32_t port);

/* Parses an answer line of len bytes (without its '\n'):
 * 0 and the host-side port for "OK <port>", -ECONNREFUSED for an error
 * line ("ERR..."), -EPROTO for anything else. */
int hvsock_parse_reply(const char *line, size_t len, uint32_t *ret_host_port);

/* The answer read so far. */
struct hvsock_reply {
	char line[HVSOCK_REPLY_MAX];
	size_t len;
};

/* Reads the answer from a non-blocking socket, consuming nothing after its
 * newline (the guest's first bytes may follow at once). -EAGAIN: not all
 * there yet, call again when readable; -ECONNREFUSED: refused or closed
 * (nothing listens on that guest port); -EPROTO: not an answer. */
int hvsock_read_reply(int fd, struct hvsock_reply *st, uint32_t *ret_host_port);

/* Words for an error of the two calls above, for messages that name the
 * socket and the port. */
const char *hvsock_strerror(int r);
