#include "session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include "base/time-util.h"
#include "base/wait-status.h"
#include "loop/loop.h"
#include "base/buf.h"
#include "vsh/frame.h"
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
	bool out_paused;
	pid_t pid;
	bool exited;
	int status;
	struct loop_timer *drain;
	bool done;
	bool client_gone;
	/* Set when the session cannot go on (a watch or a buffer failed): the
	 * client gets FAILED with this, the target a hang-up. */
	const char *fault;
};

static void session_fault(struct session *s, const char *why)
{
	if (!s->fault)
		s->fault = why;
}

/* --- sending ------------------------------------------------------------ */

static int queue_host(struct session *s, VmTools__Vsh__HostMessage *h)
{
	return vsh_frame_append(&s->out, &h->base);
}

static void queue_data(struct session *s, int stream, const uint8_t *data, size_t len)
{
	VmTools__Vsh__DataMessage d = VM_TOOLS__VSH__DATA_MESSAGE__INIT;
	VmTools__Vsh__HostMessage h = VM_TOOLS__VSH__HOST_MESSAGE__INIT;
	d.stream = stream;
	d.data.data = (uint8_t *)data;
	d.data.len = len;
	h.msg_case = VM_TOOLS__VSH__HOST_MESSAGE__MSG_DATA_MESSAGE;
	h.data_message = &d;
	if (queue_host(s, &h) < 0)
		session_fault(s, "out of memory for the target's output");
}

static void session_update(struct session *s);

static void flush_out(struct session *s)
{
	if (buf_send(s->sock, &s->out) < 0) {
		s->client_gone = true;
		s->out.len = 0;
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
	int stream = k == OUT_STDERR ? VM_TOOLS__VSH__STDIO_STREAM__STDERR_STREAM
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
		for (ssize_t off = 0; off < n; off += VSH_MAX_DATA)
			queue_data(s, stream, buf + off, (size_t)MIN((ssize_t)VSH_MAX_DATA, n - off));
		if (s->out.len >= OUT_HIGH)
			return true;
	}
	return true;
}

static void write_stdin(struct session *s);

static void on_output(struct loop_io *io _unused_, int fd, uint32_t events, void *userdata)
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

static void on_stdin_writable(struct loop_io *io _unused_, int fd _unused_, uint32_t events _unused_, void *ud)
{
	struct session *s = ud;
	write_stdin(s);
	session_update(s);
}

/* --- client messages ------------------------------------------------------ */

static void deliver_signal(struct session *s, int sig)
{
	pid_t pgrp = -1;

	if (sig <= 0 || sig >= _NSIG || s->exited)
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
		if (s->pty && r->rows > 0 && r->rows <= 65535 && r->cols > 0 && r->cols <= 65535) {
			struct winsize ws = { .ws_row = (unsigned short)r->rows, .ws_col = (unsigned short)r->cols };
			(void)ioctl(s->master, TIOCSWINSZ, &ws);
		}
		break;
	}
	case VM_TOOLS__VSH__GUEST_MESSAGE__MSG_SIGNAL: deliver_signal(s, (int)g->signal); break;
	case VM_TOOLS__VSH__GUEST_MESSAGE__MSG_STATUS_MESSAGE:
		if (g->status_message->status != VM_TOOLS__VSH__CONNECTION_STATUS__READY)
			s->client_gone = true;
		break;
	default: break;
	}
}

static void on_sock(struct loop_io *io _unused_, int fd, uint32_t events, void *userdata)
{
	struct session *s = userdata;
	uint8_t buf[65536];

	if (events & EPOLLOUT)
		flush_out(s);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			s->client_gone = true;
		else if (n > 0 && buf_append(&s->in, buf, (size_t)n, SIZE_MAX) < 0)
			s->client_gone = true;
	}
	size_t off = 0;
	for (;;) {
		const uint8_t *msg;
		size_t mlen, flen;
		int r = vsh_frame_next(s->in.data + off, s->in.len - off, &msg, &mlen, &flen);
		if (r < 0)
			s->client_gone = true; /* oversized: the stream is lost */
		if (r <= 0)
			break;
		VmTools__Vsh__GuestMessage *g = vm_tools__vsh__guest_message__unpack(NULL, mlen, msg);
		off += flen;
		if (!g) {
			s->client_gone = true;
			break;
		}
		handle_guest(s, g);
		vm_tools__vsh__guest_message__free_unpacked(g, NULL);
	}
	buf_consume(&s->in, off);
	session_update(s);
}

/* --- lifecycle ------------------------------------------------------------ */

static void on_drain_deadline(struct loop_timer *t _unused_, void *userdata)
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

