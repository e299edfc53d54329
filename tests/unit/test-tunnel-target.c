/* valet.v1.Tunnel's target checks (tunnel-service/target.c): what is
 * accepted, as which address, and the message for what is not. */
#include <errno.h>

#include "net/addr.h"
#include "test.h"
#include "tunnel-service/target.h"

/* The address a target becomes ("tcp:127.0.0.1:80"), or "ERR: message". */
static const char *parse(const char *host, uint32_t port, const char *unix_path)
{
	static char out[400];
	char err[256] = "";
	struct addr a;
	int r = tunnel_target_parse(host, port, unix_path, &a, err, sizeof(err));

	if (r < 0) {
		snprintf(out, sizeof(out), "ERR%s: %s", r == -EINVAL ? "" : " (not EINVAL)", err);
		return out;
	}
	return addr_format(&a, out, sizeof(out));
}

TEST(tcp_targets)
{
	CHECK_STR(parse("", 80, ""), "tcp:127.0.0.1:80");
	CHECK_STR(parse(NULL, 1, NULL), "tcp:127.0.0.1:1");
	CHECK_STR(parse("localhost", 65535, ""), "tcp:127.0.0.1:65535");
	CHECK_STR(parse("10.0.2.15", 8080, ""), "tcp:10.0.2.15:8080");
	CHECK_STR(parse("::1", 8080, ""), "tcp:[::1]:8080");
	CHECK_STR(parse("[::1]", 8080, ""), "tcp:[::1]:8080");
	CHECK_STR(parse("fe80::1:2", 22, ""), "tcp:[fe80::1:2]:22");
}

TEST(unix_targets)
{
	CHECK_STR(parse("", 0, "/run/app.sock"), "unix:/run/app.sock");
	char longest[108];
	memset(longest, 'a', sizeof(longest) - 1);
	longest[0] = '/';
	longest[sizeof(longest) - 1] = '\0';
	CHECK(strncmp(parse("", 0, longest), "unix:/aaa", 9) == 0);
}

TEST(bad_targets_are_named)
{
	CHECK_STR(parse("", 0, ""), "ERR: target: set port (1-65535) or unix_path");
	CHECK_STR(parse("127.0.0.1", 0, ""), "ERR: port 0 is out of range (1-65535)");
	CHECK_STR(parse("", 70000, ""), "ERR: port 70000 is out of range (1-65535)");
	CHECK_STR(parse("", 80, "/x.sock"), "ERR: target: set either unix_path or host and port, not both");
	CHECK_STR(parse("127.0.0.1", 0, "/x.sock"), "ERR: target: set either unix_path or host and port, not both");
	CHECK_STR(parse("", 0, "run/x.sock"), "ERR: unix_path 'run/x.sock' is not absolute");
	CHECK_STR(parse("example.com", 80, ""),
		  "ERR: host 'example.com' is not a numeric IPv4 or IPv6 address or localhost (the guest agent "
		  "resolves no names)");
	CHECK_STR(parse("1.2.3", 80, "")[0] == 'E' ? "E" : "accepted", "E");
	CHECK_STR(parse("[1.2.3.4]", 80, "")[0] == 'E' ? "E" : "accepted", "E");
	CHECK_STR(parse("[::1", 80, "")[0] == 'E' ? "E" : "accepted", "E");
	CHECK_STR(parse("a\nb", 80, ""),
		  "ERR: host 'a\\nb' is not a numeric IPv4 or IPv6 address or localhost (the guest agent resolves no "
		  "names)");
	char toolong[109];
	memset(toolong, 'a', sizeof(toolong) - 1);
	toolong[0] = '/';
	toolong[sizeof(toolong) - 1] = '\0';
	CHECK_STR(parse("", 0, toolong), "ERR: unix_path of 108 bytes is too long (at most 107)");
}
