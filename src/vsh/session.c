#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "base/macro.h"
#include "base/spawn.h"
#include "base/terminal.h"
#include "base/time-util.h"
#include "base/wait-status.h"
#include "loop/loop.h"
#include "base/buf.h"
#include "vsh/frame.h"
#include "vsh/handshake.h"
#include "pb/nul-check.h"

#define OUT_HIGH (256 * 1024)	 /* stop reading the target while this much is unsent */
#define STDIN_HIGH (1024 * 1024) /* stop reading the client while this much is unwritten */

enum { OUT_STDOUT, OUT_STDERR, N_OUT };

struct session {
	struct loop *loop;
	int sock;
	struct loop_io *sock_io;
	struct buf in, out;
	bool pty;
	/* pty mode: both directions. Held open until the target has been
	 * reaped: closing it hangs the terminal up, and a target still on its
	 * way out (its stdio closed, exit() not yet done) would die of SIGHUP. */
	int master;
	int stdin_fd;
	struct loop_io *stdin_io;
	struct buf stdin_pending;
	bool stdin_eof; /* client sent EOF: close stdin once drained */
	int out_fd[N_OUT];
	struct loop_io *out_io[N_OUT];
	pid_t pid;
	bool reaped; /* the target's exit status is in status */
	int status;
	struct loop_timer *drain;
	enum vsh_session_state state;
	/* Why the session went to FAILED: the client gets it in the FAILED
	 * status, the target a hang-up. */
	const char *fault;
};

/* --- the state machine ---------------------------------------------------- */

static const char *const state_names[] = {
	[VSH_SESSION_RUNNING] = "running",	   [VSH_SESSION_DRAINING] = "draining",
	[VSH_SESSION_EXITED] = "exited",	   [VSH_SESSION_CLIENT_GONE] = "client-gone",
	[VSH_SESSION_FAILED] = "failed",
};

const char *vsh_session_state_name(enum vsh_session_state st)
{
	return (unsigned)st < ARRAY_SIZE(state_names) ? state_names[st] : "?";
}

bool vsh_session_state_is_final(enum vsh_session_state st)
{
	return st == VSH_SESSION_EXITED || st == VSH_SESSION_CLIENT_GONE || st == VSH_SESSION_FAILED;
}

enum vsh_session_state vsh_session_step(enum vsh_session_state st, enum vsh_session_event ev)
{
	switch (ev) {
	case VSH_EVENT_CLIENT_GONE:
		/* Nothing can be told any more, whatever was to be said. */
		return VSH_SESSION_CLIENT_GONE;
	case VSH_EVENT_FAULT:
		return st == VSH_SESSION_RUNNING || st == VSH_SESSION_DRAINING ? VSH_SESSION_FAILED : st;
	case VSH_EVENT_TARGET_EXITED:
		return st == VSH_SESSION_RUNNING ? VSH_SESSION_DRAINING : st;
	case VSH_EVENT_OUTPUT_DONE:
		return st == VSH_SESSION_DRAINING ? VSH_SESSION_EXITED : st;
	}
	return st;
}

static void session_event(struct session *s, enum vsh_session_event ev)
{
	s->state = vsh_session_step(s->state, ev);
	if (vsh_session_state_is_final(s->state))
		loop_exit(s->loop, 0);
}

static void session_fault(struct session *s, const char *why)
{
	if (!vsh_session_state_is_final(s->state))
		s->fault = why;
	session_event(s, VSH_EVENT_FAULT);
}

/* --- sending ------------------------------------------------------------ */

static int queue_host(struct session *s, VmTools__Vsh__HostMessage *h)
{
	return vsh_frame_append(&s->out, &h->base);
}

/* Output in frames of at most VSH_MAX_DATA; len 0 is the stream's EOF. */
static void queue_data(struct session *s, VmTools__Vsh__StdioStream stream, const uint8_t *data, size_t len)
{
	if (vsh_frame_append_data(&s->out, VSH_FROM_SERVER, stream, data, len) < 0)
		session_fault(s, "out of memory for the target's output");
}

