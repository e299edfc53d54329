#include <stddef.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "base/notify.h"
#include "test.h"

static int bound_dgram(const char *path, bool abstract)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	size_t len = strlen(path);
	memcpy(sa.sun_path, path, len);
	if (abstract)
		sa.sun_path[0] = 0;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		return -1;
	return fd;
}

TEST(no_socket_is_a_no_op)
{
	struct notify n;
	unsetenv("NOTIFY_SOCKET");
	CHECK_EQ(notify_init(&n), 0);
	CHECK(!notify_enabled(&n));
	CHECK_EQ(notify_send(&n, "READY=1"), 0);
}

TEST(path_socket_gets_the_state_and_the_variable_is_taken)
{
	char dir[] = "/tmp/valet-notify-XXXXXX", path[128], got[64] = { 0 };
	struct notify n;
	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/notify", dir);
	int fd = bound_dgram(path, false);
	CHECK(fd >= 0);
	setenv("NOTIFY_SOCKET", path, 1);
	CHECK_EQ(notify_init(&n), 0);
	CHECK(!getenv("NOTIFY_SOCKET"));
	CHECK(notify_enabled(&n));
	CHECK_EQ(notify_send(&n, "READY=1"), 0);
	CHECK_EQ(recv(fd, got, sizeof(got) - 1, MSG_DONTWAIT), 7);
	CHECK_STR(got, "READY=1");
	close(fd);
	unlink(path);
	/* The manager went away: an error, not a crash or a hang. */
	CHECK(notify_send(&n, "STOPPING=1") < 0);
	rmdir(dir);
}

TEST(abstract_socket)
{
	char name[64], got[64] = { 0 };
	struct notify n;
	snprintf(name, sizeof(name), "@valet-notify-test-%d", (int)getpid());
	int fd = bound_dgram(name, true);
	CHECK(fd >= 0);
	setenv("NOTIFY_SOCKET", name, 1);
	CHECK_EQ(notify_init(&n), 0);
	CHECK_EQ(notify_send(&n, "STOPPING=1"), 0);
	CHECK_EQ(recv(fd, got, sizeof(got) - 1, MSG_DONTWAIT), 10);
	CHECK_STR(got, "STOPPING=1");
	close(fd);
}

TEST(unusable_value_is_refused)
{
	struct notify n;
	const char *bad[] = { "relative/path", "@", "" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		setenv("NOTIFY_SOCKET", bad[i], 1);
		CHECK_EQ(notify_init(&n), -EINVAL);
		CHECK(!notify_enabled(&n));
		CHECK(!getenv("NOTIFY_SOCKET"));
	}
}
