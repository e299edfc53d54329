/* What vshd runs for a session: the user, the environment, the program,
 * the working directory, from a SetupConnectionRequest. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "vsh.pb-c.h"

struct vsh_policy {
	const char *default_user; /* NULL: the user vshd runs as */
	bool allow_user_switch;
};

struct vsh_target {
	char *user;
	uid_t uid;
	gid_t gid;
	gid_t *groups;
	int n_groups;
	bool switch_user;
	char *home;
	char *shell;
	char *file;  /* what to execute */
	char **argv; /* NULL-terminated */
	char **envp; /* NULL-terminated */
	char *cwd;
};

/* Fills t from the request. On failure returns -errno and writes a
 * description for the client into err ("could not find user: NAME"). */
int vsh_target_prepare(const VmTools__Vsh__SetupConnectionRequest *req, const struct vsh_policy *policy,
		       struct vsh_target *t, char *err, size_t err_size);
void vsh_target_clear(struct vsh_target *t);
