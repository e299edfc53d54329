/* maitctl exec and attach: their options; the session is exec-session.c.
 * docs/process-cli.md. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "base/parse.h"
#include "exec.h"

#define MAX_ENV 256

static const char exec_help[] =
	"Usage: maitctl exec [--tag T] [-t|--pty] [--user U] [--cwd DIR] [-e|--env K=V]...\n"
	"                    [-d|--detach] [-i|--stdin] [--kill-on-disconnect] [--buffer BYTES] -- ARGV...\n"
	"\n"
	"Runs a process in the guest (valet.v1.Process) that outlives this command: its\n"
	"output is kept in the guest, 'maitctl attach' comes back to it.\n"
	"  --tag T       a name to find it by (attach, kill); unique among running ones\n"
	"  -t, --pty     on a PTY (the local terminal raw, its size followed)\n"
	"  --user U      as user U (default root)\n"
	"  --cwd DIR     in DIR\n"
	"  -e, --env K=V add K=V to its environment (repeatable)\n"
	"  -d, --detach  print its id and return at once\n"
	"  -i, --stdin   give it a stdin even with --detach (attach --stdin feeds it)\n"
	"  --kill-on-disconnect  SIGKILL its group when this command's connection ends\n"
	"  --buffer BYTES  output kept in the guest per stream (default the guest's)\n"
	"Attached (the default): local stdin is its stdin (unless it is /dev/null),\n"
	"stdout and stderr are written apart, SIGINT, SIGTERM, SIGHUP and SIGQUIT are\n"
	"sent to its process group. Exit status: its own (128+N if killed by signal\n"
	"N); 123 if the connection is lost (it goes on; the way back is printed);\n"
	"1 if it cannot be started; 2 on a usage error.\n";

static const char attach_help[] =
	"Usage: maitctl attach [--from-start] [-i|--stdin] ID|TAG\n"
	"\n"
	"Attaches to a process started by 'maitctl exec': its output from where the\n"
	"last maitctl on this host stopped writing it (else from the oldest byte the\n"
	"guest keeps), then as exec: input, signals, window size, exit status.\n"
	"  --from-start  from the oldest byte the guest keeps, whatever was written\n"
	"  -i, --stdin   send local stdin even when it is not a terminal\n"
	"An argument of digits only is an id, anything else a tag.\n";

/* /dev/null as stdin: nothing to forward, the process gets its own. */
static bool stdin_is_null(void)
{
	struct stat st, null;

	return fstat(STDIN_FILENO, &st) == 0 && S_ISCHR(st.st_mode) && stat("/dev/null", &null) == 0 &&
	       st.st_rdev == null.st_rdev;
}

struct env {
	Valet__V1__StartRequest__EnvEntry entries[MAX_ENV];
	Valet__V1__StartRequest__EnvEntry *ptrs[MAX_ENV];
	size_t n;
};

static int env_add(struct env *e, char *key, char *value)
{
	size_t k;

	for (k = 0; k < e->n; k++)
		if (strcmp(e->entries[k].key, key) == 0)
			break;
	if (k == MAX_ENV)
		return -1;
	if (k == e->n) {
		valet__v1__start_request__env_entry__init(&e->entries[k]);
		e->ptrs[k] = &e->entries[k];
		e->n++;
	}
	e->entries[k].key = key;
	e->entries[k].value = value;
	return 0;
}

