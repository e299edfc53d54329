/* The one way any program here starts a child process: clone() with
 * CLONE_VM|CLONE_VFORK, as posix_spawn does, so starting costs no page-table
 * copy however big the caller is.
 *
 * The child gets a clean slate: default signal dispositions, an empty signal
 * mask, no inherited descriptors beyond 0-2, the environment it is given.
 * The caller learns synchronously whether exec succeeded, and at which
 * step it failed. The child only calls _exit(). argv[0] is looked up along
 * the child's PATH (default /bin:/usr/bin) like execvp, without execvp's
 * fallback of running a file with no #! line through /bin/sh. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

enum spawn_stage {
	SPAWN_STAGE_NONE,
	SPAWN_STAGE_SETSID,
	SPAWN_STAGE_STDIO,
	SPAWN_STAGE_CTTY,
	SPAWN_STAGE_CREDENTIALS,
	SPAWN_STAGE_CWD,
	SPAWN_STAGE_EXEC,
};

struct spawn_params {
	char *const *argv;
	/* What to execute, when it is not argv[0] (a login shell's "-bash"). */
	const char *file;
	/* Full environment of the child; NULL keeps the caller's. PATH lookup
	 * of argv[0] uses this environment's PATH. */
	char *const *envp;
	/* Descriptors placed on 0, 1, 2. -1 means: open stdio_path there. */
	int stdio_fds[3];
	/* Opened read-write without becoming controlling terminal; default
	 * /dev/null. */
	const char *stdio_path;
	bool new_session;
	/* Make fd 0 the controlling terminal (needs new_session). */
	bool controlling_tty;
	/* Working directory; a failure here is fatal unless cwd_optional.
	 * Optional: cwd_fallback is tried next, then "/", so the child never
	 * stays in the caller's directory; only if "/" fails too is it fatal.
	 * (The checks run as the child's user, after the credentials.) */
	const char *cwd;
	const char *cwd_fallback;
	bool cwd_optional;
	mode_t umask;
	/* Switch to this user first when switch_user is set; groups are the
	 * supplementary groups (resolved by the caller, for vshd from /etc/group:
	 * the child may not allocate). */
	bool switch_user;
	uid_t uid;
	gid_t gid;
	const gid_t *groups;
	size_t n_groups;
};

struct spawn_error {
	enum spawn_stage stage;
	int error; /* positive errno */
};

void spawn_params_init(struct spawn_params *p);

/* Returns 0 and the pid when exec succeeded; -errno when the child could not
 * be created; a positive SPAWN_FAILED with *ret_error filled in when the
 * child started but failed before or at exec (it is already reaped). */
#define SPAWN_FAILED 1
int spawn_process(const struct spawn_params *p, pid_t *ret_pid, struct spawn_error *ret_error);

const char *spawn_stage_name(enum spawn_stage stage);
