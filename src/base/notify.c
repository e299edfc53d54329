#include "notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/macro.h"

int notify_init(struct notify *n)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len;

	*n = (struct notify){ .sa.sun_family = AF_UNIX };
	if (!path)
		return 0;
	len = strlen(path);
	/* A path, or '@' for the abstract namespace. */
	if ((path[0] != '/' && path[0] != '@') || len < 2 || len >= sizeof(n->sa.sun_path)) {
		(void)unsetenv("NOTIFY_SOCKET");
		return -EINVAL;
	}
	memcpy(n->sa.sun_path, path, len);
	if (path[0] == '@')
		n->sa.sun_path[0] = 0;
	n->sa_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	(void)unsetenv("NOTIFY_SOCKET");
	return 0;
}

bool notify_enabled(const struct notify *n)
{
	return n->sa_len > 0;
}

int notify_send(const struct notify *n, const char *state)
{
	_cleanup_close_ int fd = -1;

	if (!notify_enabled(n))
		return 0;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (const struct sockaddr *)&n->sa, n->sa_len) < 0)
		return -errno;
	return 0;
}
