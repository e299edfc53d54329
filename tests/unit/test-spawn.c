#include <fcntl.h>
#include <sys/stat.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>

#include "base/spawn.h"
#include "test.h"

static char *read_file(const char *path, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, size - 1);
	if (fd >= 0)
		close(fd);
	buf[n < 0 ? 0 : n] = 0;
	return buf;
}

TEST(exec_failure_reported)
{
	struct spawn_params p;
	struct spawn_error e;
	pid_t pid;
	char *argv[] = { "/nonexistent/valet", NULL };
	spawn_params_init(&p);
	p.argv = argv;
	CHECK_EQ(spawn_process(&p, &pid, &e), SPAWN_FAILED);
	CHECK_EQ(e.stage, SPAWN_STAGE_EXEC);
	CHECK_EQ(e.error, ENOENT);
	/* Already reaped: nothing is left to wait for. */
	CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
	CHECK_EQ(errno, ECHILD);
}

TEST(cwd_failure_reported)
{
	struct spawn_params p;
	struct spawn_error e;
	pid_t pid;
	char *argv[] = { "true", NULL };
	spawn_params_init(&p);
	p.argv = argv;
	p.cwd = "/nonexistent/dir";
	CHECK_EQ(spawn_process(&p, &pid, &e), SPAWN_FAILED);
	CHECK_EQ(e.stage, SPAWN_STAGE_CWD);
	p.cwd_optional = true;
	CHECK_EQ(spawn_process(&p, &pid, &e), 0);
	int st;
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

TEST(child_gets_clean_state)
{
	char dir[] = "/tmp/valet-spawn-XXXXXX", out[128], cmd[512], buf[2048];
	struct spawn_params p;
	struct spawn_error e;
	pid_t pid;
	int st;

	CHECK(mkdtemp(dir));
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(cmd, sizeof(cmd),
		 "{ echo \"$VALET_X $(umask)\"; grep -E '^Sig(Blk|Ign)' /proc/self/status; "
		 "ls /proc/self/fd | tr '\\n' ,; echo; cut -d' ' -f6 /proc/self/stat; echo $$; } > %s",
		 out);
	char *argv[] = { "sh", "-c", cmd, NULL };
	char *envp[] = { "VALET_X=hello", "PATH=/usr/bin:/bin", NULL };

	/* Leave state behind that the child must not inherit. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGUSR2);
	sigprocmask(SIG_BLOCK, &set, NULL);
	signal(SIGHUP, SIG_IGN);
	/* glibc's own signal 33, ignored behind glibc's back. */
	struct {
		void (*h)(int);
		unsigned long f;
		void (*r)(void);
		uint64_t m;
	} ign = { SIG_IGN, 0, 0, 0 }, dfl = { SIG_DFL, 0, 0, 0 };
	syscall(SYS_rt_sigaction, 33, &ign, NULL, 8);
	int leak = open("/dev/null", O_RDONLY); /* no O_CLOEXEC on purpose */

	spawn_params_init(&p);
	p.argv = argv;
	p.envp = envp;
	p.new_session = true;
	p.umask = 027;
	CHECK_EQ(spawn_process(&p, &pid, &e), 0);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	signal(SIGHUP, SIG_DFL);
	syscall(SYS_rt_sigaction, 33, &dfl, NULL, 8);
	close(leak);

	read_file(out, buf, sizeof(buf));
	CHECK(strstr(buf, "hello 0027\n"));
	CHECK(strstr(buf, "SigBlk:\t0000000000000000"));
	CHECK(strstr(buf, "SigIgn:\t0000000000000000"));
	/* ls sees 0-2 and its own directory fd 3, nothing else. */
	CHECK(strstr(buf, "\n0,1,2,3,\n"));
	/* Session leader: the sid line equals the pid line. */
	char *sid = strstr(buf, ",\n") + 2;
	char *nl = strchr(sid, '\n');
	CHECK(nl && strncmp(sid, nl + 1, (size_t)(nl - sid)) == 0);
	unlink(out);
	rmdir(dir);
}

TEST(path_lookup_uses_child_path)
{
	char dir[] = "/tmp/valet-spawn-XXXXXX", prog[128], envpath[160];
	struct spawn_params p;
	struct spawn_error e;
	pid_t pid;
	int st;

	CHECK(mkdtemp(dir));
	snprintf(prog, sizeof(prog), "%s/valet-only-here", dir);
	FILE *f = fopen(prog, "w");
	fputs("#!/bin/sh\nexit 42\n", f);
	fclose(f);
	chmod(prog, 0755);
	snprintf(envpath, sizeof(envpath), "PATH=%s:/bin", dir);
	char *argv[] = { "valet-only-here", NULL };
	char *envp[] = { envpath, NULL };
	spawn_params_init(&p);
	p.argv = argv;
	p.envp = envp;
	CHECK_EQ(spawn_process(&p, &pid, &e), 0);
	CHECK_EQ(waitpid(pid, &st, 0), pid);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 42);
	unlink(prog);
	rmdir(dir);
}

TEST(stdio_fds_placed)
{
	int pipefd[2];
	struct spawn_params p;
	struct spawn_error e;
	pid_t pid;
	char buf[64] = { 0 };
	char *argv[] = { "sh", "-c", "echo out; echo err >&2", NULL };
	CHECK_EQ(pipe(pipefd), 0);
	spawn_params_init(&p);
	p.argv = argv;
	p.stdio_fds[1] = pipefd[1];
	p.stdio_fds[2] = pipefd[1];
	CHECK_EQ(spawn_process(&p, &pid, &e), 0);
	close(pipefd[1]);
	waitpid(pid, NULL, 0);
	size_t n = 0;
	ssize_t r;
	while ((r = read(pipefd[0], buf + n, sizeof(buf) - 1 - n)) > 0)
		n += (size_t)r;
	close(pipefd[0]);
	CHECK_STR(buf, "out\nerr\n");
}
