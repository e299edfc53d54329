#include "target.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "base/escape.h"
#include "base/macro.h"

static int fail(char *err, size_t size, const char *fmt, ...) _printf_(3, 4);
static int fail(char *err, size_t size, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, size, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static int parse_unix(const char *path, struct addr *ret, char *err, size_t size)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&ret->sa;
	size_t len = strlen(path);

	if (path[0] != '/')
		return fail(err, size, "unix_path '%s' is not absolute", ESCAPED(path));
	if (len >= sizeof(sun->sun_path))
		return fail(err, size, "unix_path of %zu bytes is too long (at most %zu)", len,
			    sizeof(sun->sun_path) - 1);
	*ret = (struct addr){ .family = ADDR_UNIX };
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len + 1);
	ret->sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	return 0;
}

static int parse_tcp(const char *host, uint32_t port, struct addr *ret, char *err, size_t size)
{
	const char *given = host;
	char v6[INET6_ADDRSTRLEN + 2];
	size_t len = strlen(host);
	struct in_addr a4;
	struct in6_addr a6;

	if (port > 65535)
		return fail(err, size, "port %u is out of range (1-65535)", port);
	if (len == 0 || strcmp(host, "localhost") == 0)
		host = TUNNEL_DEFAULT_HOST;
	*ret = (struct addr){ .family = ADDR_TCP };
	if (inet_pton(AF_INET, host, &a4) == 1) {
		struct sockaddr_in *sin = (struct sockaddr_in *)&ret->sa;
		sin->sin_family = AF_INET;
		sin->sin_port = htons((uint16_t)port);
		sin->sin_addr = a4;
		ret->sa_len = sizeof(*sin);
		return 0;
	}
	/* [::1] as in a URL, or ::1. */
	if (len >= 2 && host[0] == '[' && host[len - 1] == ']' && len - 2 < sizeof(v6)) {
		memcpy(v6, host + 1, len - 2);
		v6[len - 2] = '\0';
		host = v6;
	}
	if (inet_pton(AF_INET6, host, &a6) == 1) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&ret->sa;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons((uint16_t)port);
		sin6->sin6_addr = a6;
		ret->sa_len = sizeof(*sin6);
		return 0;
	}
	return fail(err, size,
		    "host '%s' is not a numeric IPv4 or IPv6 address or localhost (the guest agent resolves no names)",
		    ESCAPED(given));
}

int tunnel_target_parse(const char *host, uint32_t port, const char *unix_path, struct addr *ret, char *err,
			size_t err_size)
{
	struct addr a;
	int r;

	host = host ? host : "";
	unix_path = unix_path ? unix_path : "";
	if (unix_path[0] && (port || host[0]))
		return fail(err, err_size, "target: set either unix_path or host and port, not both");
	if (unix_path[0])
		r = parse_unix(unix_path, &a, err, err_size);
	else if (port == 0 && !host[0])
		return fail(err, err_size, "target: set port (1-65535) or unix_path");
	else if (port == 0)
		return fail(err, err_size, "port 0 is out of range (1-65535)");
	else
		r = parse_tcp(host, port, &a, err, err_size);
	if (r < 0)
		return r;
	*ret = a;
	return 0;
}
