/* vsh_target_prepare(): the user (from the real /etc/passwd: root, and
 * nobody when we are root), the policy, the environment, argv and the
 * working directory with its fallbacks. */
#include <sys/stat.h>

#include "base/strv.h"
#include "test.h"
#include "vsh/target.h"
#include "base/users.h"

static const char *env_get(char **envp, const char *name)
{
	return strv_env_get(envp, name);
}

/* The name of the user we run as (root in CI). */
static bool own_name(char *buf, size_t size)
{
	struct user_entry u = { 0 };
	if (user_by_uid(geteuid(), &u) < 0)
		return false;
	snprintf(buf, size, "%s", u.name);
	user_entry_clear(&u);
	return true;
}

TEST(defaults_login_shell_and_env)
{
	VmTools__Vsh__SetupConnectionRequest req = VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__INIT;
	struct vsh_policy policy = { .allow_user_switch = true };
	struct exec_target t;
	struct user_entry u = { 0 };
	char err[256] = "";

	CHECK_EQ(user_by_uid(geteuid(), &u), 0);
	CHECK_EQ(vsh_target_prepare(&req, &policy, &t, err, sizeof(err)), 0);
	CHECK_STR(t.user, u.name);
	CHECK(!t.switch_user);
	/* No argv: the user's shell as a login shell. */
	CHECK_STR(t.file, u.shell);
	CHECK(t.argv[0][0] == '-');
	CHECK(strstr(u.shell, t.argv[0] + 1));
	CHECK(!t.argv[1]);
	CHECK_STR(env_get(t.envp, "HOME"), u.home);
	CHECK_STR(env_get(t.envp, "USER"), u.name);
	CHECK_STR(env_get(t.envp, "LOGNAME"), u.name);
	CHECK_STR(env_get(t.envp, "SHELL"), u.shell);
	CHECK_STR(env_get(t.envp, "TERM"), "linux");
	CHECK(env_get(t.envp, "PATH"));
	CHECK_STR(t.cwd, u.home); /* nothing asked: home */
	exec_target_clear(&t);
	user_entry_clear(&u);
}

TEST(argv_env_and_cwd_from_the_request)
{
	VmTools__Vsh__SetupConnectionRequest req = VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__INIT;
	VmTools__Vsh__SetupConnectionRequest__EnvEntry e[4] = {
		VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__ENV_ENTRY__INIT,
		VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__ENV_ENTRY__INIT,
		VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__ENV_ENTRY__INIT,
		VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__ENV_ENTRY__INIT,
	};
	VmTools__Vsh__SetupConnectionRequest__EnvEntry *envs[] = { &e[0], &e[1], &e[2], &e[3] };
	char *argv[] = { "ls", "-l" };
	struct vsh_policy policy = { .allow_user_switch = true };
	struct exec_target t;
	char err[256] = "";

	e[0].key = "TERM";
	e[0].value = "xterm";
	e[1].key = "A";
	e[1].value = "1";
	e[2].key = "A";
	e[2].value = "2"; /* a later one replaces */
	e[3].key = "BAD=KEY";
	e[3].value = "x"; /* skipped */
	req.env = envs;
	req.n_env = 4;
	req.argv = argv;
	req.n_argv = 2;
	req.cwd = "/tmp";
	CHECK_EQ(vsh_target_prepare(&req, &policy, &t, err, sizeof(err)), 0);
	CHECK_STR(t.file, "ls");
	CHECK_STR(t.argv[0], "ls");
	CHECK_STR(t.argv[1], "-l");
	CHECK(!t.argv[2]);
	CHECK_STR(env_get(t.envp, "TERM"), "xterm");
	CHECK_STR(env_get(t.envp, "A"), "2");
	CHECK(!env_get(t.envp, "BAD"));
	CHECK_STR(t.cwd, "/tmp");
	exec_target_clear(&t);

	/* A cwd that is not a directory: home instead. */
	req.cwd = "/nonexistent-valet-dir";
	CHECK_EQ(vsh_target_prepare(&req, &policy, &t, err, sizeof(err)), 0);
	CHECK_STR(t.cwd, t.home);
	exec_target_clear(&t);

	/* cwd_pid: that process's working directory, over cwd. */
	char here[1024];
	CHECK(getcwd(here, sizeof(here)));
	req.cwd = "/tmp";
	req.cwd_pid = getpid();
	CHECK_EQ(vsh_target_prepare(&req, &policy, &t, err, sizeof(err)), 0);
	CHECK_STR(t.cwd, here);
	exec_target_clear(&t);

	/* A pid that does not exist: cwd (then home) stays. */
	req.cwd_pid = 0x3fffffff;
	CHECK_EQ(vsh_target_prepare(&req, &policy, &t, err, sizeof(err)), 0);
	CHECK_STR(t.cwd, "/tmp");
	exec_target_clear(&t);
}

TEST(unknown_user_and_policy)
{
	VmTools__Vsh__SetupConnectionRequest req = VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__INIT;
	struct vsh_policy policy = { .allow_user_switch = true };
	struct exec_target t;
	char err[256] = "", me[64];

	CHECK(own_name(me, sizeof(me)));
	req.user = "no-such-user-valet";
	CHECK_EQ(vsh_target_prepare(&req, &policy, &t, err, sizeof(err)), -ENOENT);
	CHECK_STR(err, "could not find user: no-such-user-valet");

	/* Without user switching, only the default user is served. */
	policy = (struct vsh_policy){ .default_user = me, .allow_user_switch = false };
	req.user = "someone-else";
	CHECK_EQ(vsh_target_prepare(&req, &policy, &t, err, sizeof(err)), -EPERM);
	CHECK(strstr(err, "is allowed login on the VM shell"));
	req.user = me;
	CHECK_EQ(vsh_target_prepare(&req, &policy, &t, err, sizeof(err)), 0);
	CHECK_STR(t.user, me);
	exec_target_clear(&t);

	/* No user asked: the default user. */
	req.user = NULL;
	CHECK_EQ(vsh_target_prepare(&req, &policy, &t, err, sizeof(err)), 0);
	CHECK_STR(t.user, me);
	exec_target_clear(&t);
}

TEST(switching_to_nobody_as_root)
{
	VmTools__Vsh__SetupConnectionRequest req = VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__INIT;
	struct vsh_policy policy = { .allow_user_switch = true };
	struct user_entry u = { 0 };
	struct exec_target t;
	char err[256] = "";

	if (user_by_name("nobody", &u) < 0) {
		printf("# skipped: no user nobody in /etc/passwd\n");
		return;
	}
	req.user = "nobody";
	int r = vsh_target_prepare(&req, &policy, &t, err, sizeof(err));
	if (geteuid() != 0) {
		CHECK_EQ(r, -EPERM);
		CHECK_STR(err, "cannot change to user: nobody");
		user_entry_clear(&u);
		return;
	}
	CHECK_EQ(r, 0);
	CHECK(t.switch_user);
	CHECK_EQ(t.uid, u.uid);
	CHECK_EQ(t.gid, u.gid);
	CHECK(t.n_groups >= 1);
	CHECK_EQ(t.groups[0], u.gid); /* the primary group first */
	CHECK_STR(env_get(t.envp, "USER"), "nobody");
	/* Not root: the short PATH. */
	CHECK_STR(env_get(t.envp, "PATH"), "/usr/local/bin:/usr/bin:/bin");
	exec_target_clear(&t);
	user_entry_clear(&u);
}