static void on_target_exit(pid_t pid _unused_, int status, void *userdata)
{
	struct session *s = userdata;

	s->exited = true;
	s->status = status;
	/* Everything the target wrote is in the pipe or pty by now. */
	for (int k = 0; k < N_OUT; k++)
		if (s->out_fd[k] >= 0 && !read_output(s, k, 1u << 20))
			close_output(s, k, true);
	/* Registered before the target started: arming it cannot fail. */
	if (s->out_fd[OUT_STDOUT] >= 0 || s->out_fd[OUT_STDERR] >= 0)
		loop_timer_set(s->drain, now_usec() + VSH_DRAIN_USEC);
	session_update(s);
}

/* The target is the session's only child: the loop's hook for children
 * nobody registered sees it, with nothing to allocate (and nothing to
 * fail) after it has started. */
static void on_reaped(struct loop *l _unused_, pid_t pid, int status, void *userdata)
{
	struct session *s = userdata;
	if (pid == s->pid && !s->exited)
		on_target_exit(pid, status, s);
}

/* Re-arms interest from the buffers' state; ends the loop when done. */
static void session_update(struct session *s)
{
	bool outputs_open = s->out_fd[OUT_STDOUT] >= 0 || s->out_fd[OUT_STDERR] >= 0;
	int r = 0;

	if (s->client_gone || s->fault || (s->exited && !outputs_open)) {
		s->done = true;
		loop_exit(s->loop, 0);
		return;
	}
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
	if (r < 0) {
		/* Watching with stale interest would spin or stall: stop. */
		session_fault(s, "cannot update the session's watches");
		s->done = true;
		loop_exit(s->loop, 0);
	}
}

/* --- setup ---------------------------------------------------------------- */

static int send_blocking(int fd, const uint8_t *data, size_t len)
{
	while (len) {
		struct pollfd p = { .fd = fd, .events = POLLOUT };
		ssize_t n = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN)
				return -errno;
			if (poll(&p, 1, VSH_SETUP_TIMEOUT_MSEC) <= 0)
				return -ETIMEDOUT;
			continue;
		}
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int reply_setup(int fd, int status, const char *description, int pid)
{
	VmTools__Vsh__SetupConnectionResponse resp = VM_TOOLS__VSH__SETUP_CONNECTION_RESPONSE__INIT;
	uint8_t frame[VSH_FRAME_MAX];
	resp.status = status;
	resp.description = (char *)description;
	resp.pid = pid;
	int n = vsh_frame_encode(&resp.base, frame, sizeof(frame));
	return n < 0 ? n : send_blocking(fd, frame, (size_t)n);
}

/* Starts from the bytes vshd already read (at most VSH_FRAME_MAX). Bytes
 * after the request (the client may send stdin right away) are left in
 * rest. */
static VmTools__Vsh__SetupConnectionRequest *read_setup(int fd, const uint8_t *received, size_t received_len,
							struct buf *rest, char *err, size_t err_size)
{
	uint8_t buf[VSH_FRAME_MAX];
	size_t len = MIN(received_len, sizeof(buf));
	char field[64];
	uint64_t deadline = now_usec() + VSH_SETUP_TIMEOUT_MSEC * 1000ull;

	if (len)
		memcpy(buf, received, len);
	for (;;) {
		const uint8_t *msg;
		size_t mlen, flen;
		int r = vsh_frame_next(buf, len, &msg, &mlen, &flen);
		if (r < 0) {
			snprintf(err, err_size, "setup request larger than %d bytes", VSH_MAX_MESSAGE);
			return NULL;
		}
		if (r > 0) {
			VmTools__Vsh__SetupConnectionRequest *req =
				vm_tools__vsh__setup_connection_request__unpack(NULL, mlen, msg);
			/* protobuf-c would cut a string at a NUL: refuse it whole. */
			int nul = req ? pb_find_nul_string(&vm_tools__vsh__setup_connection_request__descriptor, msg,
							   mlen, field, sizeof(field))
				      : 0;
			if (nul != 0) {
				vm_tools__vsh__setup_connection_request__free_unpacked(req, NULL);
				req = NULL;
			}
			if (nul > 0)
				snprintf(err, err_size, "invalid setup request: field '%s' contains a NUL byte", field);
			else if (!req)
				snprintf(err, err_size, "could not decode the setup request");
			else if (buf_append(rest, buf + flen, len - flen, SIZE_MAX) < 0) {
				vm_tools__vsh__setup_connection_request__free_unpacked(req, NULL);
				snprintf(err, err_size, "out of memory");
				return NULL;
			}
			return req;
		}
		uint64_t now = now_usec();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (now >= deadline || poll(&p, 1, (int)((deadline - now) / 1000) + 1) <= 0) {
			snprintf(err, err_size, "no setup request within %d s", VSH_SETUP_TIMEOUT_MSEC / 1000);
			return NULL;
		}
		ssize_t n = recv(fd, buf + len, sizeof(buf) - len, MSG_DONTWAIT);
		if (n == 0) {
			snprintf(err, err_size, "client closed the connection during setup");
			return NULL;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(err, err_size, "read failed during setup: %s", strerror(errno));
			return NULL;
		}
		if (n > 0)
			len += (size_t)n;
	}
}

