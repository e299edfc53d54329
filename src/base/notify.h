/* The service manager's readiness protocol (sd_notify(3)), spoken directly:
 * one datagram of "KEY=VALUE" lines to the unix socket named by
 * $NOTIFY_SOCKET. Small and stable enough not to link libsystemd for it
 * (docs/deploy.md). Without $NOTIFY_SOCKET every call does nothing. */
#pragma once

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>

struct notify {
	struct sockaddr_un sa;
	socklen_t sa_len; /* 0: no service manager listening */
};

/* Takes $NOTIFY_SOCKET out of the environment (the processes we start
 * must not report for us). -EINVAL when it is set but unusable. */
int notify_init(struct notify *n);
bool notify_enabled(const struct notify *n);
/* Sends state, e.g. "READY=1" or "STOPPING=1". */
int notify_send(const struct notify *n, const char *state);
