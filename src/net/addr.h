/* Socket addresses as users write them:
 *   vsock:CID:PORT   CID -1 (or 4294967295) means any, for listening
 *   unix:PATH        a path-based unix socket
 *   tcp:HOST:PORT    IPv4 dotted quad or [IPv6]; for VM tests without vsock */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum addr_family {
	ADDR_VSOCK,
	ADDR_UNIX,
	ADDR_TCP,
};

struct addr {
	enum addr_family family;
	struct sockaddr_storage sa;
	socklen_t sa_len;
};

/* -EINVAL for a malformed string, -ENAMETOOLONG for a unix path too long. */
int addr_parse(const char *s, struct addr *ret);
/* Writes a human-readable form ("vsock:2:8888") into buf. */
const char *addr_format(const struct addr *a, char *buf, size_t size);
/* The unix socket path, or NULL. */
const char *addr_unix_path(const struct addr *a);

#define ADDR_SYNTAX "vsock:CID:PORT, unix:PATH or tcp:HOST:PORT"
