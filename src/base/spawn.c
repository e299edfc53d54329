#include "spawn.h"
#include "strv.h"

#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "macro.h"

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

extern char **environ;

void spawn_params_init(struct spawn_params *p)
{
	*p = (struct spawn_params){
		.stdio_fds = { -1, -1, -1 },
		.stdio_path = "/dev/null",
		.umask = 022,
	};
}

const char *spawn_stage_name(enum spawn_stage stage)
{
	switch (stage) {
	case SPAWN_STAGE_SETSID: return "setsid";
	case SPAWN_STAGE_STDIO: return "stdio";
	case SPAWN_STAGE_CTTY: return "controlling terminal";
	case SPAWN_STAGE_CREDENTIALS: return "credentials";
	case SPAWN_STAGE_CWD: return "working directory";
	case SPAWN_STAGE_EXEC: return "exec";
	default: return "setup";
	}
}

/* The child shares our memory (CLONE_VM) while we wait for it to exec:
 * it writes its failure here and uses a stack of its own. */
struct child_ctx {
	const struct spawn_params *p;
	const char *path; /* argv[0] resolved against the child's PATH */
	struct spawn_error error;
};

/* Big enough for the child's few calls, sanitizers included. Only one
 * child uses it at a time: we are suspended until it execs or exits. */
static uint8_t child_stack[256 * 1024] __attribute__((aligned(16)));

static int child_fail(struct child_ctx *ctx, enum spawn_stage stage, int err)
{
	ctx->error = (struct spawn_error){ .stage = stage, .error = err };
	_exit(stage == SPAWN_STAGE_EXEC ? (err == ENOENT ? 127 : 126) : 125);
}

/* Moves fds so none of the targets 0-2 is clobbered before it is used. */
static int child_setup_stdio(const struct spawn_params *p)
{
	int fds[3];
	int opened = -1;

	for (int i = 0; i < 3; i++) {
		fds[i] = p->stdio_fds[i];
		if (fds[i] >= 0)
			continue;
		if (opened < 0) {
			opened = open(p->stdio_path ? p->stdio_path : "/dev/null", O_RDWR | O_NOCTTY | O_CLOEXEC);
			if (opened < 0)
				return -errno;
		}
		fds[i] = opened;
	}
	/* Lift any source sitting on 0-2 out of the way first. */
	for (int i = 0; i < 3; i++) {
		if (fds[i] < 3 && fds[i] != i) {
			int moved = fcntl(fds[i], F_DUPFD_CLOEXEC, 3);
			if (moved < 0)
				return -errno;
			for (int j = i + 1; j < 3; j++)
				if (fds[j] == fds[i])
					fds[j] = moved;
			fds[i] = moved;
		}
	}
	for (int i = 0; i < 3; i++) {
		if (fds[i] == i) {
			int fl = fcntl(i, F_GETFD);
			if (fl < 0 || fcntl(i, F_SETFD, fl & ~FD_CLOEXEC) < 0)
				return -errno;
		} else if (dup2(fds[i], i) < 0)
			return -errno;
	}
	return 0;
}

/* The kernel's struct sigaction: glibc's sigaction() refuses the signals
 * it keeps for itself (32, 33), yet an ignored one would survive exec. */
struct kernel_sigaction {
	void (*handler)(int);
	unsigned long flags;
	void (*restorer)(void);
	uint64_t mask;
};

static void child_reset_signals(void)
{
	struct kernel_sigaction sa = { .handler = SIG_DFL };
	uint64_t none = 0;

	for (int sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)syscall(SYS_rt_sigaction, sig, &sa, NULL, sizeof(sa.mask));
	(void)syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof(none));
}

static int child_run(void *arg)
{
	struct child_ctx *ctx = arg;
	const struct spawn_params *p = ctx->p;
	int r;

	child_reset_signals();
	/* Nothing but 0-2 survives exec, whoever opened it without CLOEXEC. */
	(void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);

	if (p->new_session && setsid() < 0)
		return child_fail(ctx, SPAWN_STAGE_SETSID, errno);
	r = child_setup_stdio(p);
	if (r < 0)
		return child_fail(ctx, SPAWN_STAGE_STDIO, -r);
	if (p->controlling_tty && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
		return child_fail(ctx, SPAWN_STAGE_CTTY, errno);
	if (p->switch_user) {
		if (setgroups(p->n_groups, p->groups) < 0 || setresgid(p->gid, p->gid, p->gid) < 0 ||
		    setresuid(p->uid, p->uid, p->uid) < 0)
			return child_fail(ctx, SPAWN_STAGE_CREDENTIALS, errno);
	}
	if (p->cwd && chdir(p->cwd) < 0) {
		int err = errno;
		if (!p->cwd_optional || ((!p->cwd_fallback || chdir(p->cwd_fallback) < 0) && chdir("/") < 0))
			return child_fail(ctx, SPAWN_STAGE_CWD, err);
	}
	umask(p->umask);
	execve(ctx->path, p->argv, p->envp ? p->envp : environ);
	return child_fail(ctx, SPAWN_STAGE_EXEC, errno);
}

/* execvp's search, done here because the child may not touch our memory:
 * the first executable regular file along the child's PATH. */
static int resolve_path(const char *file, char *const *envp, char *buf, size_t size, const char **ret)
{
	const char *path, *dir, *end;
	int err = ENOENT;

	if (strchr(file, '/')) {
		*ret = file;
		return 0;
	}
	path = strv_env_get(envp ? envp : environ, "PATH");
	if (!path)
		path = "/bin:/usr/bin";
	for (dir = path;; dir = end + 1) {
		end = strchrnul(dir, ':');
		size_t dlen = (size_t)(end - dir);
		if (dlen == 0) {
			dir = ".";
			dlen = 1;
		}
		if (dlen + 1 + strlen(file) < size) {
			struct stat st;
			memcpy(buf, dir, dlen);
			buf[dlen] = '/';
			strcpy(buf + dlen + 1, file);
			if (stat(buf, &st) == 0 && S_ISREG(st.st_mode)) {
				if (access(buf, X_OK) == 0) {
					*ret = buf;
					return 0;
				}
				err = EACCES;
			}
		}
		if (!*end)
			break;
	}
	return -err;
}

int spawn_process(const struct spawn_params *p, pid_t *ret_pid, struct spawn_error *ret_error)
{
	struct child_ctx ctx = { .p = p };
	char path[PATH_MAX];
	sigset_t all, saved;
	pid_t pid;
	int r, saved_errno;

	if (!p->argv || !p->argv[0])
		return -EINVAL;
	r = resolve_path(p->file ? p->file : p->argv[0], p->envp, path, sizeof(path), &ctx.path);
	if (r < 0) {
		if (ret_error)
			*ret_error = (struct spawn_error){ .stage = SPAWN_STAGE_EXEC, .error = -r };
		return SPAWN_FAILED;
	}

	/* No signal may run a parent's handler in the child before the reset.
	 * CLONE_VFORK: we resume once the child has exec'd or exited, so its
	 * report is in ctx by then. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	saved_errno = errno;
	pid = clone(child_run, child_stack + sizeof(child_stack), CLONE_VM | CLONE_VFORK | SIGCHLD, &ctx);
	r = pid < 0 ? -errno : 0;
	errno = saved_errno; /* the child shared our errno */
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (r < 0)
		return r;

	if (ctx.error.stage == SPAWN_STAGE_NONE) {
		*ret_pid = pid;
		return 0;
	}
	/* The child is ours and has exited: reap it so a failed spawn leaves
	 * nothing behind. */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (ret_error)
		*ret_error = ctx.error;
	return SPAWN_FAILED;
}