static void session_update(struct session *s);

static void flush_out(struct session *s)
{
	if (buf_send(s->sock, &s->out) < 0) {
		s->out.len = 0;
		session_event(s, VSH_EVENT_CLIENT_GONE);
	}
}

/* --- target output -------------------------------------------------------- */

static void close_output(struct session *s, int k, bool send_eof)
{
	if (s->out_fd[k] < 0)
		return;
	loop_io_free(TAKE_PTR(s->out_io[k]));
	if (s->pty) {
		/* Stop reading (a master with no slave left reports EPOLLHUP for
		 * ever) but keep it open until the end: see struct session.
		 * The master was stdin too. */
		s->out_fd[k] = -1;
		s->stdin_fd = -1;
		buf_clear(&s->stdin_pending);
		return;
	}
	s->out_fd[k] = safe_close(s->out_fd[k]);
	if (send_eof)
		queue_data(s,
			   k == OUT_STDOUT ? VM_TOOLS__VSH__STDIO_STREAM__STDOUT_STREAM
					   : VM_TOOLS__VSH__STDIO_STREAM__STDERR_STREAM,
			   NULL, 0);
}

/* Reads what is there; returns false at EOF (or EIO: the pty's last
 * holder is gone). */
static bool read_output(struct session *s, int k, unsigned max_reads)
{
	/* Large reads, cut into frames of VSH_MAX_DATA: few system calls. */
	static uint8_t buf[16 * VSH_MAX_DATA];
	VmTools__Vsh__StdioStream stream = k == OUT_STDERR ? VM_TOOLS__VSH__STDIO_STREAM__STDERR_STREAM
							   : VM_TOOLS__VSH__STDIO_STREAM__STDOUT_STREAM;

	for (unsigned i = 0; i < max_reads; i++) {
		ssize_t n = read(s->out_fd[k], buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return true;
			return false; /* EIO and friends */
		}
		if (n == 0)
			return false;
		queue_data(s, stream, buf, (size_t)n);
		if (s->out.len >= OUT_HIGH)
			return true;
	}
	return true;
}

static void write_stdin(struct session *s);

static void on_output(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct session *s = userdata;
	int k = fd == s->out_fd[OUT_STDERR] ? OUT_STDERR : OUT_STDOUT;

	/* In pty mode the master carries the target's input as well. */
	if (events & EPOLLOUT)
		write_stdin(s);
	if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !read_output(s, k, 4))
		close_output(s, k, true);
	flush_out(s);
	session_update(s);
}

/* --- target input --------------------------------------------------------- */

static void close_stdin(struct session *s)
{
	loop_io_free(TAKE_PTR(s->stdin_io));
	if (!s->pty)
		s->stdin_fd = safe_close(s->stdin_fd);
	else
		s->stdin_fd = -1;
	buf_clear(&s->stdin_pending);
}

static void write_stdin(struct session *s)
{
	while (s->stdin_pending.len && s->stdin_fd >= 0) {
		ssize_t n = write(s->stdin_fd, s->stdin_pending.data, s->stdin_pending.len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN)
				return;
			close_stdin(s); /* EPIPE: nobody reads any more */
			return;
		}
		buf_consume(&s->stdin_pending, (size_t)n);
	}
	if (s->stdin_eof && !s->pty && s->stdin_fd >= 0 && !s->stdin_pending.len)
		close_stdin(s);
}

static void on_stdin_writable(struct loop_io *io, int fd, uint32_t events, void *ud)
{
	struct session *s = ud;
	write_stdin(s);
	session_update(s);
}

/* --- client messages ------------------------------------------------------ */

static void deliver_signal(struct session *s, int sig)
{
	pid_t pgrp = -1;

	if (sig <= 0 || sig >= _NSIG || s->state != VSH_SESSION_RUNNING)
		return;
	if (s->pty)
		pgrp = tcgetpgrp(s->master);
	if (pgrp <= 0)
		pgrp = s->pid; /* the target leads its own session and group */
	(void)kill(-pgrp, sig);
}

