#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/exec-target.h"
#include "base/list.h"
#include "base/macro.h"
#include "base/spawn.h"
#include "base/strv.h"
#include "base/terminal.h"
#include "base/time-util.h"
#include "files/status.h"
#include "request.h"
#include "rpc/status.h"

/* Reads per wake-up of one output, so that one chatty process does not
 * starve the loop; at the end, what is left is read at once (bounded too:
 * a background child may be writing still). */
#define READS_PER_WAKE 8
#define READS_AT_END 256

static uint8_t read_buf[PROCESS_CHUNK];

/* The Conventions' table, and no memory as RESOURCE_EXHAUSTED. */
static int code_of(int r)
{
	return r == -ENOMEM || r == ENOMEM ? RPC_RESOURCE_EXHAUSTED : files_grpc_code(r);
}

void pproc_timestamp_pb(const struct timespec *t, Google__Protobuf__Timestamp *ts)
{
	*ts = (Google__Protobuf__Timestamp)GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	ts->seconds = t->tv_sec;
	ts->nanos = (int32_t)t->tv_nsec;
}

void pproc_exited_pb(const struct pproc *p, Valet__V1__ProcessEvent__Exited *ret, Google__Protobuf__Timestamp *ts)
{
	*ret = (Valet__V1__ProcessEvent__Exited)VALET__V1__PROCESS_EVENT__EXITED__INIT;
	if (WIFSIGNALED(p->status)) {
		ret->exit_code = -1;
		ret->signal = WTERMSIG(p->status);
		ret->core_dumped = WCOREDUMP(p->status) ? 1 : 0;
	} else
		ret->exit_code = WEXITSTATUS(p->status);
	pproc_timestamp_pb(&p->ended_at, ts);
	ret->ended = ts;
}

void pproc_kill_group(struct pproc *p, int sig)
{
	if (p->pid > 0)
		(void)kill(-p->pid, sig);
}

static void arm_output(struct pproc *p, int k);

/* --- input ---------------------------------------------------------------- */

static void input_call_end(struct pproc *p, int code, const char *fmt, ...) _printf_(3, 4);
static void input_call_end(struct pproc *p, int code, const char *fmt, ...)
{
	struct rpc_call *call = TAKE_PTR(p->input_call);
	char msg[256];
	va_list ap;

	free(p->input);
	p->input = NULL;
	p->input_len = p->input_done = 0;
	if (!call)
		return;
	rpc_call_set_cancel(call, NULL, NULL);
	if (code == RPC_OK) {
		Google__Protobuf__Empty e = GOOGLE__PROTOBUF__EMPTY__INIT;
		rpc_call_reply(call, &e.base);
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rpc_call_fail(call, code, "%s", msg);
}

/* Stops watching for room in the input (the PTY's master stays read). */
static void input_unwatch(struct pproc *p)
{
	if (p->pty)
		arm_output(p, PROC_STDOUT);
	else if (p->in_io)
		(void)loop_io_set_events(p->in_io, 0);
}

static void close_input(struct pproc *p, const char *why)
{
	if (p->input_call)
		input_call_end(p, RPC_FAILED_PRECONDITION, "process %llu: %s", (unsigned long long)p->id, why);
	if (p->pty) {
		input_unwatch(p);
		p->in_fd = -1; /* the master: closed with the output */
		return;
	}
	loop_io_free(TAKE_PTR(p->in_io));
	p->in_fd = safe_close(p->in_fd);
}

static void write_input(struct pproc *p)
{
	while (p->input_call && p->input_done < p->input_len) {
		ssize_t n = write(p->in_fd, p->input + p->input_done, p->input_len - p->input_done);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			/* EPIPE: nobody reads it any more. */
			char why[128];
			snprintf(why, sizeof(why), "stdin was closed by the process after %zu of %zu bytes: %s",
				 p->input_done, p->input_len, strerror(errno));
			close_input(p, why);
			return;
		}
		p->input_done += (size_t)n;
	}
	if (!p->input_call)
		return;
	input_unwatch(p);
	bool eof = p->input_eof && !p->pty;
	input_call_end(p, RPC_OK, NULL);
	if (eof)
		close_input(p, "stdin is closed");
}

