/* maitctl ps and kill (valet.v1.Process List and SendSignal), and what
 * exec and attach share with them: ID|TAG and signal names.
 * docs/process-cli.md. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/escape.h"
#include "base/parse.h"
#include "exec.h"
#include "files.h"
#include "rpc/status.h"

static const char ps_help[] = "Usage: maitctl ps [-a|--all]\n"
			      "\n"
			      "Lists the processes valet.v1.Process runs in the guest: ID, PID, TAG,\n"
			      "STATE, EXIT (code, or the signal's name), STARTED (UTC), ARGV.\n"
			      "  -a, --all  also those that have exited (the guest forgets an exited\n"
			      "             process once a List or an attach has seen its end)\n"
			      "With --json, one JSON object per process and line.\n";

static const char kill_help[] = "Usage: maitctl kill [-SIG | -s SIG] [-g|--group] ID|TAG\n"
				"\n"
				"Sends a signal (default TERM) to a process started by 'maitctl exec'.\n"
				"  -SIG, -s SIG  the signal: a name (KILL, SIGKILL, kill) or a number\n"
				"  -g, --group   to its whole process group (a shell and its children)\n"
				"An argument of digits only is an id, anything else a tag.\n";

int exec_parse_signal(const char *s, int *ret)
{
	uint32_t n;

	if (parse_u32(s, &n) == 0) {
		if (n < 1 || n >= _NSIG)
			return -EINVAL;
		*ret = (int)n;
		return 0;
	}
	if (strncasecmp(s, "SIG", 3) == 0)
		s += 3;
	for (int sig = 1; sig < _NSIG; sig++) {
		const char *name = sigabbrev_np(sig);
		if (name && strcasecmp(name, s) == 0) {
			*ret = sig;
			return 0;
		}
	}
	return -EINVAL;
}

void exec_parse_target(const char *s, uint64_t *ret_id, const char **ret_tag)
{
	uint64_t id;

	*ret_id = 0;
	*ret_tag = NULL;
	if (s[strspn(s, "0123456789")] == 0 && parse_u64(s, UINT64_MAX, &id) == 0)
		*ret_id = id;
	else
		*ret_tag = s;
}

static int list(struct maitctl *ctl, bool all, Valet__V1__ListProcessesResponse **ret)
{
	Valet__V1__ListProcessesRequest req = VALET__V1__LIST_PROCESSES_REQUEST__INIT;

	req.include_exited = all;
	if (maitctl_call(ctl, "/valet.v1.Process/List", &req.base, &valet__v1__list_processes_response__descriptor,
			 (ProtobufCMessage **)ret) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	return 0;
}

int exec_find_running(struct maitctl *ctl, uint64_t id, const char *tag, Valet__V1__ListProcessesResponse **ret_list,
		      const Valet__V1__ProcessInfo **ret_info)
{
	_cleanup_response_ Valet__V1__ListProcessesResponse *l = NULL;
	int r = list(ctl, false, &l);

	if (r)
		return r;
	for (size_t i = 0; i < l->n_processes; i++) {
		const Valet__V1__ProcessInfo *p = l->processes[i];
		if (tag ? strcmp(p->tag, tag) == 0 : p->id == id) {
			*ret_info = p;
			*ret_list = TAKE_PTR(l);
			return 0;
		}
	}
	return -ENOENT;
}

/* --- ps ----------------------------------------------------------------------- */

static void exit_string(const Valet__V1__ProcessInfo *p, char *buf, size_t size)
{
	const Valet__V1__ProcessEvent__Exited *x = p->exited;

	if (p->running || !x)
		snprintf(buf, size, "-");
	else if (x->signal) {
		const char *name = sigabbrev_np(x->signal);
		if (name)
			snprintf(buf, size, "SIG%s%s", name, x->core_dumped ? "(core)" : "");
		else
			snprintf(buf, size, "signal %d", x->signal);
	} else
		snprintf(buf, size, "%d", x->exit_code);
}

static void print_json(const Valet__V1__ProcessInfo *p)
{
	char t[40];

	maitctl_time_string(p->started, true, t);
	printf("{\"id\":%llu,\"pid\":%d,\"tag\":", (unsigned long long)p->id, p->pid);
	maitctl_json_string(p->tag);
	printf(",\"running\":%s,\"pty\":%s,\"user\":", p->running ? "true" : "false", p->pty ? "true" : "false");
	maitctl_json_string(p->user);
	printf(",\"started\":\"%s\",\"argv\":[", t);
	for (size_t i = 0; i < p->n_argv; i++) {
		if (i)
			putchar(',');
		maitctl_json_string(p->argv[i]);
	}
	putchar(']');
	if (!p->running && p->exited)
		printf(",\"exit_code\":%d,\"signal\":%d,\"core_dumped\":%s", p->exited->exit_code, p->exited->signal,
		       p->exited->core_dumped ? "true" : "false");
	printf("}\n");
}

