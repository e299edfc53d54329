#include "exec-target.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "macro.h"
#include "strv.h"
#include "users.h"

#define DEFAULT_PATH_ROOT "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#define DEFAULT_PATH_USER "/usr/local/bin:/usr/bin:/bin"

void exec_target_clear(struct exec_target *t)
{
	free(t->user);
	free(t->groups);
	free(t->home);
	free(t->shell);
	free(t->file);
	strv_free(t->argv);
	strv_free(t->envp);
	free(t->cwd);
	*t = (struct exec_target){ 0 };
}

/* Sets NAME=value, replacing an earlier NAME (or, keep_old, keeping it). */
static int env_set(char ***envp, size_t *n, const char *name, const char *value, bool keep_old)
{
	char *entry;
	char *const *old = strv_env_find(*envp, name);

	if (old && keep_old)
		return 0;
	if (asprintf(&entry, "%s=%s", name, value) < 0)
		return -ENOMEM;
	if (old) {
		size_t i = (size_t)(old - *envp);
		free((*envp)[i]);
		(*envp)[i] = entry;
		return 0;
	}
	char **grown = realloc(*envp, (*n + 2) * sizeof(char *));
	if (!grown) {
		free(entry);
		return -ENOMEM;
	}
	*envp = grown;
	(*envp)[(*n)++] = entry;
	(*envp)[*n] = NULL;
	return 0;
}

static int build_env(const struct exec_request *req, struct exec_target *t)
{
	size_t n = 0;
	int r = 0;

	t->envp = calloc(1, sizeof(char *));
	if (!t->envp)
		return -ENOMEM;
	for (size_t i = 0; i < req->n_env && r == 0; i++) {
		const char *k = req->env[i].name;
		if (!k || !*k || strchr(k, '='))
			continue;
		r = env_set(&t->envp, &n, k, req->env[i].value ? req->env[i].value : "", false);
	}
	if (req->clear_env)
		return r;
	if (r == 0 && req->term)
		r = env_set(&t->envp, &n, "TERM", req->term, true);
	if (r == 0)
		r = env_set(&t->envp, &n, "PATH", t->uid == 0 ? DEFAULT_PATH_ROOT : DEFAULT_PATH_USER, true);
	if (r == 0)
		r = env_set(&t->envp, &n, "HOME", t->home, req->env_wins);
	if (r == 0)
		r = env_set(&t->envp, &n, "SHELL", t->shell, req->env_wins);
	if (r == 0)
		r = env_set(&t->envp, &n, "USER", t->user, req->env_wins);
	if (r == 0)
		r = env_set(&t->envp, &n, "LOGNAME", t->user, req->env_wins);
	return r;
}

static int build_argv(const struct exec_request *req, struct exec_target *t)
{
	if (req->n_argv == 0) {
		/* A login shell: argv[0] is "-" and the shell's basename. */
		const char *base = strrchr(t->shell, '/');
		t->argv = calloc(2, sizeof(char *));
		if (!t->argv || asprintf(&t->argv[0], "-%s", base ? base + 1 : t->shell) < 0)
			return -ENOMEM;
		t->file = strdup(t->shell);
		return t->file ? 0 : -ENOMEM;
	}
	t->argv = calloc(req->n_argv + 1, sizeof(char *));
	if (!t->argv)
		return -ENOMEM;
	for (size_t i = 0; i < req->n_argv; i++)
		if (!(t->argv[i] = strdup(req->argv[i])))
			return -ENOMEM;
	t->file = strdup(req->argv[0]);
	return t->file ? 0 : -ENOMEM;
}

/* True when the "Uid:" or "Gid:" line of a /proc/PID/status text gives
 * id as the real, effective and saved id alike. */
static bool status_ids_are(const char *status, const char *key, unsigned id)
{
	const char *p = strstr(status, key);
	unsigned real, eff, saved;

	return p && sscanf(p + strlen(key), "%u %u %u", &real, &eff, &saved) == 3 && real == id && eff == id &&
	       saved == id;
}

/* The working directory of process pid, into buf, when the target user
 * could read it through /proc itself: the caller reads it as root, so the
 * kernel's rule for /proc/PID/cwd (the same uid and gid, real, effective
 * and saved, as the reader's, and a dumpable process: the files in /proc/PID
 * belong to root otherwise) is applied here; a root target may name any process.
 * All reads go through one /proc/PID descriptor, so that they are about
 * the same process even if pid is reused meanwhile. */