static void on_input_cancel(struct rpc_call *call, void *userdata)
{
	struct pproc *p = userdata;

	/* The client gave up: what was not written is dropped. */
	p->input_call = NULL;
	free(p->input);
	p->input = NULL;
	p->input_len = p->input_done = 0;
	input_unwatch(p);
}

static void on_input_writable(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	write_input(userdata);
}

int pproc_send_input(struct pproc *p, struct rpc_call *call, const Valet__V1__SendInputRequest *req, char *err,
		     size_t err_size)
{
	unsigned long long id = (unsigned long long)p->id;

	if (p->reaped) {
		snprintf(err, err_size, "process %llu has exited", id);
		return RPC_FAILED_PRECONDITION;
	}
	if (!p->stdin_asked) {
		snprintf(err, err_size, "process %llu was started without stdin", id);
		return RPC_FAILED_PRECONDITION;
	}
	if (p->in_fd < 0) {
		snprintf(err, err_size, "process %llu: stdin is closed", id);
		return RPC_FAILED_PRECONDITION;
	}
	if (p->input_call) {
		snprintf(err, err_size, "process %llu: the previous SendInput is still being written", id);
		return RPC_FAILED_PRECONDITION;
	}
	/* On a PTY, eof is the line discipline's end of input (^D): the
	 * terminal itself stays open. */
	size_t extra = req->eof && p->pty ? 1 : 0;
	size_t len = req->data.len + extra;
	if (len) {
		p->input = malloc(len);
		if (!p->input) {
			snprintf(err, err_size, "process %llu: no memory for %zu bytes of input", id, len);
			return RPC_RESOURCE_EXHAUSTED;
		}
		if (req->data.len)
			memcpy(p->input, req->data.data, req->data.len);
		if (extra)
			p->input[len - 1] = 0x04;
	}
	p->input_len = len;
	p->input_done = 0;
	p->input_eof = req->eof;
	p->input_call = call;
	rpc_call_set_cancel(call, on_input_cancel, p);
	write_input(p);
	if (p->input_call) {
		/* The rest when the pipe or the PTY has room. */
		if (p->pty)
			arm_output(p, PROC_STDOUT);
		else
			(void)loop_io_set_events(p->in_io, EPOLLOUT);
	}
	return 0;
}

/* --- signals, window ------------------------------------------------------ */

int pproc_send_signal(struct pproc *p, int sig, bool group, char *err, size_t err_size)
{
	if (sig <= 0 || sig >= _NSIG) {
		snprintf(err, err_size, "signal: %d is not a signal number (1-%d)", sig, _NSIG - 1);
		return RPC_INVALID_ARGUMENT;
	}
	/* Once reaped, the pid may be someone else's; the group's id is not
	 * while a process of the group is left (the kernel keeps the number
	 * in use), so the group can still be signalled: what the process left
	 * behind (`sleep 1000 &`). */
	if (p->reaped && !group) {
		snprintf(err, err_size, "process %llu has exited", (unsigned long long)p->id);
		return RPC_FAILED_PRECONDITION;
	}
	if (kill(group ? -p->pid : p->pid, sig) < 0) {
		int r = -errno;
		if (r == -ESRCH) {
			snprintf(err, err_size, "process %llu has exited and no process of its group is left",
				 (unsigned long long)p->id);
			return RPC_FAILED_PRECONDITION;
		}
		snprintf(err, err_size, "process %llu: signal %d: %s", (unsigned long long)p->id, sig, strerror(-r));
		return code_of(r);
	}
	return 0;
}