static int run_exec(struct maitctl *ctl, int argc, char **argv)
{
	enum { OPT_TAG = 0x100, OPT_USER, OPT_CWD, OPT_KOD, OPT_BUFFER };
	static const struct option longopts[] = {
		{ "tag", required_argument, NULL, OPT_TAG },
		{ "pty", no_argument, NULL, 't' },
		{ "user", required_argument, NULL, OPT_USER },
		{ "cwd", required_argument, NULL, OPT_CWD },
		{ "env", required_argument, NULL, 'e' },
		{ "detach", no_argument, NULL, 'd' },
		{ "stdin", no_argument, NULL, 'i' },
		{ "kill-on-disconnect", no_argument, NULL, OPT_KOD },
		{ "buffer", required_argument, NULL, OPT_BUFFER },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	Valet__V1__StartRequest req = VALET__V1__START_REQUEST__INIT;
	struct exec_params p = { .start = &req };
	struct env env = { .n = 0 };
	bool want_stdin = false, have_term = false;
	uint32_t v;
	int c;

	while ((c = getopt_long(argc, argv, "+tde:ih", longopts, NULL)) >= 0) {
		switch (c) {
		case OPT_TAG: req.tag = optarg; break;
		case 't': req.pty = true; break;
		case OPT_USER: req.user = optarg; break;
		case OPT_CWD: req.cwd = optarg; break;
		case 'e': {
			char *eq = strchr(optarg, '=');
			if (!eq || eq == optarg) {
				fprintf(stderr, "maitctl exec: invalid --env '%s': expected KEY=VALUE\n", optarg);
				return MAITCTL_EXIT_USAGE;
			}
			*eq = 0;
			if (env_add(&env, optarg, eq + 1) < 0) {
				fprintf(stderr, "maitctl exec: at most %d --env entries\n", MAX_ENV);
				return MAITCTL_EXIT_USAGE;
			}
			have_term |= strcmp(optarg, "TERM") == 0;
			break;
		}
		case 'd': p.detach = true; break;
		case 'i': want_stdin = true; break;
		case OPT_KOD: req.kill_on_disconnect = true; break;
		case OPT_BUFFER:
			if (parse_u32(optarg, &v) < 0 || v == 0) {
				fprintf(stderr, "maitctl exec: invalid --buffer '%s': expected a number of bytes\n",
					optarg);
				return MAITCTL_EXIT_USAGE;
			}
			req.buffer_bytes = v;
			break;
		default: return maitctl_help(exec_help, c);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "maitctl exec: no command given (maitctl exec [OPTIONS] -- ARGV...)\n");
		return MAITCTL_EXIT_USAGE;
	}
	req.argv = argv + optind;
	req.n_argv = (size_t)(argc - optind);
	if (req.pty) {
		/* The local terminal's type and size, as vsh gives them. */
		char *term = getenv("TERM");
		if (term && !have_term && env_add(&env, "TERM", term) < 0) {
			fprintf(stderr, "maitctl exec: at most %d --env entries\n", MAX_ENV);
			return MAITCTL_EXIT_USAGE;
		}
		exec_window_size(&req.rows, &req.cols);
		p.pty = true;
	}
	req.env = env.ptrs;
	req.n_env = env.n;
	/* A PTY is its own input; pipes get one when there is something to
	 * send, or when asked for (a detached process fed later). */
	if (p.detach)
		req.stdin = req.pty || want_stdin;
	else
		req.stdin = req.pty || want_stdin || !stdin_is_null();
	p.forward_stdin = !p.detach && req.stdin && !stdin_is_null();
	return exec_session_run(ctl, &p);
}

static int run_attach(struct maitctl *ctl, int argc, char **argv)
{
	enum { OPT_FROM_START = 0x100 };
	static const struct option longopts[] = {
		{ "from-start", no_argument, NULL, OPT_FROM_START },
		{ "stdin", no_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	_cleanup_response_ Valet__V1__ListProcessesResponse *list = NULL;
	const Valet__V1__ProcessInfo *info = NULL;
	struct exec_params p = { 0 };
	bool want_stdin = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "+ih", longopts, NULL)) >= 0) {
		switch (c) {
		case OPT_FROM_START: p.from_start = true; break;
		case 'i': want_stdin = true; break;
		default: return maitctl_help(attach_help, c);
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "maitctl attach: no process given (an id or a tag)\n");
		return MAITCTL_EXIT_USAGE;
	}
	if (optind + 1 < argc) {
		fprintf(stderr, "maitctl attach: unexpected argument '%s'\n", argv[optind + 1]);
		return MAITCTL_EXIT_USAGE;
	}
	exec_parse_target(argv[optind], &p.id, &p.tag);
	/* Whether it runs, and on a PTY: what the local side is made of.
	 * One that has ended is only read (Connect says if it is unknown). */
	r = exec_find_running(ctl, p.id, p.tag, &list, &info);
	if (r > 0)
		return r;
	if (r == 0) {
		p.pty = info->pty;
		p.forward_stdin = (want_stdin || isatty(STDIN_FILENO)) && !stdin_is_null();
	}
	return exec_session_run(ctl, &p);
}

const struct maitctl_command maitctl_cmd_exec = { "exec", "run a process in the guest (valet.v1.Process)",
						  run_exec };
const struct maitctl_command maitctl_cmd_attach = { "attach", "attach to a process started by exec", run_attach };