static void print_row(const Valet__V1__ProcessInfo *p)
{
	char t[40], ex[40], esc[ESCAPE_STR_MAX];

	maitctl_time_string(p->started, false, t);
	exit_string(p, ex, sizeof(ex));
	printf("%-6llu %-8d %-12s %-8s %-10s %-17s", (unsigned long long)p->id, p->pid,
	       p->tag[0] ? escape_mem(p->tag, strlen(p->tag), esc, sizeof(esc)) : "-",
	       p->running ? "running" : "exited", ex, t);
	/* The guest's words: no control characters reach the terminal. */
	for (size_t i = 0; i < p->n_argv; i++)
		printf(" %s", escape_mem(p->argv[i], strlen(p->argv[i]), esc, sizeof(esc)));
	putchar('\n');
}

static int run_ps(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "all", no_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	_cleanup_response_ Valet__V1__ListProcessesResponse *l = NULL;
	bool all = false;
	int c, r;

	while ((c = getopt_long(argc, argv, "+ah", longopts, NULL)) >= 0) {
		if (c == 'a')
			all = true;
		else
			return maitctl_help(ps_help, c);
	}
	r = maitctl_no_stray(argc, argv);
	if (r >= 0)
		return r;
	r = list(ctl, all, &l);
	if (r)
		return r;
	if (!ctl->json)
		printf("%-6s %-8s %-12s %-8s %-10s %-17s %s\n", "ID", "PID", "TAG", "STATE", "EXIT", "STARTED", "ARGV");
	for (size_t i = 0; i < l->n_processes; i++) {
		if (ctl->json)
			print_json(l->processes[i]);
		else
			print_row(l->processes[i]);
	}
	return 0;
}

/* --- kill --------------------------------------------------------------------- */

static int run_kill(struct maitctl *ctl, int argc, char **argv)
{
	Valet__V1__SendSignalRequest req = VALET__V1__SEND_SIGNAL_REQUEST__INIT;
	const char *target = NULL, *signame = NULL;
	int sig = SIGTERM;
	bool opts = true;

	/* By hand: "-9" and "-KILL" are kill(1)'s, which getopt cannot take. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (opts && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0))
			return maitctl_help(kill_help, 'h');
		if (opts && strcmp(a, "--") == 0)
			opts = false;
		else if (opts && (strcmp(a, "-g") == 0 || strcmp(a, "--group") == 0))
			req.group = true;
		else if (opts && (strcmp(a, "-s") == 0 || strcmp(a, "--signal") == 0)) {
			if (++i == argc) {
				fprintf(stderr, "maitctl kill: %s needs a signal\n", a);
				return MAITCTL_EXIT_USAGE;
			}
			signame = argv[i];
		} else if (opts && strncmp(a, "--signal=", 9) == 0)
			signame = a + 9;
		else if (opts && a[0] == '-' && a[1] && a[1] != '-')
			signame = a + 1;
		else if (opts && a[0] == '-' && a[1] == '-') {
			fprintf(stderr, "maitctl kill: unknown option '%s'\n", a);
			return MAITCTL_EXIT_USAGE;
		} else if (!target)
			target = a;
		else {
			fprintf(stderr, "maitctl kill: unexpected argument '%s'\n", a);
			return MAITCTL_EXIT_USAGE;
		}
	}
	if (signame && exec_parse_signal(signame, &sig) < 0) {
		fprintf(stderr, "maitctl kill: unknown signal '%s': expected a name (TERM, KILL, ...) or 1-%d\n",
			signame, _NSIG - 1);
		return MAITCTL_EXIT_USAGE;
	}
	if (!target) {
		fprintf(stderr, "maitctl kill: no process given (an id or a tag)\n");
		return MAITCTL_EXIT_USAGE;
	}
	uint64_t id;
	const char *tag;
	exec_parse_target(target, &id, &tag);
	if (tag) {
		_cleanup_response_ Valet__V1__ListProcessesResponse *l = NULL;
		const Valet__V1__ProcessInfo *info;
		int r = exec_find_running(ctl, 0, tag, &l, &info);
		if (r > 0)
			return r;
		if (r < 0) {
			char msg[400];
			snprintf(msg, sizeof(msg), "tag: no running process has the tag %s", ESCAPED(tag));
			maitctl_print_error(ctl, RPC_NOT_FOUND, msg);
			return MAITCTL_EXIT_RPC_ERROR;
		}
		id = info->id;
	}
	req.id = id;
	req.signal = sig;
	return maitctl_call_empty(ctl, "/valet.v1.Process/SendSignal", &req.base);
}

const struct maitctl_command maitctl_cmd_ps = { "ps", "list the processes started by exec", run_ps };
const struct maitctl_command maitctl_cmd_kill = { "kill", "send a signal to a process started by exec", run_kill };