int pproc_resize(struct pproc *p, unsigned rows, unsigned cols, char *err, size_t err_size)
{
	unsigned long long id = (unsigned long long)p->id;

	if (!p->pty) {
		snprintf(err, err_size, "process %llu has no PTY", id);
		return RPC_FAILED_PRECONDITION;
	}
	if (rows == 0 || rows > 65535 || cols == 0 || cols > 65535) {
		snprintf(err, err_size, "rows, cols: %u x %u is not a window size (1-65535 each)", rows, cols);
		return RPC_INVALID_ARGUMENT;
	}
	if (p->reaped || p->out_fd[PROC_STDOUT] < 0) {
		snprintf(err, err_size, "process %llu has exited", id);
		return RPC_FAILED_PRECONDITION;
	}
	int r = pty_set_size(p->out_fd[PROC_STDOUT], rows, cols);
	if (r < 0) {
		snprintf(err, err_size, "process %llu: resize: %s", id, strerror(-r));
		return code_of(r);
	}
	return 0;
}

/* --- output and the end --------------------------------------------------- */

static void close_output(struct pproc *p, int k)
{
	if (p->out_fd[k] < 0)
		return;
	if (p->pty)
		close_input(p, "the terminal is closed");
	loop_io_free(TAKE_PTR(p->out_io[k]));
	p->out_fd[k] = safe_close(p->out_fd[k]);
}

/* What stream k may take without dropping a byte that an attached call
 * has not sent yet: the ring's room behind the slowest cursor (a cursor
 * the ring has already passed counts from the ring's start: those bytes
 * are gone for it anyway). Unbounded with nobody attached: the process
 * runs on and its oldest output is dropped. The ring holds up to its
 * size, or what it has plus what the service's total has left. */
static size_t output_room(const struct pproc *p, int k)
{
	const struct ring *r = &p->ring[k];
	const struct ring_budget *b = &p->svc->budget;
	uint64_t low = r->end;

	if (!p->attached)
		return SIZE_MAX;
	for (const struct pattach *a = p->attached; a; a = a->next) {
		uint64_t c = a->cursor[k] > ring_start(r) ? a->cursor[k] : ring_start(r);
		if (c < low)
			low = c;
	}
	size_t hold = r->cap + (b->total - b->used);
	if (hold > p->buffer_bytes)
		hold = p->buffer_bytes;
	return hold > r->end - low ? hold - (size_t)(r->end - low) : 0;
}

/* The watch on stream k: readable unless paused; room for input on the
 * PTY's master while a SendInput is being written. Paused, the watch is
 * one-shot, so that a hang-up (which epoll reports whatever is asked)
 * wakes it once, not on every turn of the loop. */
static void arm_output(struct pproc *p, int k)
{
	uint32_t ev = p->out_paused[k] ? 0 : EPOLLIN;

	if (!p->out_io[k])
		return;
	if (p->pty && k == PROC_STDOUT && p->input_call && p->input_done < p->input_len)
		ev |= EPOLLOUT;
	if (p->out_paused[k]) {
		if (!ev && p->out_hup[k])
			return; /* stays disarmed until resumed */
		ev |= EPOLLONESHOT;
	}
	(void)loop_io_set_events(p->out_io[k], ev);
}

static void pause_output(struct pproc *p, int k)
{
	if (p->out_paused[k])
		return;
	p->out_paused[k] = true;
	arm_output(p, k);
}

void pproc_resume_output(struct pproc *p)
{
	for (int k = 0; k < PROC_N_STREAMS; k++)
		if (p->out_paused[k] && output_room(p, k) > 0) {
			p->out_paused[k] = p->out_hup[k] = false;
			arm_output(p, k);
		}
}

/* Reads at most max times, never more than the stream may take (else
 * pauses it); false at EOF (or EIO: the PTY's last holder is gone).
 * *got: something was read. */