static void handle_guest(struct session *s, const VmTools__Vsh__GuestMessage *g)
{
	switch (g->msg_case) {
	case VM_TOOLS__VSH__GUEST_MESSAGE__MSG_DATA_MESSAGE: {
		const VmTools__Vsh__DataMessage *d = g->data_message;
		if (s->stdin_fd < 0 || s->stdin_eof)
			return;
		int r = 0;
		if (d->data.len == 0) {
			if (s->pty) /* the line discipline's EOF */
				r = buf_append(&s->stdin_pending, (const uint8_t *)"\x04", 1, SIZE_MAX);
			else
				s->stdin_eof = true;
		} else
			r = buf_append(&s->stdin_pending, d->data.data, d->data.len, SIZE_MAX);
		if (r < 0)
			session_fault(s, "out of memory for the target's input");
		write_stdin(s);
		break;
	}
	case VM_TOOLS__VSH__GUEST_MESSAGE__MSG_RESIZE_MESSAGE: {
		const VmTools__Vsh__WindowResizeMessage *r = g->resize_message;
		if (s->pty)
			(void)pty_set_size(s->master, r->rows, r->cols);
		break;
	}
	case VM_TOOLS__VSH__GUEST_MESSAGE__MSG_SIGNAL: deliver_signal(s, (int)g->signal); break;
	case VM_TOOLS__VSH__GUEST_MESSAGE__MSG_STATUS_MESSAGE:
		if (g->status_message->status != VM_TOOLS__VSH__CONNECTION_STATUS__READY)
			session_event(s, VSH_EVENT_CLIENT_GONE);
		break;
	default: break;
	}
}

static int on_guest_frame(const uint8_t *msg, size_t len, void *userdata)
{
	struct session *s = userdata;
	VmTools__Vsh__GuestMessage *g = vm_tools__vsh__guest_message__unpack(NULL, len, msg);

	if (!g)
		return -EBADMSG;
	handle_guest(s, g);
	vm_tools__vsh__guest_message__free_unpacked(g, NULL);
	return 0;
}

/* Decodes and handles every whole frame in s->in. An oversized or
 * undecodable frame loses the stream. */
static void handle_frames(struct session *s)
{
	if (vsh_frame_take(&s->in, on_guest_frame, s) < 0)
		session_event(s, VSH_EVENT_CLIENT_GONE);
}

static void on_sock(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct session *s = userdata;
	uint8_t buf[65536];

	if (events & EPOLLOUT)
		flush_out(s);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			session_event(s, VSH_EVENT_CLIENT_GONE);
		else if (n > 0 && buf_append(&s->in, buf, (size_t)n, SIZE_MAX) < 0)
			session_event(s, VSH_EVENT_CLIENT_GONE);
	}
	handle_frames(s);
	session_update(s);
}

/* --- lifecycle ------------------------------------------------------------ */

static bool outputs_open(const struct session *s)
{
	return s->out_fd[OUT_STDOUT] >= 0 || s->out_fd[OUT_STDERR] >= 0;
}

static void on_drain_deadline(struct loop_timer *t, void *userdata)
{
	struct session *s = userdata;
	/* Take what is buffered now, then stop waiting for the holders. */
	for (int k = 0; k < N_OUT; k++)
		if (s->out_fd[k] >= 0) {
			(void)read_output(s, k, 1u << 20);
			close_output(s, k, true);
		}
	session_update(s);
}

static void on_target_exit(struct session *s, int status)
{
	s->reaped = true;
	s->status = status;
	session_event(s, VSH_EVENT_TARGET_EXITED);
	/* Everything the target wrote is in the pipe or pty by now. */
	for (int k = 0; k < N_OUT; k++)
		if (s->out_fd[k] >= 0 && !read_output(s, k, 1u << 20))
			close_output(s, k, true);
	/* Registered before the target started: arming it cannot fail. */
	if (outputs_open(s))
		loop_timer_set(s->drain, now_usec() + VSH_DRAIN_USEC);
	session_update(s);
}

