/* What vshd runs for a session: a SetupConnectionRequest as an exec
 * request (base/exec-target.h, shared with valet.v1.Process). */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "base/exec-target.h"
#include "vsh.pb-c.h"

struct vsh_policy {
	const char *default_user; /* NULL: the user vshd runs as */
	bool allow_user_switch;
};

/* Fills t from the request. On failure returns -errno and writes a
 * description for the client into err ("could not find user: NAME"). */
int vsh_target_prepare(const VmTools__Vsh__SetupConnectionRequest *req, const struct vsh_policy *policy,
		       struct exec_target *t, char *err, size_t err_size);