static bool read_output(struct pproc *p, int k, unsigned max, bool *got)
{
	for (unsigned i = 0; i < max; i++) {
		size_t room = output_room(p, k);
		if (room == 0) {
			pause_output(p, k);
			return true;
		}
		ssize_t n = read(p->out_fd[k], read_buf, room < sizeof(read_buf) ? room : sizeof(read_buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return errno == EAGAIN;
		}
		if (n == 0)
			return false;
		ring_append(&p->ring[k], read_buf, (size_t)n, p->buffer_bytes, &p->svc->budget);
		*got = true;
	}
	return true;
}

/* Ended: reaped, and every output closed. */
static void check_end(struct pproc *p)
{
	if (p->ended || !p->reaped || p->out_fd[PROC_STDOUT] >= 0 || p->out_fd[PROC_STDERR] >= 0)
		return;
	p->ended = true;
	p->ended_usec = now_usec();
	loop_timer_set(p->drain, USEC_INFINITY);
}

static void on_output(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct pproc *p = userdata;
	int k = fd == p->out_fd[PROC_STDERR] ? PROC_STDERR : PROC_STDOUT;
	bool got = false;

	if (p->pty && (events & EPOLLOUT))
		write_input(p);
	if (p->out_paused[k]) {
		/* Woken once (one-shot) for input room or a hang-up: the
		 * output waits for the slowest call to move on. */
		if (events & (EPOLLHUP | EPOLLERR))
			p->out_hup[k] = true;
		arm_output(p, k);
		return;
	}
	/* After the drain deadline, what is there is read and the stream
	 * closed, unless it had to pause first (then the rest when resumed). */
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) &&
	    (!read_output(p, k, p->draining ? READS_AT_END : READS_PER_WAKE, &got) ||
	     (p->draining && !p->out_paused[k])))
		close_output(p, k);
	check_end(p);
	if (got || p->ended)
		p->svc->changed(p);
}

/* Output still held open by what the process left behind: what is there
 * now is the last of it. */
static void on_drain_deadline(struct loop_timer *t, void *userdata)
{
	struct pproc *p = userdata;
	bool got = false;

	p->draining = true;
	for (int k = 0; k < PROC_N_STREAMS; k++)
		if (p->out_fd[k] >= 0 && (!read_output(p, k, READS_AT_END, &got) || !p->out_paused[k]))
			close_output(p, k);
	check_end(p);
	p->svc->changed(p);
}

static void on_process_exit(pid_t pid, int status, void *userdata)
{
	struct pproc *p = userdata;
	bool got = false;

	p->reaped = true;
	p->status = status;
	clock_gettime(CLOCK_REALTIME, &p->ended_at);
	/* What it wrote is in the pipes or the PTY by now. */
	for (int k = 0; k < PROC_N_STREAMS; k++)
		if (p->out_fd[k] >= 0 && !read_output(p, k, READS_AT_END, &got))
			close_output(p, k);
	if (p->in_fd >= 0 || p->input_call)
		close_input(p, "the process has exited");
	if (p->out_fd[PROC_STDOUT] >= 0 || p->out_fd[PROC_STDERR] >= 0)
		loop_timer_set(p->drain, now_usec() + PROCESS_DRAIN_USEC);
	check_end(p);
	p->svc->changed(p);
}

/* --- start and free ------------------------------------------------------- */

void pproc_free(struct pproc *p)
{
	struct process_service *s;

	if (!p)
		return;
	s = p->svc;
	if (!p->reaped)
		pproc_kill_group(p, SIGKILL);
	if (p->input_call) {
		rpc_call_set_cancel(p->input_call, NULL, NULL);
		p->input_call = NULL;
	}
	free(p->input);
	if (p->pty)
		p->in_fd = -1;
	loop_io_free(p->in_io);
	safe_close(p->in_fd);
	for (int k = 0; k < PROC_N_STREAMS; k++) {
		loop_io_free(p->out_io[k]);
		safe_close(p->out_fd[k]);
		ring_free(&p->ring[k], &s->budget);
	}
	loop_child_free(p->child);
	loop_timer_free(p->drain);
	free(p->tag);
	strv_free(p->argv);
	free(p->user);
	free(p);
}

