/* A Tunnel.Connect target as a socket address: pure, no I/O, what the
 * tunnel-target fuzz target drives (docs/tunnel.md, "Targets").
 *
 * Accepted: a TCP port 1-65535 on host, where host is empty (127.0.0.1),
 * "localhost" (127.0.0.1), a numeric IPv4 address or a numeric IPv6
 * address, bare or in brackets; or an absolute unix socket path shorter
 * than sun_path. Never a name to resolve: maitred has no NSS. */
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "net/addr.h"

/* The 127.0.0.1 of an empty host. */
#define TUNNEL_DEFAULT_HOST "127.0.0.1"

/* host and unix_path as the message has them (NUL-free: the core refuses
 * strings with a NUL byte); exactly one of port and unix_path may be set.
 * 0 and *ret filled, or -EINVAL with a message naming the field in err. */
int tunnel_target_parse(const char *host, uint32_t port, const char *unix_path, struct addr *ret, char *err,
			size_t err_size);
