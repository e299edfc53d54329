/* Socket addresses as users write them:
 *   vsock:CID:PORT   CID -1 (or 4294967295) means any, for listening
 *   unix:PATH        a path-based unix socket
 *   tcp:HOST:PORT    IPv4 dotted quad or [IPv6]; for VM tests without vsock
 *   hvsock:PATH:PORT guest port PORT through the unix socket PATH of a VMM
 *                    that multiplexes vsock that way (Firecracker, Cloud
 *                    Hypervisor: "hybrid vsock"); for connecting only */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

enum addr_family {
	ADDR_VSOCK,
	ADDR_UNIX,
	ADDR_TCP,
	ADDR_HVSOCK,
};

struct addr {
	enum addr_family family;
	struct sockaddr_storage sa;
	socklen_t sa_len;
	uint32_t hvsock_port; /* ADDR_HVSOCK: the guest port; sa is the VMM's socket */
};

/* -EINVAL for a malformed string, -ENAMETOOLONG for a unix path too long. */
int addr_parse(const char *s, struct addr *ret);
/* Writes a human-readable form ("vsock:2:8888") into buf. */
const char *addr_format(const struct addr *a, char *buf, size_t size);
/* The unix socket path (the VMM's for hvsock), or NULL. */
const char *addr_unix_path(const struct addr *a);

#define ADDR_SYNTAX "vsock:CID:PORT, unix:PATH, tcp:HOST:PORT or hvsock:PATH:PORT"
/* What can be listened on: hvsock is the VMM's socket, for connecting. */
#define ADDR_LISTEN_SYNTAX "vsock:CID:PORT, unix:PATH or tcp:HOST:PORT"
