/* An attached valet.v1.Process session (maitctl exec, attach): the Start
 * or Connect stream and the unary calls beside it (SendInput, SendSignal,
 * Resize) on one HTTP/2 connection (rpc/channel.h), in one loop with local
 * stdin and the forwarded signals. docs/process-cli.md. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/buf.h"
#include "base/escape.h"
#include "base/terminal.h"
#include "base/time-util.h"
#include "exec.h"
#include "loop/loop.h"
#include "rpc/channel.h"
#include "rpc/status.h"

/* Local stdin read per SendInput: one call in flight at a time (maitred
 * writes one per process at a time and answers once the bytes are in the
 * pipe), so this times the round trip is the input's rate. */
#define INPUT_CHUNK (256 * 1024)
/* Signals that arrive before Started (the id) are kept, this many. */
#define MAX_PENDING_SIGNALS 8

static const int forwarded_signals[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT };

struct session {
	struct maitctl *ctl;
	const struct exec_params *p;
	struct loop *loop;
	struct rpc_channel *ch;
	struct rpc_client_call *call;
	bool started, exited, done;
	uint64_t id;
	int32_t pid;
	int status;
	int code;
	char message[512];
	struct exec_offsets off;
	bool have_off;
	struct terminal_state term;
	/* Input. */
	struct loop_io *stdin_io;
	bool stdin_open, stdin_unpollable, input_busy;
	uint8_t *inbuf;
	/* Local stdout is gone (EPIPE): the output is dropped from then on. */
	bool stdout_gone;
	int pending[MAX_PENDING_SIGNALS];
	unsigned n_pending;
};

/* A line of maitctl's own on stderr, with a carriage return while the
 * terminal is raw. */
__attribute__((format(printf, 2, 3))) static void say(struct session *s, const char *fmt, ...)
{
	va_list ap;

	fputs("maitctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(s->term.saved ? "\r\n" : "\n", stderr);
}

void exec_window_size(uint32_t *rows, uint32_t *cols)
{
	struct winsize ws = { 0 };

	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0 && ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) < 0)
		ws = (struct winsize){ 0 };
	*rows = ws.ws_row;
	*cols = ws.ws_col;
}

/* --- unary calls beside the stream ---------------------------------------- */

static void call_unary(struct session *s, const char *method, const ProtobufCMessage *req, rpc_reply_fn fn)
{
	if (!s->ch || s->done)
		return;
	int r = rpc_client_session_call(rpc_channel_session(s->ch), method, req, 0, fn, s);
	if (r < 0)
		say(s, "%s: %s", method, strerror(-r));
}

static void on_signal_reply(int code, const char *message, const uint8_t *data, size_t len, void *userdata)
{
	struct session *s = userdata;

	/* The process has ended meanwhile: its Exited is on the way. */
	if (code != RPC_OK && code != RPC_FAILED_PRECONDITION && !s->done)
		say(s, "cannot forward the signal: %s: %s", rpc_code_name(code), ESCAPED(message ? message : ""));
}

static void send_signal(struct session *s, int sig)
{
	Valet__V1__SendSignalRequest req = VALET__V1__SEND_SIGNAL_REQUEST__INIT;

	req.id = s->id;
	req.signal = sig;
	/* The whole group, as vshd does: a shell's children get it too. */
	req.group = true;
	call_unary(s, "/valet.v1.Process/SendSignal", &req.base, on_signal_reply);
}

static void on_resize_reply(int code, const char *message, const uint8_t *data, size_t len, void *userdata)
{
}

static void send_resize(struct session *s)
{
	Valet__V1__ResizeRequest req = VALET__V1__RESIZE_REQUEST__INIT;

	req.id = s->id;
	exec_window_size(&req.rows, &req.cols);
	if (req.rows && req.cols)
		call_unary(s, "/valet.v1.Process/Resize", &req.base, on_resize_reply);
}