/* argv as List shows it: whole arguments while they fit in
 * PROCESS_LIST_ARGV_BYTES, the one that does not cut there, the rest
 * left out. */
static char **list_argv(char *const *argv, size_t n)
{
	size_t left = PROCESS_LIST_ARGV_BYTES, i;
	char **v = calloc(n + 1, sizeof(char *));

	if (!v)
		return NULL;
	for (i = 0; i < n && left > 0; i++) {
		size_t len = strlen(argv[i]);
		if (len > left)
			len = left;
		v[i] = strndup(argv[i], len);
		if (!v[i]) {
			strv_free(v);
			return NULL;
		}
		left -= len;
	}
	return v;
}

/* The process's stdio: a PTY (one fd for the three) or pipes; our ends
 * into p (non-blocking), the child's into child[3] (-1: /dev/null). */
static int open_stdio(struct pproc *p, const Valet__V1__StartRequest *req, int child[3])
{
	if (p->pty) {
		int master, slave, r;
		r = pty_open(req->rows ? req->rows : PROCESS_DEFAULT_ROWS, req->cols ? req->cols : PROCESS_DEFAULT_COLS,
			     &master, &slave);
		if (r < 0)
			return r;
		p->out_fd[PROC_STDOUT] = master;
		p->in_fd = req->stdin ? master : -1;
		child[0] = child[1] = child[2] = slave;
		return 0;
	}
	for (int i = req->stdin ? 0 : 1; i < 3; i++) {
		int fds[2];
		if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
			return -errno;
		/* The child's end blocks, as a program expects. */
		(void)fcntl(fds[i == 0 ? 0 : 1], F_SETFL, 0);
		if (i == 0) {
			child[0] = fds[0];
			p->in_fd = fds[1];
		} else {
			child[i] = fds[1];
			p->out_fd[i - 1] = fds[0];
		}
	}
	return 0;
}

static void close_child_stdio(int child[3])
{
	for (int i = 0; i < 3; i++) {
		if (child[i] >= 0)
			for (int j = i + 1; j < 3; j++)
				if (child[j] == child[i])
					child[j] = -1;
		child[i] = safe_close(child[i]);
	}
}

/* Every watch, before the process exists: once it runs nothing may fail. */
static int watch_all(struct pproc *p)
{
	struct loop *l = p->svc->core->loop;
	int r = 0;

	for (int k = 0; k < PROC_N_STREAMS && r >= 0; k++)
		if (p->out_fd[k] >= 0)
			r = loop_add_io(l, p->out_fd[k], EPOLLIN, on_output, p, &p->out_io[k]);
	if (r >= 0 && !p->pty && p->in_fd >= 0)
		r = loop_add_io(l, p->in_fd, 0, on_input_writable, p, &p->in_io);
	if (r >= 0)
		r = loop_child_new(l, &p->child);
	if (r >= 0)
		r = loop_add_timer(l, USEC_INFINITY, on_drain_deadline, p, &p->drain);
	return r;
}

static int prepare_target(const Valet__V1__StartRequest *req, struct exec_target *t, char *err, size_t err_size)
{
	_cleanup_free_ struct exec_env_var *env = NULL;
	char why[256];

	if (req->n_env) {
		env = calloc(req->n_env, sizeof(*env));
		if (!env) {
			snprintf(err, err_size, "no memory for the environment");
			return RPC_RESOURCE_EXHAUSTED;
		}
		for (size_t i = 0; i < req->n_env; i++)
			env[i] = (struct exec_env_var){ req->env[i]->key, req->env[i]->value };
	}
	struct exec_request x = {
		.user = req->user,
		.allow_user_switch = true,
		.argv = req->argv,
		.n_argv = req->n_argv,
		.env = env,
		.n_env = req->n_env,
		.clear_env = req->clear_env,
		.env_wins = true,
		.term = req->pty ? "xterm-256color" : NULL,
		.cwd = req->cwd,
		.cwd_exact = true,
	};
	int r = exec_target_prepare(&x, t, why, sizeof(why));
	if (r == 0)
		return 0;
	if (r == -ENOENT) {
		snprintf(err, err_size, "user: no such user: %.200s", req->user);
		return RPC_INVALID_ARGUMENT;
	}
	snprintf(err, err_size, "user %.200s: %s", req->user && *req->user ? req->user : "root", why);
	return r == -ENOMEM ? RPC_RESOURCE_EXHAUSTED : code_of(r);
}

