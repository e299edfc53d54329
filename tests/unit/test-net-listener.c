/* net/listener.c: listening on unix and TCP addresses, the peer policy,
 * the hand-off, unlinking at close. Real sockets, one loop, no sleeps: the
 * loop runs until the callback has seen what the test waits for, with a
 * guard timer against hangs. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>

#include "base/macro.h"
#include "base/time-util.h"
#include "loop/loop.h"
#include "net/listener.h"
#include "test.h"

struct seen {
	struct loop *loop;
	int accepted, refused, failed;
	int fd;
	struct peer peer;
	bool hung;
};

static void on_accepted(int fd, const struct peer *peer, void *userdata)
{
	struct seen *s = userdata;
	s->accepted++;
	safe_close(s->fd);
	s->fd = fd;
	s->peer = *peer;
	loop_exit(s->loop, 0);
}

static void on_refused(const struct peer *peer, void *userdata)
{
	struct seen *s = userdata;
	s->refused++;
	s->peer = *peer;
	loop_exit(s->loop, 0);
}

static void on_failed(int error, void *userdata)
{
	struct seen *s = userdata;
	s->failed++;
	loop_exit(s->loop, 0);
}

static const struct net_listener_ops ops = { .accepted = on_accepted, .refused = on_refused, .failed = on_failed };

static void on_guard(struct loop_timer *t, void *userdata)
{
	struct seen *s = userdata;
	s->hung = true;
	loop_exit(s->loop, 0);
}

/* Runs the loop until a callback ends it (or 5 s pass: a hang). */
static void run_once(struct seen *s)
{
	struct loop_timer *guard;
	if (loop_add_timer(s->loop, now_usec() + 5 * USEC_PER_SEC, on_guard, s, &guard) < 0) {
		s->hung = true;
		return;
	}
	(void)loop_run(s->loop);
	loop_timer_free(guard);
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t len = strlen(path);
	if (len >= sizeof(sa.sun_path))
		return -1;
	memcpy(sa.sun_path, path, len + 1);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fd = safe_close(fd);
	return fd;
}