/* The target is the session's only child: the loop's hook for children
 * nobody registered sees it, with nothing to allocate (and nothing to
 * fail) after it has started. */
static void on_reaped(struct loop *l, pid_t pid, int status, void *userdata)
{
	struct session *s = userdata;
	if (pid == s->pid && !s->reaped)
		on_target_exit(s, status);
}

/* Re-arms interest from the buffers' state. */
static void session_update(struct session *s)
{
	int r = 0;

	if (!outputs_open(s))
		session_event(s, VSH_EVENT_OUTPUT_DONE);
	if (vsh_session_state_is_final(s->state))
		return;
	bool pause = s->out.len >= OUT_HIGH;
	for (int k = 0; k < N_OUT && r >= 0; k++)
		if (s->out_io[k])
			r = loop_io_set_events(s->out_io[k],
					       (pause ? 0 : EPOLLIN) | (s->pty && s->stdin_pending.len ? EPOLLOUT : 0));
	uint32_t ev = s->stdin_pending.len >= STDIN_HIGH ? 0 : EPOLLIN;
	if (s->out.len)
		ev |= EPOLLOUT;
	if (r >= 0)
		r = loop_io_set_events(s->sock_io, ev);
	if (r >= 0 && s->stdin_io)
		r = loop_io_set_events(s->stdin_io, s->stdin_pending.len ? EPOLLOUT : 0);
	/* Watching with stale interest would spin or stall: stop. */
	if (r < 0)
		session_fault(s, "cannot update the session's watches");
}

/* --- setup ---------------------------------------------------------------- */

static int reply_setup(int fd, VmTools__Vsh__ConnectionStatus status, const char *description, int pid)
{
	return vsh_send_setup_response(fd, status, description, pid, VSH_SETUP_TIMEOUT_MSEC);
}

static void request_freep(VmTools__Vsh__SetupConnectionRequest **req)
{
	if (*req)
		vm_tools__vsh__setup_connection_request__free_unpacked(*req, NULL);
}

/* Decodes the request, refusing one with a string that protobuf-c would
 * cut at a NUL. */
static int decode_setup(const uint8_t *msg, size_t mlen, VmTools__Vsh__SetupConnectionRequest **ret, char *err,
			size_t err_size)
{
	_cleanup_(request_freep) VmTools__Vsh__SetupConnectionRequest *req =
		vm_tools__vsh__setup_connection_request__unpack(NULL, mlen, msg);
	char field[64];

	if (!req) {
		snprintf(err, err_size, "could not decode the setup request");
		return -EBADMSG;
	}
	int nul = pb_find_nul_string(&vm_tools__vsh__setup_connection_request__descriptor, msg, mlen, field,
				     sizeof(field));
	if (nul > 0)
		snprintf(err, err_size, "invalid setup request: field '%s' contains a NUL byte", field);
	else if (nul < 0)
		snprintf(err, err_size, "could not decode the setup request");
	if (nul != 0)
		return -EBADMSG;
	*ret = TAKE_PTR(req);
	return 0;
}

/* Starts from the bytes vshd already read (at most VSH_FRAME_MAX). Bytes
 * after the request (the client may send stdin right away) are left in
 * rest. */