static int spawn_failed(const struct exec_target *t, const struct spawn_error *se, char *err, size_t err_size)
{
	switch (se->stage) {
	case SPAWN_STAGE_EXEC:
		snprintf(err, err_size, "cannot execute '%.200s': %s", t->file, strerror(se->error));
		break;
	case SPAWN_STAGE_CWD:
		snprintf(err, err_size, "cwd %.200s: %s", t->cwd, strerror(se->error));
		break;
	default:
		snprintf(err, err_size, "cannot start '%.200s': %s: %s", t->file, spawn_stage_name(se->stage),
			 strerror(se->error));
		break;
	}
	return code_of(se->error);
}

int pproc_start(struct process_service *svc, const Valet__V1__StartRequest *req, size_t buffer, struct pproc **ret,
		char *err, size_t err_size)
{
	_cleanup_(exec_target_clear) struct exec_target t = { 0 };
	int child[3] = { -1, -1, -1 };
	struct spawn_params sp;
	struct spawn_error se;
	struct pproc *p;
	int code, r;

	code = prepare_target(req, &t, err, err_size);
	if (code)
		return code;
	p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, err_size, "no memory for a process");
		return RPC_RESOURCE_EXHAUSTED;
	}
	p->svc = svc;
	p->reaped = true; /* nothing to kill until it runs */
	p->in_fd = p->out_fd[0] = p->out_fd[1] = -1;
	p->pty = req->pty;
	p->stdin_asked = req->stdin;
	p->kill_on_disconnect = req->kill_on_disconnect;
	p->buffer_bytes = buffer;
	p->tag = strdup(req->tag ? req->tag : "");
	p->user = strdup(t.user);
	p->argv = list_argv(req->argv, req->n_argv);
	if (!p->tag || !p->user || !p->argv) {
		pproc_free(p);
		snprintf(err, err_size, "no memory for a process");
		return RPC_RESOURCE_EXHAUSTED;
	}
	r = open_stdio(p, req, child);
	if (r >= 0)
		r = watch_all(p);
	if (r < 0) {
		close_child_stdio(child);
		pproc_free(p);
		snprintf(err, err_size, "cannot set up the process's %s: %s", req->pty ? "PTY" : "pipes", strerror(-r));
		return code_of(r);
	}

	spawn_params_init(&sp);
	exec_target_spawn_params(&t, &sp);
	for (int i = 0; i < 3; i++)
		sp.stdio_fds[i] = child[i];
	sp.controlling_tty = p->pty;
	r = spawn_process(&sp, &p->pid, &se);
	close_child_stdio(child);
	if (r != 0) {
		code = r == SPAWN_FAILED ? spawn_failed(&t, &se, err, err_size) : code_of(r);
		if (r < 0)
			snprintf(err, err_size, "cannot start '%.200s': %s", t.file, strerror(-r));
		pproc_free(p);
		return code;
	}
	p->reaped = false;
	loop_child_watch(p->child, p->pid, on_process_exit, p);
	clock_gettime(CLOCK_REALTIME, &p->started);
	p->id = ++svc->next_id;
	LIST_PREPEND(svc->procs, p);
	svc->n_procs++;
	*ret = p;
	return 0;
}
