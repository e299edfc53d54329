#include "spawn.h"

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
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

_noreturn_ static void child_fail(int report_fd, enum spawn_stage stage, int err)
{
	struct spawn_error e = { .stage = stage, .error = err };
	(void)!write(report_fd, &e, sizeof(e));
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
			opened = open(p->stdio_path ? p->stdio_path : "/dev/null",
				      O_RDWR | O_NOCTTY | O_CLOEXEC);
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
	sigset_t all;

	for (int sig = 1; sig < _NSIG; sig++)
		if (sig != SIGKILL && sig != SIGSTOP)
			(void)syscall(SYS_rt_sigaction, sig, &sa, NULL, sizeof(sa.mask));
	sigemptyset(&all);
	(void)sigprocmask(SIG_SETMASK, &all, NULL);
}

_noreturn_ static void child_run(const struct spawn_params *p, int report_fd)
{
	int r;

	child_reset_signals();
	/* Nothing but 0-2 survives exec, whoever opened it without CLOEXEC. */
	(void)syscall(SYS_close_range, 3U, ~0U, CLOSE_RANGE_CLOEXEC);

	if (p->new_session && setsid() < 0)
		child_fail(report_fd, SPAWN_STAGE_SETSID, errno);
	r = child_setup_stdio(p);
	if (r < 0)
		child_fail(report_fd, SPAWN_STAGE_STDIO, -r);
	if (p->controlling_tty && ioctl(STDIN_FILENO, TIOCSCTTY, 0) < 0)
		child_fail(report_fd, SPAWN_STAGE_CTTY, errno);
	if (p->switch_user) {
		if (initgroups(p->user_name, p->gid) < 0 || setresgid(p->gid, p->gid, p->gid) < 0 ||
		    setresuid(p->uid, p->uid, p->uid) < 0)
			child_fail(report_fd, SPAWN_STAGE_CREDENTIALS, errno);
	}
	if (p->cwd && chdir(p->cwd) < 0 && !p->cwd_optional)
		child_fail(report_fd, SPAWN_STAGE_CWD, errno);
	umask(p->umask);
	if (p->envp)
		environ = (char **)p->envp;
	execvp(p->argv[0], p->argv);
	child_fail(report_fd, SPAWN_STAGE_EXEC, errno);
}

int spawn_process(const struct spawn_params *p, pid_t *ret_pid, struct spawn_error *ret_error)
{
	_cleanup_close_ int rd = -1, wr = -1;
	int pipefd[2];
	sigset_t all, saved;
	pid_t pid;

	if (!p->argv || !p->argv[0])
		return -EINVAL;
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	rd = pipefd[0];
	wr = pipefd[1];

	/* No signal may run a parent's handler in the child between fork and
	 * the reset. */
	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, &saved);
	pid = fork();
	if (pid == 0) {
		rd = safe_close(rd);
		child_run(p, wr);
	}
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (pid < 0)
		return -errno;
	wr = safe_close(wr);

	struct spawn_error e;
	ssize_t n;
	do
		n = read(rd, &e, sizeof(e));
	while (n < 0 && errno == EINTR);

	if (n == 0) {
		*ret_pid = pid;
		return 0;
	}
	/* The child is ours and already exiting: reap it here so a failed
	 * spawn leaves nothing behind. */
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (n != (ssize_t)sizeof(e))
		e = (struct spawn_error){ .stage = SPAWN_STAGE_NONE, .error = EIO };
	if (ret_error)
		*ret_error = e;
	return SPAWN_FAILED;
}
