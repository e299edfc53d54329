/* What to run for a peer that asks for a program: the user, the
 * environment, the program and the working directory, resolved the same
 * way for vsh (vsh/target.c, from a SetupConnectionRequest) and for
 * valet.v1.Process (process-service/, from a StartRequest), then handed to
 * spawn_process() (spawn.h) by exec_target_spawn_params(). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "spawn.h"

struct exec_env_var {
	const char *name; /* empty names and names with '=' are skipped */
	const char *value;
};

struct exec_request {
	/* NULL or "": default_user, or the caller's own user when that is NULL. */
	const char *user;
	const char *default_user;
	/* False: only default_user may be asked for (vshd's
	 * --allow_to_switch_user=false). */
	bool allow_user_switch;
	/* n_argv 0: the user's login shell ("-sh"). */
	char *const *argv;
	size_t n_argv;
	const struct exec_env_var *env;
	size_t n_env;
	/* The environment is env alone: no TERM, PATH, HOME, SHELL, USER,
	 * LOGNAME added. */
	bool clear_env;
	/* env wins over HOME, SHELL, USER and LOGNAME (set from the user's
	 * entry); vsh keeps the original's order, where the entry wins. */
	bool env_wins;
	/* TERM when env has none (NULL: no TERM added). */
	const char *term;
	/* The working directory. Not exact (vsh): cwd when it is a directory,
	 * else cwd_pid's when the user could read it, else home, and spawn
	 * falls back to home, then "/". Exact: cwd as it is, and failing to
	 * enter it fails the start; an empty cwd is home (with the fallbacks). */
	const char *cwd;
	pid_t cwd_pid;
	bool cwd_exact;
};

struct exec_target {
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
	bool cwd_optional;
};

/* Fills t from req. On failure returns -errno (-ENOENT: no such user,
 * -EPERM: that user may not be asked for or become, -ENOMEM) and writes a
 * description for the peer into err ("could not find user: NAME"). */
int exec_target_prepare(const struct exec_request *req, struct exec_target *t, char *err, size_t err_size);
void exec_target_clear(struct exec_target *t);

/* The spawn parameters that run t: argv, file, environment, credentials,
 * working directory, a new session. The caller adds stdio and the
 * controlling terminal. p points into t. */
void exec_target_spawn_params(const struct exec_target *t, struct spawn_params *p);
