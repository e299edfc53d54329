#include <errno.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "net/addr.h"
#include "net/hvsock.h"
#include "net/sock.h"
#include "test.h"

static const char *fmt(const char *in)
{
	static char buf[128];
	struct addr a;
	if (addr_parse(in, &a) < 0)
		return "ERR";
	return addr_format(&a, buf, sizeof(buf));
}

TEST(parse_valid)
{
	CHECK_STR(fmt("vsock:2:8888"), "vsock:2:8888");
	CHECK_STR(fmt("vsock:-1:8888"), "vsock:-1:8888");
	CHECK_STR(fmt("vsock:4294967295:9001"), "vsock:-1:9001");
	CHECK_STR(fmt("unix:/run/x.sock"), "unix:/run/x.sock");
	CHECK_STR(fmt("tcp:127.0.0.1:80"), "tcp:127.0.0.1:80");
	CHECK_STR(fmt("tcp:[::1]:8080"), "tcp:[::1]:8080");
	CHECK_STR(fmt("hvsock:/run/fc.vsock:8888"), "hvsock:/run/fc.vsock:8888");
	/* The port is after the last colon; the path may hold colons. */
	CHECK_STR(fmt("hvsock:/run/a:b.vsock:9001"), "hvsock:/run/a:b.vsock:9001");
	struct addr a;
	CHECK_EQ(addr_parse("hvsock:/run/fc.vsock:8888", &a), 0);
	CHECK_EQ(a.family, ADDR_HVSOCK);
	CHECK_EQ(a.hvsock_port, 8888);
	CHECK_STR(addr_unix_path(&a), "/run/fc.vsock");
	CHECK_EQ(sock_listen(&a, 1, &(int){ -1 }), -EAFNOSUPPORT);
}