static void on_signal(struct loop *l, int signo, void *userdata)
{
	struct session *s = userdata;

	if (s->done)
		return;
	if (signo == SIGWINCH) {
		if (s->started && s->p->pty)
			send_resize(s);
	} else if (s->started)
		send_signal(s, signo);
	else if (s->n_pending < MAX_PENDING_SIGNALS)
		s->pending[s->n_pending++] = signo;
}

/* --- input ------------------------------------------------------------------ */

static void stdin_stop(struct session *s)
{
	s->stdin_open = false;
	loop_io_free(TAKE_PTR(s->stdin_io));
}

static void read_stdin(struct session *s);

static void on_input_reply(int code, const char *message, const uint8_t *data, size_t len, void *userdata)
{
	struct session *s = userdata;

	s->input_busy = false;
	if (code != RPC_OK) {
		/* FAILED_PRECONDITION: the process has exited or closed its
		 * input; there is nobody to tell. */
		if (code != RPC_FAILED_PRECONDITION && !s->done)
			say(s, "stdin: %s: %s", rpc_code_name(code), ESCAPED(message ? message : ""));
		stdin_stop(s);
		return;
	}
	if (!s->stdin_open)
		return;
	if (s->stdin_io)
		(void)loop_io_set_events(s->stdin_io, EPOLLIN);
	else
		read_stdin(s);
}

/* One read, one SendInput (the data, or the end). */
static void read_stdin(struct session *s)
{
	Valet__V1__SendInputRequest req = VALET__V1__SEND_INPUT_REQUEST__INIT;

	if (s->input_busy || !s->stdin_open || s->done)
		return;
	ssize_t n = read(STDIN_FILENO, s->inbuf, INPUT_CHUNK);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	req.id = s->id;
	if (n > 0) {
		req.data.data = s->inbuf;
		req.data.len = (size_t)n;
	} else {
		/* The end (a read error is treated alike). */
		req.eof = true;
		stdin_stop(s);
	}
	s->input_busy = true;
	if (s->stdin_io)
		(void)loop_io_set_events(s->stdin_io, 0);
	call_unary(s, "/valet.v1.Process/SendInput", &req.base, on_input_reply);
}

static void on_stdin(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	read_stdin(userdata);
}

static void stdin_begin(struct session *s)
{
	s->inbuf = malloc(INPUT_CHUNK);
	if (!s->inbuf) {
		say(s, "no memory for the input: stdin is not forwarded");
		return;
	}
	s->stdin_open = true;
	/* epoll refuses regular files and /dev/null-like devices: those are
	 * read whenever the previous SendInput is answered. */
	if (loop_add_io(s->loop, STDIN_FILENO, EPOLLIN, on_stdin, s, &s->stdin_io) < 0) {
		s->stdin_io = NULL;
		s->stdin_unpollable = true;
		read_stdin(s);
	}
}

/* --- the stream ------------------------------------------------------------- */

static void on_started(struct session *s, const Valet__V1__ProcessEvent__Started *st)
{
	s->started = true;
	s->id = st->id;
	s->pid = st->pid;
	if (s->p->detach) {
		if (s->ctl->json) {
			printf("{\"id\":%llu,\"pid\":%d,\"tag\":", (unsigned long long)st->id, st->pid);
			maitctl_json_string(st->tag ? st->tag : "");
			printf("}\n");
		} else
			printf("%llu\n", (unsigned long long)st->id);
		s->done = true;
		s->status = 0;
		loop_exit(s->loop, 0);
		return;
	}
	exec_offsets_open(&s->off, &s->ctl->addr, st->id, st->pid, s->p->start || s->p->from_start);
	s->have_off = true;
	if (s->p->pty && isatty(STDIN_FILENO) && terminal_make_raw(STDIN_FILENO, &s->term) < 0)
		say(s, "cannot put the terminal in raw mode: %s", strerror(errno));
	for (unsigned i = 0; i < s->n_pending; i++)
		send_signal(s, s->pending[i]);
	s->n_pending = 0;
	if (s->p->forward_stdin)
		stdin_begin(s);
}

