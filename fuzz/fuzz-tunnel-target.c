/* valet.v1.Tunnel's first request as a peer sends it, through the target
 * checks of tunnel-service/target.c. An accepted target is exactly one of:
 * an absolute unix path that fits sun_path (the address holds it as
 * given), or a port 1-65535 on 127.0.0.1 (empty host, "localhost") or on
 * the numeric IPv4/IPv6 address the host spells (bare or in brackets).
 * Anything else is -EINVAL with a message.
 *
 * Input: a TunnelRequest in protobuf. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>

#include "fuzz.h"
#include "tunnel-service/target.h"
#include "valet/v1/tunnel.pb-c.h"

static void check(const Valet__V1__TunnelTarget *t)
{
	char err[256] = "";
	struct addr a;
	int r = tunnel_target_parse(t->host, t->port, t->unix_path, &a, err, sizeof(err));

	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL && err[0]);
		return;
	}
	if (t->unix_path[0]) {
		const struct sockaddr_un *sun = (const struct sockaddr_un *)&a.sa;
		FUZZ_CHECK(a.family == ADDR_UNIX && sun->sun_family == AF_UNIX);
		FUZZ_CHECK(t->port == 0 && !t->host[0] && t->unix_path[0] == '/');
		FUZZ_CHECK(strlen(t->unix_path) < sizeof(sun->sun_path) && strcmp(sun->sun_path, t->unix_path) == 0);
		return;
	}
	FUZZ_CHECK(a.family == ADDR_TCP && t->port >= 1 && t->port <= 65535);
	const char *host = t->host[0] && strcmp(t->host, "localhost") != 0 ? t->host : "127.0.0.1";
	if (a.sa.ss_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)&a.sa;
		struct in_addr want;
		FUZZ_CHECK(ntohs(sin->sin_port) == t->port);
		FUZZ_CHECK(inet_pton(AF_INET, host, &want) == 1 && want.s_addr == sin->sin_addr.s_addr);
		return;
	}
	FUZZ_CHECK(a.sa.ss_family == AF_INET6);
	const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&a.sa;
	char bare[64];
	size_t len = strlen(host);
	struct in6_addr want;
	if (host[0] == '[') {
		FUZZ_CHECK(len >= 2 && host[len - 1] == ']' && len - 2 < sizeof(bare));
		memcpy(bare, host + 1, len - 2);
		bare[len - 2] = '\0';
		host = bare;
	}
	FUZZ_CHECK(ntohs(sin6->sin6_port) == t->port);
	FUZZ_CHECK(inet_pton(AF_INET6, host, &want) == 1 && memcmp(&want, &sin6->sin6_addr, sizeof(want)) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	Valet__V1__TunnelRequest *m = valet__v1__tunnel_request__unpack(NULL, size, data);

	if (!m)
		return 0;
	if (m->part_case == VALET__V1__TUNNEL_REQUEST__PART_TARGET && m->target)
		check(m->target);
	valet__v1__tunnel_request__free_unpacked(m, NULL);
	return 0;
}
