/* SetupConnectionRequest -> vsh_target_prepare(): what vshd decides to run
 * for a client's request (user, groups, argv, environment, working
 * directory), before anything is started.
 *
 * Input: 1 byte of policy (default user, user switching), then the
 * request as protobuf bytes, as it arrives in the first frame. Nothing is
 * started and nothing on the machine changes: the path only reads the user
 * database, stat()s the requested directory and reads /proc/PID/cwd. For
 * determinism cwd_pid, when set, is this process (any other pid's cwd
 * depends on what runs on the machine). */
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "vsh/target.h"

static bool env_has(char **envp, const char *name)
{
	size_t len = strlen(name);
	for (; *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const users[] = { NULL, "root", "nobody", "no-such-user" };
	unsigned policy_byte = (unsigned)fuzz_take(&data, &size, 1);
	struct vsh_policy policy = {
		.default_user = users[policy_byte & 3],
		.allow_user_switch = policy_byte & 4,
	};
	struct exec_target t;
	char err[256];

	VmTools__Vsh__SetupConnectionRequest *req = vm_tools__vsh__setup_connection_request__unpack(NULL, size, data);
	if (!req)
		return 0;
	if (req->cwd_pid > 0)
		req->cwd_pid = getpid();

	memset(err, 'x', sizeof(err));
	int r = vsh_target_prepare(req, &policy, &t, err, sizeof(err));
	if (r < 0) {
		FUZZ_CHECK(memchr(err, 0, sizeof(err)));
		FUZZ_CHECK(t.argv == NULL && t.envp == NULL && t.user == NULL);
	} else {
		FUZZ_CHECK(t.user && t.home && t.shell && t.file && t.cwd);
		FUZZ_CHECK(t.argv && t.argv[0] && t.envp);
		size_t n_argv = 0;
		while (t.argv[n_argv])
			n_argv++;
		FUZZ_CHECK(n_argv == (req->n_argv ? req->n_argv : 1));
		for (char **e = t.envp; *e; e++)
			FUZZ_CHECK(strchr(*e, '=') && **e != '=');
		static const char *const always[] = { "TERM", "PATH", "HOME", "SHELL", "USER", "LOGNAME" };
		for (size_t i = 0; i < sizeof(always) / sizeof(always[0]); i++)
			FUZZ_CHECK(env_has(t.envp, always[i]));
		FUZZ_CHECK(!t.switch_user || t.n_groups >= 0);
		exec_target_clear(&t);
	}
	vm_tools__vsh__setup_connection_request__free_unpacked(req, NULL);
	return 0;
}