static void on_output(struct session *s, const Valet__V1__ProcessEvent__Output *o)
{
	int k = o->stream == VALET__V1__PROCESS_EVENT__STREAM__STDERR ? 1 : 0;
	uint64_t *next = &s->off.next[k];
	size_t skip = 0;

	if (!s->have_off)
		return;
	if (o->offset > *next) {
		say(s, "%llu bytes of %s were lost: the guest's buffer had moved on",
		    (unsigned long long)(o->offset - *next), k ? "stderr" : "stdout");
		*next = o->offset;
	}
	/* Bytes a previous maitctl has written out already (attach). */
	if (*next > o->offset)
		skip = *next - o->offset < o->data.len ? (size_t)(*next - o->offset) : o->data.len;
	if (skip < o->data.len && !(k == 0 && s->stdout_gone)) {
		int r = buf_write_all(k ? STDERR_FILENO : STDOUT_FILENO, o->data.data + skip, o->data.len - skip);
		if (r < 0 && k == 0) {
			/* As in a local pipeline (`exec -- yes | head`): the
			 * writer gets SIGPIPE. */
			s->stdout_gone = true;
			send_signal(s, SIGPIPE);
		}
	}
	/* Recorded once written: a maitctl killed in between writes this
	 * piece again on attach rather than losing it. */
	if (o->offset + o->data.len > *next)
		*next = o->offset + o->data.len;
}

static void on_exited(struct session *s, const Valet__V1__ProcessEvent__Exited *x)
{
	s->exited = true;
	s->status = x->signal ? 128 + x->signal : x->exit_code & 0xff;
	if (s->have_off)
		exec_offsets_remove(&s->off);
}

static void on_message(struct rpc_client_call *c, const uint8_t *data, size_t len, void *userdata)
{
	struct session *s = userdata;
	Valet__V1__ProcessEvent *ev = valet__v1__process_event__unpack(NULL, len, data);

	if (!ev) {
		snprintf(s->message, sizeof(s->message), "an event from the guest could not be decoded");
		s->code = RPC_INTERNAL;
		rpc_client_call_cancel(c);
		return;
	}
	if (s->done)
		;
	else if (ev->event_case == VALET__V1__PROCESS_EVENT__EVENT_STARTED)
		on_started(s, ev->started);
	else if (ev->event_case == VALET__V1__PROCESS_EVENT__EVENT_OUTPUT && s->started)
		on_output(s, ev->output);
	else if (ev->event_case == VALET__V1__PROCESS_EVENT__EVENT_EXITED)
		on_exited(s, ev->exited);
	valet__v1__process_event__free_unpacked(ev, NULL);
}

static void on_done(struct rpc_client_call *c, int code, const char *message, void *userdata)
{
	struct session *s = userdata;

	s->call = NULL;
	if (s->code == RPC_OK) {
		s->code = code;
		snprintf(s->message, sizeof(s->message), "%s", message ? message : "");
	}
	s->done = true;
	loop_exit(s->loop, 0);
}

static const struct rpc_client_stream_ops stream_ops = { .on_message = on_message, .on_done = on_done };

static void on_closed(int code, const char *message, void *userdata)
{
	struct session *s = userdata;

	s->ch = NULL;
	s->done = true;
	loop_exit(s->loop, 0);
}

