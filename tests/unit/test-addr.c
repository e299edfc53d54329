#include <errno.h>
#include <linux/vm_sockets.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "net/addr.h"
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
			      "vsock:+2:1" };
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