static bool pid_cwd(pid_t pid, const struct exec_target *t, char *buf, size_t size)
{
	char path[32], status[4096];

	snprintf(path, sizeof(path), "/proc/%d", (int)pid);
	_cleanup_close_ int dir = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0)
		return false;
	if (t->uid != 0) {
		struct stat st;
		_cleanup_close_ int fd = openat(dir, "status", O_RDONLY | O_CLOEXEC);
		if (fd < 0 || fstat(fd, &st) < 0 || st.st_uid != t->uid)
			return false;
		ssize_t n = read(fd, status, sizeof(status) - 1);
		if (n <= 0)
			return false;
		status[n] = 0;
		if (!status_ids_are(status, "\nUid:", (unsigned)t->uid) ||
		    !status_ids_are(status, "\nGid:", (unsigned)t->gid))
			return false;
	}
	ssize_t n = readlinkat(dir, "cwd", buf, size - 1);
	if (n <= 0)
		return false;
	buf[n] = 0;
	return true;
}

/* Exact: cwd, or home when none. Otherwise cwd if it is a directory, else
 * /proc/PID/cwd for cwd_pid if the target user could read it, else home.
 * Checked as the caller here: spawn falls back to home, then "/", when the
 * target user may not enter the one chosen. */
static int choose_cwd(const struct exec_request *req, struct exec_target *t)
{
	char buf[PATH_MAX];
	struct stat st;
	const char *dir = t->home;

	t->cwd_optional = true;
	if (req->cwd_exact && req->cwd && *req->cwd) {
		dir = req->cwd;
		t->cwd_optional = false;
	} else if (!req->cwd_exact) {
		if (req->cwd && *req->cwd && stat(req->cwd, &st) == 0 && S_ISDIR(st.st_mode))
			dir = req->cwd;
		if (req->cwd_pid > 0 && pid_cwd(req->cwd_pid, t, buf, sizeof(buf)))
			dir = buf;
	}
	t->cwd = strdup(dir);
	return t->cwd ? 0 : -ENOMEM;
}

int exec_target_prepare(const struct exec_request *req, struct exec_target *t, char *err, size_t err_size)
{
	const char *asked = req->user && *req->user ? req->user : NULL;
	const char *name = asked ? asked : req->default_user;
	struct user_entry u = { 0 };
	int r;

	*t = (struct exec_target){ 0 };
	if (!req->allow_user_switch && asked && req->default_user && strcmp(asked, req->default_user) != 0) {
		snprintf(err, err_size, "only %s is allowed login on the VM shell", req->default_user);
		return -EPERM;
	}
	r = name ? user_by_name(name, &u) : user_by_uid(geteuid(), &u);
	if (r == -ENOMEM)
		goto oom;
	if (r < 0) {
		if (name)
			snprintf(err, err_size, "could not find user: %s", name);
		else
			snprintf(err, err_size, "could not find uid: %u", (unsigned)geteuid());
		return r == -ENOENT ? -ENOENT : r;
	}
	if (u.uid != geteuid()) {
		/* Any user may be asked for, but only root can become one. */
		if (geteuid() != 0) {
			snprintf(err, err_size, "cannot change to user: %s", u.name);
			user_entry_clear(&u);
			return -EPERM;
		}
		t->switch_user = true;
	}
	t->uid = u.uid;
	t->gid = u.gid;
	t->user = TAKE_PTR(u.name);
	t->home = TAKE_PTR(u.home);
	t->shell = TAKE_PTR(u.shell);
	user_entry_clear(&u);
	if (t->switch_user) {
		size_t n;
		r = user_groups(t->user, t->gid, &t->groups, &n);
		if (r == -ENOMEM)
			goto oom;
		if (r < 0) {
			snprintf(err, err_size, "could not set supplementary groups");
			exec_target_clear(t);
			return r;
		}
		t->n_groups = (int)n;
	}
	r = build_argv(req, t);
	if (r == 0)
		r = build_env(req, t);
	if (r == 0)
		r = choose_cwd(req, t);
	if (r < 0)
		goto oom;
	return 0;
oom:
	snprintf(err, err_size, "out of memory");
	exec_target_clear(t);
	return -ENOMEM;
}

void exec_target_spawn_params(const struct exec_target *t, struct spawn_params *p)
{
	p->argv = t->argv;
	p->file = t->file;
	p->envp = t->envp;
	p->new_session = true;
	p->cwd = t->cwd;
	p->cwd_fallback = t->home;
	p->cwd_optional = t->cwd_optional;
	p->umask = 022;
	p->switch_user = t->switch_user;
	p->uid = t->uid;
	p->gid = t->gid;
	p->groups = t->groups;
	p->n_groups = (size_t)t->n_groups;
}