static int begin(struct session *s)
{
	Valet__V1__ConnectRequest conn = VALET__V1__CONNECT_REQUEST__INIT;
	const ProtobufCMessage *req;
	const char *method;
	int r;

	if (s->p->start) {
		method = "/valet.v1.Process/Start";
		req = &s->p->start->base;
	} else {
		method = "/valet.v1.Process/Connect";
		if (s->p->tag) {
			conn.target_case = VALET__V1__CONNECT_REQUEST__TARGET_TAG;
			conn.tag = (char *)s->p->tag;
		} else {
			conn.target_case = VALET__V1__CONNECT_REQUEST__TARGET_ID;
			conn.id = s->p->id;
		}
		/* From the oldest byte kept: what a previous maitctl wrote
		 * out already is skipped here (on_output), once the id and
		 * pid of a tag are known. */
		req = &conn.base;
	}
	r = loop_new(&s->loop);
	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(forwarded_signals); i++)
		r = loop_add_signal(s->loop, forwarded_signals[i], on_signal, s);
	if (r >= 0 && s->p->pty)
		r = loop_add_signal(s->loop, SIGWINCH, on_signal, s);
	if (r >= 0)
		r = rpc_channel_open(s->loop, &s->ctl->addr, s->ctl->timeout_usec, on_closed, s, &s->ch);
	if (r >= 0)
		r = rpc_client_session_start(rpc_channel_session(s->ch), method, 0, &stream_ops, s, &s->call);
	if (r >= 0)
		r = rpc_client_call_send(s->call, req);
	if (r >= 0)
		r = rpc_client_call_close_send(s->call);
	return r < 0 ? r : 0;
}

static void session_clear(struct session *s)
{
	s->done = true;
	terminal_restore(&s->term);
	loop_io_free(TAKE_PTR(s->stdin_io));
	rpc_channel_free(TAKE_PTR(s->ch));
	loop_free(TAKE_PTR(s->loop));
	if (s->have_off)
		exec_offsets_close(&s->off);
	free(s->inbuf);
}

int exec_session_run(struct maitctl *ctl, const struct exec_params *p)
{
	_cleanup_(session_clear) struct session s = { .ctl = ctl, .p = p, .code = RPC_OK };
	char addrbuf[128];
	int r;

	/* A local reader that goes away is an EPIPE from write(), handled
	 * where the output is written. */
	(void)signal(SIGPIPE, SIG_IGN);
	r = begin(&s);
	if (r < 0) {
		char msg[300];
		snprintf(msg, sizeof(msg), "cannot connect to %s: %s", addr_format(&ctl->addr, addrbuf, sizeof(addrbuf)),
			 strerror(-r));
		maitctl_print_error(ctl, s.ch ? RPC_INTERNAL : RPC_UNAVAILABLE, s.ch ? strerror(-r) : msg);
		return MAITCTL_EXIT_RPC_ERROR;
	}
	r = loop_run(s.loop);
	terminal_restore(&s.term);
	if (p->detach && s.started)
		return 0;
	if (s.exited) {
		fflush(stdout);
		return s.status;
	}
	if (!s.started) {
		if (s.code == RPC_OK || r < 0) {
			s.code = RPC_UNAVAILABLE;
			snprintf(s.message, sizeof(s.message), "the connection ended before the process started");
		}
		if (strncmp(s.message, "connection closed", 17) == 0 || strncmp(s.message, "cannot connect", 14) == 0 ||
		    s.code == RPC_UNAVAILABLE) {
			char msg[700];
			snprintf(msg, sizeof(msg), "%s: %s", addr_format(&ctl->addr, addrbuf, sizeof(addrbuf)),
				 s.message);
			maitctl_print_error(ctl, s.code, msg);
		} else
			maitctl_print_error(ctl, s.code, s.message);
		return MAITCTL_EXIT_RPC_ERROR;
	}
	say(&s, "connection to %s lost (%s: %s); process %llu (pid %d) goes on in the guest",
	    addr_format(&ctl->addr, addrbuf, sizeof(addrbuf)), rpc_code_name(s.code), ESCAPED(s.message),
	    (unsigned long long)s.id, s.pid);
	say(&s, "reattach with: maitctl attach %llu", (unsigned long long)s.id);
	return MAITCTL_EXIT_LOST;
}