static int read_setup(int fd, const uint8_t *received, size_t received_len, struct buf *rest,
		      VmTools__Vsh__SetupConnectionRequest **ret, char *err, size_t err_size)
{
	_cleanup_(request_freep) VmTools__Vsh__SetupConnectionRequest *req = NULL;
	uint8_t buf[VSH_FRAME_MAX];
	size_t len = MIN(received_len, sizeof(buf)), mlen, flen;
	const uint8_t *msg;
	int r;

	if (len)
		memcpy(buf, received, len);
	r = vsh_read_frame(fd, buf, sizeof(buf), &len, now_usec() + VSH_SETUP_TIMEOUT_MSEC * 1000ull, &msg, &mlen,
			   &flen);
	if (r == -EMSGSIZE)
		snprintf(err, err_size, "setup request larger than %d bytes", VSH_MAX_MESSAGE);
	else if (r == -ETIMEDOUT)
		snprintf(err, err_size, "no setup request within %d s", VSH_SETUP_TIMEOUT_MSEC / 1000);
	else if (r == -ESHUTDOWN)
		snprintf(err, err_size, "client closed the connection during setup");
	else if (r < 0)
		snprintf(err, err_size, "read failed during setup: %s", strerror(-r));
	if (r >= 0)
		r = decode_setup(msg, mlen, &req, err, err_size);
	if (r >= 0 && buf_append(rest, buf + flen, len - flen, SIZE_MAX) < 0) {
		snprintf(err, err_size, "out of memory");
		r = -ENOMEM;
	}
	if (r < 0)
		return -EPROTO;
	*ret = TAKE_PTR(req);
	return 0;
}

/* The target's ends of its stdio, closed once it has started. */
struct child_stdio {
	int fds[3];
};

static void child_stdio_close(struct child_stdio *c)
{
	for (int i = 0; i < 3; i++)
		c->fds[i] = safe_close(c->fds[i]);
}

/* A PTY (one fd for the three) or three pipes; the session's ends go into
 * s, the target's into ret. */
static int open_stdio(struct session *s, const VmTools__Vsh__SetupConnectionRequest *req, struct child_stdio *ret,
		      char *err, size_t err_size)
{
	int r;

	if (s->pty) {
		int slave = -1;
		r = pty_open(req->window_rows, req->window_cols, &s->master, &slave);
		if (r < 0) {
			snprintf(err, err_size, "could not allocate pty: %s", strerror(-r));
			return r;
		}
		ret->fds[0] = slave;
		s->stdin_fd = s->out_fd[OUT_STDOUT] = s->master;
		return 0;
	}
	int pipes[3][2];
	for (int i = 0; i < 3; i++)
		if (pipe2(pipes[i], O_CLOEXEC) < 0) {
			r = -errno;
			for (int j = 0; j < i; j++) {
				safe_close(pipes[j][0]);
				safe_close(pipes[j][1]);
			}
			snprintf(err, err_size, "could not create pipes: %s", strerror(-r));
			return r;
		}
	*ret = (struct child_stdio){ { pipes[0][0], pipes[1][1], pipes[2][1] } };
	s->stdin_fd = pipes[0][1];
	s->out_fd[OUT_STDOUT] = pipes[1][0];
	s->out_fd[OUT_STDERR] = pipes[2][0];
	for (int i = 0; i < 3; i++)
		(void)fcntl(i == 0 ? s->stdin_fd : s->out_fd[i - 1], F_SETFL, O_NONBLOCK);
	return 0;
}

/* Everything the session watches, registered before the target starts:
 * once it runs, no registration is left that could fail and leave the
 * client waiting for an EXITED that never comes. */
static int watch_all(struct session *s)
{
	int r = loop_new(&s->loop);
	if (r < 0)
		return r;
	loop_set_orphan_handler(s->loop, on_reaped, s);
	r = loop_add_io(s->loop, s->sock, EPOLLIN, on_sock, s, &s->sock_io);
	for (int k = 0; k < N_OUT && r >= 0; k++)
		if (s->out_fd[k] >= 0)
			r = loop_add_io(s->loop, s->out_fd[k], EPOLLIN, on_output, s, &s->out_io[k]);
	if (r >= 0 && !s->pty)
		r = loop_add_io(s->loop, s->stdin_fd, 0, on_stdin_writable, s, &s->stdin_io);
	/* Armed when the target exits. */
	if (r >= 0)
		r = loop_add_timer(s->loop, UINT64_MAX, on_drain_deadline, s, &s->drain);
	return r;
}