TEST(unix_accepts_hands_off_and_unlinks)
{
	char dir[] = "/tmp/valet-listener-XXXXXX", path[128], spec[140];
	struct seen s = { .fd = -1 };
	struct peer_policy policy;
	struct net_listener *li;
	struct addr a;
	struct stat st;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	CHECK_EQ(addr_parse(spec, &a), 0);
	CHECK_EQ(loop_new(&s.loop), 0);
	peer_policy_init(&policy);
	CHECK_EQ(net_listener_new(s.loop, &policy, 8, &ops, &s, &li), 0);
	CHECK_EQ(net_listener_add(li, &a), 0);
	CHECK_EQ(net_listener_count(li), 1);
	CHECK_EQ(stat(path, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
	CHECK_EQ(st.st_mode & 0777, 0600);

	int c = connect_unix(path);
	CHECK(c >= 0);
	run_once(&s);
	CHECK(!s.hung);
	CHECK_EQ(s.accepted, 1);
	CHECK_EQ(s.refused + s.failed, 0);
	CHECK_EQ(s.peer.family, ADDR_UNIX);
	CHECK_EQ(s.peer.uid, geteuid());
	CHECK_EQ(s.peer.pid, getpid());
	/* The fd handed over is the connection: bytes go through. */
	CHECK_EQ(write(c, "x", 1), 1);
	char ch = 0;
	CHECK_EQ(read(s.fd, &ch, 1), 1);
	CHECK_EQ(ch, 'x');
	CHECK(fcntl(s.fd, F_GETFD) & FD_CLOEXEC);
	CHECK(fcntl(s.fd, F_GETFL) & O_NONBLOCK);
	safe_close(c);
	safe_close(s.fd);

	net_listener_close(li);
	CHECK_EQ(net_listener_count(li), 0);
	CHECK(stat(path, &st) < 0 && errno == ENOENT);
	net_listener_close(li); /* twice is fine */
	/* And it listens again after a close. */
	CHECK_EQ(net_listener_add(li, &a), 0);
	CHECK_EQ(stat(path, &st), 0);
	net_listener_free(li);
	CHECK(stat(path, &st) < 0 && errno == ENOENT);
	loop_free(s.loop);
	CHECK_EQ(rmdir(dir), 0);
}

TEST(tcp_on_port_zero)
{
	struct seen s = { .fd = -1 };
	struct peer_policy policy;
	struct net_listener *li;
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	struct addr a;

	CHECK_EQ(addr_parse("tcp:127.0.0.1:0", &a), 0);
	CHECK_EQ(loop_new(&s.loop), 0);
	peer_policy_init(&policy);
	CHECK_EQ(net_listener_new(s.loop, &policy, 8, &ops, &s, &li), 0);
	CHECK_EQ(net_listener_add(li, &a), 0);
	CHECK_EQ(net_listener_fd(li, 1), -1);
	CHECK_EQ(getsockname(net_listener_fd(li, 0), (struct sockaddr *)&sa, &len), 0);
	CHECK(ntohs(sa.sin_port) != 0);

	/* Several at once: one wake-up accepts them all. */
	int c[3];
	for (int i = 0; i < 3; i++) {
		c[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		CHECK(c[i] >= 0);
		CHECK_EQ(connect(c[i], (struct sockaddr *)&sa, len), 0);
	}
	while (s.accepted < 3 && !s.hung)
		run_once(&s);
	CHECK(!s.hung);
	CHECK_EQ(s.accepted, 3);
	CHECK_EQ(s.peer.family, ADDR_TCP);
	CHECK_STR(s.peer.desc, "tcp 127.0.0.1");
	for (int i = 0; i < 3; i++)
		safe_close(c[i]);
	safe_close(s.fd);
	net_listener_free(li);
	loop_free(s.loop);
}

/* A unix peer that is neither root nor our uid: a child that becomes
 * nobody when we are root; ourselves under a policy for another uid
 * otherwise. */
TEST(policy_refuses_and_closes)
{
	char dir[] = "/tmp/valet-listener-XXXXXX", path[128], spec[140];
	struct seen s = { .fd = -1 };
	struct peer_policy policy;
	struct net_listener *li;
	struct addr a;
	pid_t child = 0;
	int c = -1;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	CHECK_EQ(addr_parse(spec, &a), 0);
	CHECK_EQ(loop_new(&s.loop), 0);
	peer_policy_init(&policy);
	policy.self_uid = geteuid() == 0 ? 0 : geteuid() + 1;
	CHECK_EQ(net_listener_new(s.loop, &policy, 8, &ops, &s, &li), 0);
	CHECK_EQ(net_listener_add(li, &a), 0);
	if (geteuid() == 0) {
		int p[2];
		CHECK_EQ(chmod(dir, 0755), 0);
		CHECK_EQ(chmod(path, 0666), 0);
		CHECK_EQ(pipe2(p, O_CLOEXEC), 0);
		child = fork();
		CHECK(child >= 0);
		if (child == 0) {
			char ch;
			safe_close(p[1]);
			if (setgid(65534) < 0 || setuid(65534) < 0)
				_exit(2);
			int fd = connect_unix(path);
			/* Wait for the parent to have refused, then report EOF. */
			(void)!read(p[0], &ch, 1);
			_exit(fd >= 0 && read(fd, &ch, 1) == 0 ? 0 : 1);
		}
		safe_close(p[0]);
		run_once(&s);
		safe_close(p[1]);
		int status;
		CHECK_EQ(waitpid(child, &status, 0), child);
		CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		CHECK_EQ(s.peer.uid, 65534);
	} else {
		c = connect_unix(path);
		CHECK(c >= 0);
		run_once(&s);
		char ch;
		CHECK_EQ(read(c, &ch, 1), 0); /* closed by the listener */
		safe_close(c);
	}
	CHECK(!s.hung);
	CHECK_EQ(s.refused, 1);
	CHECK_EQ(s.accepted, 0);
	CHECK_EQ(s.peer.family, ADDR_UNIX);
	net_listener_free(li);
	loop_free(s.loop);
	CHECK_EQ(rmdir(dir), 0);
}

TEST(address_cap_and_errors)
{
	char dir[] = "/tmp/valet-listener-XXXXXX", spec[160];
	struct seen s = { .fd = -1 };
	struct peer_policy policy;
	struct net_listener *li;
	struct addr a;

	CHECK(mkdtemp(dir));
	CHECK_EQ(loop_new(&s.loop), 0);
	peer_policy_init(&policy);
	CHECK_EQ(net_listener_new(s.loop, &policy, 8, &ops, &s, &li), 0);
	for (int i = 0; i < NET_LISTENER_MAX; i++) {
		snprintf(spec, sizeof(spec), "unix:%s/s%d", dir, i);
		CHECK_EQ(addr_parse(spec, &a), 0);
		CHECK_EQ(net_listener_add(li, &a), 0);
	}
	snprintf(spec, sizeof(spec), "unix:%s/one-too-many", dir);
	CHECK_EQ(addr_parse(spec, &a), 0);
	CHECK_EQ(net_listener_add(li, &a), -E2BIG);
	net_listener_close(li);
	/* Every socket it created is gone: the directory is empty. */
	CHECK_EQ(rmdir(dir), 0);
	/* A path in a directory that does not exist: sock_listen's error. */
	CHECK_EQ(addr_parse("unix:/nonexistent-valet-dir/sock", &a), 0);
	CHECK_EQ(net_listener_add(li, &a), -ENOENT);
	CHECK_EQ(net_listener_count(li), 0);
	net_listener_free(li);
	loop_free(s.loop);
}