static int open_pty(const VmTools__Vsh__SetupConnectionRequest *req, int *ret_master, int *ret_slave)
{
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC | O_NONBLOCK), slave;
	char name[64];

	if (master < 0)
		return -errno;
	if (grantpt(master) < 0 || unlockpt(master) < 0 || ptsname_r(master, name, sizeof(name)) != 0) {
		int r = -errno;
		safe_close(master);
		return r;
	}
	slave = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (slave < 0) {
		int r = -errno;
		safe_close(master);
		return r;
	}
	if (req->window_rows > 0 && req->window_rows <= 65535 && req->window_cols > 0 && req->window_cols <= 65535) {
		struct winsize ws = { .ws_row = (unsigned short)req->window_rows,
				      .ws_col = (unsigned short)req->window_cols };
		(void)ioctl(master, TIOCSWINSZ, &ws);
	}
	*ret_master = master;
	*ret_slave = slave;
	return 0;
}

static void describe_exit(int status, char *buf, size_t size, int *ret_code)
{
	*ret_code = wait_status_code(status);
	if (WIFEXITED(status))
		snprintf(buf, size, "target process has exited");
	else
		wait_status_str(status, buf);
}

/* Sends the last status message: EXITED with the code, or FAILED. */
static void send_status(struct session *s, int status, const char *desc, int code)
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
	(void)send_blocking(s->sock, s->out.data, s->out.len);
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