/* Opens its stdio, watches everything and starts the target. Returns 0 when
 * it runs, SPAWN_FAILED (with se) when exec failed, -errno with err. */
static int start_target(struct session *s, const VmTools__Vsh__SetupConnectionRequest *req,
			const struct exec_target *t, struct spawn_error *se, char *err, size_t err_size)
{
	struct child_stdio child = { { -1, -1, -1 } };
	struct spawn_params p;
	int r;

	s->pty = !req->nopty;
	r = open_stdio(s, req, &child, err, err_size);
	if (r < 0)
		return r;
	spawn_params_init(&p);
	for (int i = 0; i < 3; i++)
		p.stdio_fds[i] = child.fds[s->pty ? 0 : i];
	p.controlling_tty = s->pty;
	exec_target_spawn_params(t, &p);

	r = watch_all(s);
	if (r < 0) {
		snprintf(err, err_size, "out of resources: cannot watch the session: %s", strerror(-r));
		child_stdio_close(&child);
		return r;
	}
	r = spawn_process(&p, &s->pid, se);
	/* The child's ends belong to the child now. */
	child_stdio_close(&child);
	if (r < 0)
		snprintf(err, err_size, "could not start the target: %s", strerror(-r));
	return r;
}

/* --- the end -------------------------------------------------------------- */

/* Sends the last status message: EXITED with the code, or FAILED. */
static void send_status(struct session *s, VmTools__Vsh__ConnectionStatus status, const char *desc, int code)
{
	VmTools__Vsh__ConnectionStatusMessage st = VM_TOOLS__VSH__CONNECTION_STATUS_MESSAGE__INIT;
	VmTools__Vsh__HostMessage h = VM_TOOLS__VSH__HOST_MESSAGE__INIT;
	st.status = status;
	st.description = (char *)desc;
	st.code = code;
	h.msg_case = VM_TOOLS__VSH__HOST_MESSAGE__MSG_STATUS_MESSAGE;
	h.status_message = &st;
	if (queue_host(s, &h) < 0) {
		/* No room to append it: drop the unsent output instead. */
		s->out.len = 0;
		(void)queue_host(s, &h);
	}
	(void)vsh_send_all(s->sock, s->out.data, s->out.len, VSH_SETUP_TIMEOUT_MSEC);
}

/* Exec failed: started, as far as the client can tell, and ended at once:
 * 127 when there is no such program, 126 when it cannot run. */
static void report_exec_failure(struct session *s, const struct exec_target *t, const struct spawn_error *se,
				char *summary, size_t summary_size)
{
	char desc[300];

	snprintf(desc, sizeof(desc), "cannot execute '%.200s': %s%s%s", t->file, strerror(se->error),
		 se->stage == SPAWN_STAGE_EXEC ? "" : " at ",
		 se->stage == SPAWN_STAGE_EXEC ? "" : spawn_stage_name(se->stage));
	(void)reply_setup(s->sock, VM_TOOLS__VSH__CONNECTION_STATUS__READY, "vsh ready", 0);
	send_status(s, VM_TOOLS__VSH__CONNECTION_STATUS__EXITED, desc,
		    se->stage == SPAWN_STAGE_EXEC && se->error == ENOENT ? 127 : 126);
	snprintf(summary, summary_size, "user %s: %s", t->user, desc);
}

