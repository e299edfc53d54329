/* The services a server serves, by name ("vm_tools.Maitred"), read from
 * its method tables at the time of asking: a table's paths are
 * "/SERVICE/METHOD". A service whose every method is switched off (the
 * tables' disabled arrays, agent/switches.c) is not served. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include "rpc/server-session.h"

/* name is len bytes, not NUL-terminated. */
bool grpcstd_served(const struct rpc_service *list, const char *name, size_t len);

/* fn(name, len, userdata) once per served service, in the order the
 * tables were registered; stops at the first negative return, which it
 * returns. */
int grpcstd_for_each_served(const struct rpc_service *list, int (*fn)(const char *name, size_t len, void *userdata),
			    void *userdata);
