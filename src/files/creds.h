/* Acting as a user: valet.v1.Files' `user` field.
 *
 * The user is resolved from the guest's /etc/passwd and /etc/group
 * (base/users.h: no NSS). files_act_as() then changes the CALLING PROCESS
 * for good: its supplementary groups (setgroups), its filesystem gid and
 * uid (setfsgid, setfsuid). Permission checks of every later file
 * operation are that user's, and what it creates is owned by that user
 * and group. Changing the fsuid from 0 also drops the filesystem
 * capabilities (CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_CHOWN, ...), so root's
 * bypasses are gone; the real and effective ids stay 0. It is meant for
 * the worker child a streaming call runs in (docs/files.md), never for
 * maitred itself. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#include "files/status.h"

struct files_user {
	char *name; /* "root" for the empty name */
	uid_t uid;
	gid_t gid;
	gid_t *groups; /* supplementary, the primary gid first */
	size_t n_groups;
};

/* NULL or "" is root (uid 0, gid 0, group 0 only). An unknown name is
 * -EINVAL ("unknown user NAME"); an unreadable /etc/passwd -errno. */
int files_user_resolve(const char *name, struct files_user *ret, struct files_err *err);
void files_user_clear(struct files_user *u);

/* Changes the calling process as above. -errno (the process may then be
 * half-changed: a worker that fails here must not go on). */
int files_act_as(const struct files_user *u);
