#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "guest.pb-c.h"
#include "maitctl.h"
#include "rpc/status.h"

#define MAX_ENV 256

static const char help[] = "Usage: maitctl launch [--env K=V]... [--respawn] [--console] [--wait] -- ARGV...\n"
			   "\n"
			   "Starts a process in the guest.\n"
			   "  --env K=V    add K=V to the process's environment (repeatable)\n"
			   "  --respawn    restart it whenever it exits (throttled)\n"
			   "  --console    use /dev/console for its stdio instead of /dev/null\n"
			   "  --wait       wait for it to end; exit with its status (128+N for signal N)\n";

static const char *status_name(VmTools__ProcessStatus s)
{
	switch (s) {
	case VM_TOOLS__PROCESS_STATUS__EXITED: return "EXITED";
	case VM_TOOLS__PROCESS_STATUS__SIGNALED: return "SIGNALED";
	case VM_TOOLS__PROCESS_STATUS__LAUNCHED: return "LAUNCHED";
	case VM_TOOLS__PROCESS_STATUS__FAILED: return "FAILED";
	default: return "UNKNOWN";
	}
}

static int run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "env", required_argument, NULL, 'e' }, { "respawn", no_argument, NULL, 'r' },
		{ "console", no_argument, NULL, 'c' },	 { "wait", no_argument, NULL, 'w' },
		{ "help", no_argument, NULL, 'h' },	 {},
	};
	VmTools__LaunchProcessRequest req = VM_TOOLS__LAUNCH_PROCESS_REQUEST__INIT;
	VmTools__LaunchProcessRequest__EnvEntry entries[MAX_ENV];
	VmTools__LaunchProcessRequest__EnvEntry *envp[MAX_ENV];
	_cleanup_response_ VmTools__LaunchProcessResponse *resp = NULL;
	int c, rc;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		switch (c) {
		case 'e': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				fprintf(stderr, "maitctl launch: invalid --env '%s': expected KEY=VALUE\n", optarg);
				return MAITCTL_EXIT_USAGE;
			}
			if (req.n_env == MAX_ENV) {
				fprintf(stderr, "maitctl launch: at most %d --env entries\n", MAX_ENV);
				return MAITCTL_EXIT_USAGE;
			}
			*eq = 0;
			vm_tools__launch_process_request__env_entry__init(&entries[req.n_env]);
			entries[req.n_env].key = optarg;
			entries[req.n_env].value = eq + 1;
			envp[req.n_env] = &entries[req.n_env];
			req.n_env++;
			break;
		}
		case 'r': req.respawn = true; break;
		case 'c': req.use_console = true; break;
		case 'w': req.wait_for_exit = true; break;
		default: return maitctl_help(help, c);
		}
	}
	/* An empty argv goes to the guest, which answers INVALID_ARGUMENT:
	 * the check lives in one place. */
	req.env = envp;
	req.n_argv = (size_t)(argc - optind);
	req.argv = argv + optind;

	if (maitctl_call(ctl, "/vm_tools.Maitred/LaunchProcess", &req.base,
			 &vm_tools__launch_process_response__descriptor, (ProtobufCMessage **)&resp) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;

	switch (resp->status) {
	case VM_TOOLS__PROCESS_STATUS__EXITED: rc = resp->code & 0xff; break;
	case VM_TOOLS__PROCESS_STATUS__SIGNALED: rc = 128 + (resp->code & 0x7f); break;
	case VM_TOOLS__PROCESS_STATUS__LAUNCHED: rc = 0; break;
	case VM_TOOLS__PROCESS_STATUS__FAILED: rc = 127; break;
	default: rc = MAITCTL_EXIT_RPC_ERROR; break;
	}
	if (ctl->json)
		printf("{\"status\":\"%s\",\"code\":%d}\n", status_name(resp->status), resp->code);
	else if (resp->status == VM_TOOLS__PROCESS_STATUS__EXITED || resp->status == VM_TOOLS__PROCESS_STATUS__SIGNALED)
		printf("%s %d\n", status_name(resp->status), resp->code);
	else
		printf("%s\n", status_name(resp->status));
	if (resp->status == VM_TOOLS__PROCESS_STATUS__FAILED)
		fprintf(stderr, "maitctl launch: the guest could not start '%s'\n", req.argv[0]);
	return rc;
}

const struct maitctl_command maitctl_cmd_launch = { .name = "launch",
						    .summary = "start a process in the guest",
						    .run = run };
