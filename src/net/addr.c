#include "addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <linux/vm_sockets.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "base/parse.h"

static int parse_vsock(const char *rest, struct addr *a)
{
	char cid_str[16];
	const char *colon = strchr(rest, ':');
	uint32_t cid, port;

	if (!colon || (size_t)(colon - rest) >= sizeof(cid_str))
		return -EINVAL;
	memcpy(cid_str, rest, (size_t)(colon - rest));
	cid_str[colon - rest] = 0;
	if (strcmp(cid_str, "-1") == 0)
		cid = VMADDR_CID_ANY;
	else if (parse_u32(cid_str, &cid) < 0)
		return -EINVAL;
	if (parse_u32(colon + 1, &port) < 0)
		return -EINVAL;

	struct sockaddr_vm *svm = (struct sockaddr_vm *)&a->sa;
	svm->svm_family = AF_VSOCK;
	svm->svm_cid = cid;
	svm->svm_port = port;
	a->sa_len = sizeof(*svm);
	a->family = ADDR_VSOCK;
	return 0;
}

static int parse_unix(const char *path, struct addr *a)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&a->sa;
	size_t len = strlen(path);

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, len + 1);
	a->sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len + 1);
	a->family = ADDR_UNIX;
	return 0;
}

/* PATH:PORT, split at the last colon: a path may contain colons, a port
 * may not. */
static int parse_hvsock(const char *rest, struct addr *a)
{
	char path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
	const char *colon = strrchr(rest, ':');
	uint32_t port;
	int r;

	if (!colon || colon == rest)
		return -EINVAL;
	if ((size_t)(colon - rest) >= sizeof(path))
		return -ENAMETOOLONG;
	if (parse_u32(colon + 1, &port) < 0)
		return -EINVAL;
	memcpy(path, rest, (size_t)(colon - rest));
	path[colon - rest] = 0;
	r = parse_unix(path, a);
	if (r < 0)
		return r;
	a->family = ADDR_HVSOCK;
	a->hvsock_port = port;
	return 0;
}

static int parse_tcp(const char *rest, struct addr *a)
{
	char host[INET6_ADDRSTRLEN + 2];
	const char *colon = strrchr(rest, ':');
	uint32_t port;
	size_t hlen;

	if (!colon)
		return -EINVAL;
	hlen = (size_t)(colon - rest);
	if (hlen == 0 || hlen >= sizeof(host))
		return -EINVAL;
	memcpy(host, rest, hlen);
	host[hlen] = 0;
	if (parse_u32(colon + 1, &port) < 0 || port > 65535)
		return -EINVAL;

	if (host[0] == '[' && host[hlen - 1] == ']') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->sa;
		host[hlen - 1] = 0;
		if (inet_pton(AF_INET6, host + 1, &s6->sin6_addr) != 1)
			return -EINVAL;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		a->sa_len = sizeof(*s6);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&a->sa;
		if (inet_pton(AF_INET, host, &s4->sin_addr) != 1)
			return -EINVAL;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		a->sa_len = sizeof(*s4);
	}
	a->family = ADDR_TCP;
	return 0;
}

int addr_parse(const char *s, struct addr *ret)
{
	struct addr a = { 0 };
	int r;

	if (!s)
		return -EINVAL;
	if (strncmp(s, "vsock:", 6) == 0)
		r = parse_vsock(s + 6, &a);
	else if (strncmp(s, "unix:", 5) == 0)
		r = parse_unix(s + 5, &a);
	else if (strncmp(s, "tcp:", 4) == 0)
		r = parse_tcp(s + 4, &a);
	else if (strncmp(s, "hvsock:", 7) == 0)
		r = parse_hvsock(s + 7, &a);
	else
		r = -EINVAL;
	if (r < 0)
		return r;
	*ret = a;
	return 0;
}

const char *addr_unix_path(const struct addr *a)
{
	return a->family == ADDR_UNIX || a->family == ADDR_HVSOCK ? ((const struct sockaddr_un *)&a->sa)->sun_path
								  : NULL;
}

const char *addr_format(const struct addr *a, char *buf, size_t size)
{
	char host[INET6_ADDRSTRLEN];

	switch (a->family) {
	case ADDR_VSOCK: {
		const struct sockaddr_vm *svm = (const struct sockaddr_vm *)&a->sa;
		if (svm->svm_cid == VMADDR_CID_ANY)
			snprintf(buf, size, "vsock:-1:%u", svm->svm_port);
		else
			snprintf(buf, size, "vsock:%u:%u", svm->svm_cid, svm->svm_port);
		break;
	}
	case ADDR_UNIX: snprintf(buf, size, "unix:%s", addr_unix_path(a)); break;
	case ADDR_HVSOCK: snprintf(buf, size, "hvsock:%s:%u", addr_unix_path(a), a->hvsock_port); break;
	case ADDR_TCP:
		if (a->sa.ss_family == AF_INET6) {
			const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->sa;
			inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
			snprintf(buf, size, "tcp:[%s]:%u", host, ntohs(s6->sin6_port));
		} else {
			const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->sa;
			inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
			snprintf(buf, size, "tcp:%s:%u", host, ntohs(s4->sin_port));
		}
		break;
	}
	return buf;
}