TEST(hvsock_reply)
{
	uint32_t port = 0;
	CHECK_EQ(hvsock_parse_reply("OK 1073741824", 13, &port), 0);
	CHECK_EQ(port, 1073741824u);
	CHECK_EQ(hvsock_parse_reply("ERR", 3, &port), -ECONNREFUSED);
	CHECK_EQ(hvsock_parse_reply("ERR no listener", 15, &port), -ECONNREFUSED);
	const char *bad[] = { "", "OK", "OK ", "OK x", "OK 99999999999", "ok 5", "OK  5", "HTTP/1.1 400", "OK 5 6" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		CHECK_EQ(hvsock_parse_reply(bad[i], strlen(bad[i]), &port), -EPROTO);
}

/* The answer is read without eating the guest's first bytes after it;
 * an EOF, mid-line or before anything, is told apart. */
TEST(hvsock_read_reply_stops_at_the_newline)
{
	int sv[2];
	struct hvsock_reply st = { 0 };
	uint32_t port = 0;
	char rest[8] = { 0 };

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	CHECK_EQ(hvsock_read_reply(sv[0], &st, &port), -EAGAIN);
	CHECK_EQ(write(sv[1], "OK 12", 5), 5);
	CHECK_EQ(hvsock_read_reply(sv[0], &st, &port), -EAGAIN);
	CHECK_EQ(write(sv[1], "34\r\nGUEST", 9), 9);
	CHECK_EQ(hvsock_read_reply(sv[0], &st, &port), 0);
	CHECK_EQ(port, 1234);
	CHECK_EQ(read(sv[0], rest, sizeof(rest)), 5);
	CHECK_STR(rest, "GUEST");
	close(sv[1]);
	close(sv[0]);

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	close(sv[1]);
	st = (struct hvsock_reply){ 0 };
	CHECK_EQ(hvsock_read_reply(sv[0], &st, &port), -ECONNREFUSED);
	close(sv[0]);

	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	CHECK_EQ(write(sv[1], "OK 1", 4), 4);
	close(sv[1]);
	st = (struct hvsock_reply){ 0 };
	CHECK_EQ(hvsock_read_reply(sv[0], &st, &port), -EPROTO);
	close(sv[0]);

	/* A line longer than any answer is garbage, however it goes on. */
	char junk[HVSOCK_REPLY_MAX + 8];
	memset(junk, 'x', sizeof(junk));
	CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
	CHECK_EQ(write(sv[1], junk, sizeof(junk)), (ssize_t)sizeof(junk));
	st = (struct hvsock_reply){ 0 };
	CHECK_EQ(hvsock_read_reply(sv[0], &st, &port), -EPROTO);
	close(sv[1]);
	close(sv[0]);
}

TEST(parse_invalid)
{
	const char *bad[] = { "",
			      "vsock",
			      "vsock:",
			      "vsock:2",
			      "vsock:2:",
			      "vsock:x:1",
			      "vsock:2:-5",
			      "vsock:2:99999999999",
			      "vsock:-2:1",
			      "unix:",
			      "tcp:1.2.3.4",
			      "tcp:1.2.3.4:70000",
			      "tcp:host:80",
			      "tcp::80",
			      "http://x",
			      "vsock: 2:1",
			      "vsock:+2:1",
			      "hvsock:",
			      "hvsock:/x",
			      "hvsock:/x:",
			      "hvsock::8888",
			      "hvsock:/x:port",
			      "hvsock:/x:-1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct addr a;
		if (addr_parse(bad[i], &a) != -EINVAL) {
			snprintf(test_failure, sizeof(test_failure), "accepted '%s'", bad[i]);
			test_failed_flag = true;
			return;
		}
	}
	char longpath[300] = "unix:/";
	memset(longpath + 6, 'a', 200);
	struct addr a;
	CHECK_EQ(addr_parse(longpath, &a), -ENAMETOOLONG);
}

TEST(peer_policy)
{
	struct peer_policy p;
	struct peer peer = { .family = ADDR_VSOCK, .cid = 2 };
	peer_policy_init(&p);
	CHECK(peer_policy_check(&p, &peer));
	peer.cid = 1;
	CHECK(!peer_policy_check(&p, &peer));
	peer.cid = 3;
	CHECK(!peer_policy_check(&p, &peer));
	struct peer_policy any = { .self_uid = p.self_uid };
	CHECK_EQ(peer_policy_allow_cid(&any, VMADDR_CID_ANY), 0);
	CHECK(peer_policy_check(&any, &peer));
	CHECK_EQ(peer_policy_allow_cid(&p, 3), 0);
	CHECK(peer_policy_check(&p, &peer));
	struct peer u = { .family = ADDR_UNIX, .uid = 0 };
	CHECK(peer_policy_check(&p, &u));
	u.uid = p.self_uid;
	CHECK(peer_policy_check(&p, &u));
	u.uid = 12345;
	if (p.self_uid != 12345)
		CHECK(!peer_policy_check(&p, &u));
}

TEST(unix_listen_is_0600_and_replaces_stale_socket)
{
	char dir[] = "/tmp/valet-addr-XXXXXX", path[128], spec[140];
	struct addr a;
	struct stat st;
	int fd, fd2, c, s;
	struct peer peer;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/s", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	CHECK_EQ(addr_parse(spec, &a), 0);
	CHECK_EQ(sock_listen(&a, 4, &fd), 0);
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	close(fd);
	/* The socket file is left behind: listening again replaces it. */
	CHECK_EQ(sock_listen(&a, 4, &fd2), 0);
	int r = sock_connect(&a, &c);
	CHECK(r == 0 || r == -EINPROGRESS);
	CHECK_EQ(sock_accept(fd2, &s, &peer), 0);
	CHECK_EQ(peer.family, ADDR_UNIX);
	CHECK_EQ(peer.pid, getpid());
	CHECK_EQ(peer.uid, geteuid());
	CHECK(strstr(peer.desc, "unix pid"));
	close(s);
	close(c);
	close(fd2);
	/* A regular file in the way is not clobbered. */
	unlink(path);
	FILE *f = fopen(path, "w");
	fclose(f);
	CHECK_EQ(sock_listen(&a, 4, &fd), -EEXIST);
	unlink(path);
	rmdir(dir);
}