int vsh_session_run(int fd, const uint8_t *received, size_t received_len, const struct vsh_policy *policy,
		    char *summary, size_t summary_size)
{
	struct session s = { .sock = fd, .master = -1, .stdin_fd = -1, .out_fd = { -1, -1 } };
	VmTools__Vsh__SetupConnectionRequest *req;
	struct vsh_target t = { 0 };
	char err[256];
	int r, slave = -1, pipes[3][2] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };

	req = read_setup(fd, received, received_len, &s.in, err, sizeof(err));
	if (!req) {
		(void)reply_setup(fd, VM_TOOLS__VSH__CONNECTION_STATUS__FAILED, err, 0);
		snprintf(summary, summary_size, "setup failed: %s", err);
		safe_close(fd);
		return -EPROTO;
	}
	if (req->target && *req->target && strcmp(req->target, "/vm_shell") != 0) {
		snprintf(err, sizeof(err), "container shells are not supported (target '%.100s'); use /vm_shell",
			 req->target);
		r = -EOPNOTSUPP;
		goto fail;
	}
	r = vsh_target_prepare(req, policy, &t, err, sizeof(err));
	if (r < 0)
		goto fail;

	s.pty = !req->nopty;
	struct spawn_params p;
	spawn_params_init(&p);
	if (s.pty) {
		r = open_pty(req, &s.master, &slave);
		if (r < 0) {
			snprintf(err, sizeof(err), "could not allocate pty: %s", strerror(-r));
			goto fail;
		}
		p.stdio_fds[0] = p.stdio_fds[1] = p.stdio_fds[2] = slave;
		p.controlling_tty = true;
		s.stdin_fd = s.master;
		s.out_fd[OUT_STDOUT] = s.master;
	} else {
		for (int i = 0; i < 3; i++)
			if (pipe2(pipes[i], O_CLOEXEC) < 0) {
				r = -errno;
				snprintf(err, sizeof(err), "could not create pipes: %s", strerror(-r));
				goto fail;
			}
		p.stdio_fds[0] = pipes[0][0];
		p.stdio_fds[1] = pipes[1][1];
		p.stdio_fds[2] = pipes[2][1];
		s.stdin_fd = TAKE_FD(pipes[0][1]);
		s.out_fd[OUT_STDOUT] = TAKE_FD(pipes[1][0]);
		s.out_fd[OUT_STDERR] = TAKE_FD(pipes[2][0]);
		for (int i = 0; i < 3; i++)
			(void)fcntl(i == 0 ? s.stdin_fd : s.out_fd[i - 1], F_SETFL, O_NONBLOCK);
	}
	p.argv = t.argv;
	p.file = t.file;
	p.envp = t.envp;
	p.new_session = true;
	p.cwd = t.cwd;
	p.cwd_fallback = t.home;
	p.cwd_optional = true;
	p.umask = 022;
	p.switch_user = t.switch_user;
	p.uid = t.uid;
	p.gid = t.gid;
	p.groups = t.groups;
	p.n_groups = (size_t)t.n_groups;

	r = watch_all(&s);
	if (r < 0) {
		snprintf(err, sizeof(err), "out of resources: cannot watch the session: %s", strerror(-r));
		goto fail;
	}
	struct spawn_error se;
	r = spawn_process(&p, &s.pid, &se);
	/* The child's ends belong to the child now. */
	safe_close(slave);
	slave = -1;
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 2; j++)
			pipes[i][j] = safe_close(pipes[i][j]);
	if (r < 0) {
		snprintf(err, sizeof(err), "could not start the target: %s", strerror(-r));
		goto fail;
	}
	if (r == SPAWN_FAILED) {
		/* Started, as far as the client can tell, and ended at once:
		 * 127 when there is no such program, 126 when it cannot run. */
		char desc[300];
		snprintf(desc, sizeof(desc), "cannot execute '%.200s': %s%s%s", t.file, strerror(se.error),
			 se.stage == SPAWN_STAGE_EXEC ? "" : " at ",
			 se.stage == SPAWN_STAGE_EXEC ? "" : spawn_stage_name(se.stage));
		(void)reply_setup(fd, VM_TOOLS__VSH__CONNECTION_STATUS__READY, "vsh ready", 0);
		send_status(&s, VM_TOOLS__VSH__CONNECTION_STATUS__EXITED, desc,
			    se.stage == SPAWN_STAGE_EXEC && se.error == ENOENT ? 127 : 126);
		snprintf(summary, summary_size, "user %s: %s", t.user, desc);
		r = 0;
		goto out;
	}

	(void)fcntl(fd, F_SETFL, O_NONBLOCK);
	r = reply_setup(fd, VM_TOOLS__VSH__CONNECTION_STATUS__READY, "vsh ready", s.pid);
	if (r < 0)
		s.client_gone = true;
	on_sock(NULL, fd, 0, &s); /* whatever came along with the request */
	if (!s.client_gone && !s.done) {
		r = loop_run(s.loop);
		if (r < 0)
			session_fault(&s, "the session's event loop failed");
	}

	if (s.exited && !s.client_gone && !s.fault) {
		char desc[128];
		int code;
		describe_exit(s.status, desc, sizeof(desc), &code);
		send_status(&s, VM_TOOLS__VSH__CONNECTION_STATUS__EXITED, desc, code);
		snprintf(summary, summary_size, "user %s: %s (pid %d) ended with code %d: %s", t.user, t.argv[0],
			 (int)s.pid, code, desc);
	} else {
		/* The client went away first, or the session cannot go on: hang
		 * the target up. SIGCONT too, or a stopped target would keep the
		 * SIGHUP pending for ever. */
		if (!s.exited) {
			(void)kill(-s.pid, SIGHUP);
			(void)kill(-s.pid, SIGCONT);
		}
		if (s.fault && !s.client_gone)
			send_status(&s, VM_TOOLS__VSH__CONNECTION_STATUS__FAILED, s.fault, 0);
		snprintf(summary, summary_size, "user %s: %s (pid %d): %s%s%s", t.user, t.argv[0], (int)s.pid,
			 s.fault ? "session failed: " : "client went away", s.fault ? s.fault : "",
			 s.exited ? " after the target ended" : "; sent SIGHUP");
	}
	r = 0;
	goto out;

fail:
	(void)reply_setup(fd, VM_TOOLS__VSH__CONNECTION_STATUS__FAILED, err, 0);
	snprintf(summary, summary_size, "setup failed: %s", err);
out:
	/* The target is reaped (or hung up) by now: closing the master is
	 * safe. */
	if (s.pty)
		safe_close(s.master);
	else {
		safe_close(s.out_fd[OUT_STDOUT]);
		safe_close(s.out_fd[OUT_STDERR]);
		safe_close(s.stdin_fd);
	}
	safe_close(slave);
	for (int i = 0; i < 3; i++)
		for (int j = 0; j < 2; j++)
			safe_close(pipes[i][j]);
	buf_clear(&s.in);
	buf_clear(&s.out);
	buf_clear(&s.stdin_pending);
	loop_timer_free(s.drain);
	loop_free(s.loop);
	vsh_target_clear(&t);
	vm_tools__vsh__setup_connection_request__free_unpacked(req, NULL);
	safe_close(fd);
	return r;
}