/* What the final state means for the client, the target and the log. */
static void finish(struct session *s, const struct exec_target *t, char *summary, size_t summary_size)
{
	if (s->state == VSH_SESSION_EXITED) {
		char desc[128];
		int code = wait_status_code(s->status);
		if (WIFEXITED(s->status))
			snprintf(desc, sizeof(desc), "target process has exited");
		else
			wait_status_str(s->status, desc);
		send_status(s, VM_TOOLS__VSH__CONNECTION_STATUS__EXITED, desc, code);
		snprintf(summary, summary_size, "user %s: %s (pid %d) ended with code %d: %s", t->user, t->argv[0],
			 (int)s->pid, code, desc);
		return;
	}
	/* The client went away first, or the session cannot go on: hang the
	 * target up. SIGCONT too, or a stopped target would keep the SIGHUP
	 * pending for ever. */
	if (!s->reaped) {
		(void)kill(-s->pid, SIGHUP);
		(void)kill(-s->pid, SIGCONT);
	}
	bool failed = s->state == VSH_SESSION_FAILED;
	if (failed)
		send_status(s, VM_TOOLS__VSH__CONNECTION_STATUS__FAILED, s->fault, 0);
	snprintf(summary, summary_size, "user %s: %s (pid %d): %s%s%s", t->user, t->argv[0], (int)s->pid,
		 failed ? "session failed: " : "client went away", failed ? s->fault : "",
		 s->reaped ? " after the target ended" : "; sent SIGHUP");
}

/* READY, then the loop until a final state. */
static void forward(struct session *s)
{
	(void)fcntl(s->sock, F_SETFL, O_NONBLOCK);
	if (reply_setup(s->sock, VM_TOOLS__VSH__CONNECTION_STATUS__READY, "vsh ready", s->pid) < 0)
		session_event(s, VSH_EVENT_CLIENT_GONE);
	else
		on_sock(NULL, s->sock, 0, s); /* whatever came along with the request */
	if (!vsh_session_state_is_final(s->state) && loop_run(s->loop) < 0)
		session_fault(s, "the session's event loop failed");
}

static void session_clear(struct session *s)
{
	/* Our sources first: the loop only detaches what is left (loop.h). */
	loop_io_free(s->sock_io);
	loop_io_free(s->stdin_io);
	for (int k = 0; k < N_OUT; k++)
		loop_io_free(s->out_io[k]);
	/* The target is reaped (or hung up) by now: closing the master is
	 * safe. */
	if (s->pty)
		safe_close(s->master);
	else {
		safe_close(s->out_fd[OUT_STDOUT]);
		safe_close(s->out_fd[OUT_STDERR]);
		safe_close(s->stdin_fd);
	}
	buf_clear(&s->in);
	buf_clear(&s->out);
	buf_clear(&s->stdin_pending);
	loop_timer_free(s->drain);
	loop_free(s->loop);
	safe_close(s->sock);
}

int vsh_session_run(int fd, const uint8_t *received, size_t received_len, const struct vsh_policy *policy,
		    char *summary, size_t summary_size)
{
	_cleanup_(session_clear) struct session s = { .sock = fd, .master = -1, .stdin_fd = -1, .out_fd = { -1, -1 } };
	_cleanup_(request_freep) VmTools__Vsh__SetupConnectionRequest *req = NULL;
	_cleanup_(exec_target_clear) struct exec_target t = { 0 };
	struct spawn_error se;
	char err[256];
	int r;

	r = read_setup(fd, received, received_len, &s.in, &req, err, sizeof(err));
	if (r >= 0 && req->target && *req->target && strcmp(req->target, "/vm_shell") != 0) {
		snprintf(err, sizeof(err), "container shells are not supported (target '%.100s'); use /vm_shell",
			 req->target);
		r = -EOPNOTSUPP;
	}
	if (r >= 0)
		r = vsh_target_prepare(req, policy, &t, err, sizeof(err));
	if (r >= 0)
		r = start_target(&s, req, &t, &se, err, sizeof(err));
	if (r < 0) {
		(void)reply_setup(fd, VM_TOOLS__VSH__CONNECTION_STATUS__FAILED, err, 0);
		snprintf(summary, summary_size, "setup failed: %s", err);
		return r;
	}
	if (r == SPAWN_FAILED) {
		report_exec_failure(&s, &t, &se, summary, summary_size);
		return 0;
	}
	forward(&s);
	finish(&s, &t, summary, summary_size);
	return 0;
}
