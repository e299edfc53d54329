/* vsh: a shell or a command in a VM, through vshd. Interactive (raw local
 * terminal, PTY remotely) when stdin and stdout are terminals, pipes
 * otherwise. Exits with the remote code, 123 when the connection dies
 * first (or vsh cannot carry the data on: out of memory), 1 when the
 * session cannot be set up. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/escape.h"
#include "base/macro.h"
#include "base/parse.h"
#include "base/terminal.h"
#include "base/time-util.h"
#include "loop/loop.h"
#include "net/sock.h"
#include "base/buf.h"
#include "vsh.pb-c.h"
#include "vsh/frame.h"
#include "vsh/handshake.h"

#define EXIT_SETUP 1
#define EXIT_LOST 123
#define MAX_ENV 256
/* How long vshd may take to answer the request once connected: the bound
 * vshd itself gives a client to send it (VSH_SETUP_TIMEOUT_MSEC). A server
 * that accepts and never answers must not hold vsh for ever. */
#define ANSWER_TIMEOUT_SEC 10
/* Stop reading stdin while this much is unsent. */
#define STDIN_HIGH (1024 * 1024)
/* The same for stdin read without epoll: lower, as every partial send
 * shifts what is left. */
#define FILE_HIGH (256 * 1024)
/* Output written to stdout or stderr in one call at most. */
#define BATCH_MAX (256 * 1024)

struct client {
	struct loop *loop;
	int sock;
	struct loop_io *sock_io, *stdin_io;
	struct buf in, out;
	bool stdin_open;
	/* stdin that epoll refuses (a regular file, /dev/null): always
	 * readable, so it is read whenever the send queue is low instead. */
	bool stdin_unpollable;
	bool out_open[3];
	int code;
	bool exited;
	/* Why vsh ended the session itself (out of memory): printed, and the
	 * exit status is EXIT_LOST. A byte dropped would break the framing or
	 * the data; vsh stops instead. */
	const char *fault;
};

static void usage(FILE *f)
{
	fputs("Usage: vsh [--cid=N | --addr=ADDR] [--port=N] [--user=NAME] [--cwd=PATH|PID] [-t|-T]\n"
	      "           [--target_container=NAME] [-- [VAR=value]... [COMMAND [ARGS...]]]\n"
	      "\n"
	      "Opens a login shell in the VM, or runs COMMAND there.\n"
	      "  --cid=N        the VM's vsock CID (port 9001 unless --port)\n"
	      "  --addr=ADDR    vsock:CID:PORT, unix:PATH, tcp:HOST:PORT, or\n"
	      "                 hvsock:PATH:PORT (Firecracker, Cloud Hypervisor) instead\n"
	      "  --user=NAME    run as NAME (default: vshd's default user)\n"
	      "  --cwd=DIR|PID  start in DIR, or in the working directory of process PID\n"
	      "  -t / -T        force / refuse a remote terminal (default: one if stdin and\n"
	      "                 stdout are terminals)\n"
	      "Exit status: the command's (128+N if killed by signal N); 123 if the\n"
	      "connection is lost (or vsh runs out of memory); 1 if the session cannot be\n"
	      "set up.\n",
	      f);
}

static void client_fail(struct client *c, const char *why)
{
	if (!c->fault)
		c->fault = why;
	loop_exit(c->loop, 0);
}

static void queue_guest(struct client *c, VmTools__Vsh__GuestMessage *g)
{
	if (vsh_frame_append(&c->out, &g->base) < 0)
		client_fail(c, "out of memory for a message to the server");
}

static void send_signal(struct client *c, int sig)
{
	VmTools__Vsh__GuestMessage g = VM_TOOLS__VSH__GUEST_MESSAGE__INIT;
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_SIGNAL;
	g.signal = sig;
	queue_guest(c, &g);
}

static void window_size(int *rows, int *cols)
{
	struct winsize ws = { 0 };
	if (ioctl(STDIN_FILENO, TIOCGWINSZ, &ws) < 0)
		ws = (struct winsize){ 0 };
	*rows = ws.ws_row;
	*cols = ws.ws_col;
}

static void update(struct client *c);

static void on_signal(struct loop *l, int signo, void *userdata)
{
	struct client *c = userdata;
	if (signo == SIGWINCH) {
		VmTools__Vsh__WindowResizeMessage r = VM_TOOLS__VSH__WINDOW_RESIZE_MESSAGE__INIT;
		VmTools__Vsh__GuestMessage g = VM_TOOLS__VSH__GUEST_MESSAGE__INIT;
		window_size(&r.rows, &r.cols);
		g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_RESIZE_MESSAGE;
		g.resize_message = &r;
		queue_guest(c, &g);
	} else
		send_signal(c, signo);
	update(c);
}

/* Runs of consecutive data for the same stream, written in one call. */
struct batch {
	struct client *c;
	uint8_t *data;
	size_t len;
	int fd;
};

static void batch_flush(struct batch *b)
{
	if (b->len)
		(void)buf_write_all(b->fd, b->data, b->len); /* a reader gone: dropped */
	b->len = 0;
}

static void on_data(struct batch *b, const VmTools__Vsh__DataMessage *d)
{
	struct client *c = b->c;
	int fd = d->stream == VM_TOOLS__VSH__STDIO_STREAM__STDERR_STREAM ? 2 : 1;

	if (fd != b->fd || b->len + d->data.len > BATCH_MAX) {
		batch_flush(b);
		b->fd = fd;
	}
	if (d->data.len == 0) {
		/* Remote EOF: close ours, so readers see it too. */
		batch_flush(b);
		if (c->out_open[fd]) {
			c->out_open[fd] = false;
			(void)close(fd);
		}
	} else if (c->out_open[fd]) {
		memcpy(b->data + b->len, d->data.data, d->data.len);
		b->len += d->data.len;
	}
}

/* 0 to go on; 1 once the session has ended. */
static int on_status(struct client *c, const VmTools__Vsh__ConnectionStatusMessage *st)
{
	if (st->status == VM_TOOLS__VSH__CONNECTION_STATUS__EXITED) {
		c->exited = true;
		c->code = st->code;
		if (st->code >= 126 && st->description && strncmp(st->description, "cannot execute", 14) == 0)
			fprintf(stderr, "vsh: %s\n", ESCAPED(st->description));
		loop_exit(c->loop, 0);
		return 1;
	}
	if (st->status != VM_TOOLS__VSH__CONNECTION_STATUS__READY) {
		fprintf(stderr, "vsh: session ended: %s\n", ESCAPED(st->description ? st->description : "?"));
		loop_exit(c->loop, 0);
	}
	return 0;
}

static int on_host_frame(const uint8_t *msg, size_t len, void *userdata)
{
	struct batch *b = userdata;
	VmTools__Vsh__HostMessage *h = vm_tools__vsh__host_message__unpack(NULL, len, msg);
	int r = 0;

	if (!h)
		return -EBADMSG;
	if (h->msg_case == VM_TOOLS__VSH__HOST_MESSAGE__MSG_DATA_MESSAGE)
		on_data(b, h->data_message);
	else if (h->msg_case == VM_TOOLS__VSH__HOST_MESSAGE__MSG_STATUS_MESSAGE)
		r = on_status(b->c, h->status_message);
	vm_tools__vsh__host_message__free_unpacked(h, NULL);
	return r;
}

/* Handles every whole frame received; a broken stream ends the loop. */
static void handle_frames(struct client *c)
{
	static uint8_t data[BATCH_MAX];
	struct batch b = { .c = c, .data = data, .fd = -1 };

	if (vsh_frame_take(&c->in, on_host_frame, &b) < 0)
		loop_exit(c->loop, 0);
	batch_flush(&b);
}

static void flush_sock(struct client *c)
{
	/* On failure the receive side sees the end: drop what is queued. */
	if (buf_send(c->sock, &c->out) < 0)
		c->out.len = 0;
}

static void on_sock(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct client *c = userdata;
	uint8_t buf[256 * 1024];

	if (events & EPOLLOUT)
		flush_sock(c);
	if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
		ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
			loop_exit(c->loop, 0);
			return;
		}
		if (n > 0) {
			if (buf_append(&c->in, buf, (size_t)n, SIZE_MAX) < 0) {
				client_fail(c, "out of memory for the data received");
				return;
			}
			handle_frames(c);
		}
	}
	update(c);
}

/* Reads stdin once and queues what came, or EOF. False when there was
 * nothing to read yet. */
static bool read_stdin(struct client *c, int fd)
{
	static uint8_t buf[16 * VSH_MAX_DATA];

	/* One read per wake-up (stdin may be a blocking terminal shared with
	 * our parent), as large as 16 frames: they go out in one send. */
	ssize_t n = read(fd, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return errno == EINTR;
	/* An empty DataMessage is EOF (an error is treated alike). */
	if (vsh_frame_append_data(&c->out, VSH_FROM_CLIENT, VM_TOOLS__VSH__STDIO_STREAM__STDIN_STREAM, buf,
				  n > 0 ? (size_t)n : 0) < 0) {
		client_fail(c, "out of memory for the input to send");
		return false;
	}
	if (n <= 0) {
		c->stdin_open = false;
		loop_io_free(TAKE_PTR(c->stdin_io));
	}
	return true;
}

static void on_stdin(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct client *c = userdata;
	(void)read_stdin(c, fd);
	flush_sock(c);
	update(c);
}

static void update(struct client *c)
{
	/* Unpollable stdin: top the queue up as the socket drains it, so
	 * memory stays bounded and every byte is moved once. */
	while (c->stdin_unpollable && c->stdin_open && c->out.len < FILE_HIGH) {
		if (!read_stdin(c, STDIN_FILENO))
			break;
		flush_sock(c);
	}
	(void)loop_io_set_events(c->sock_io, EPOLLIN | (c->out.len ? EPOLLOUT : 0));
	if (c->stdin_io)
		(void)loop_io_set_events(c->stdin_io, c->out.len > STDIN_HIGH ? 0 : EPOLLIN);
}

static void response_freep(VmTools__Vsh__SetupConnectionResponse **resp)
{
	if (*resp)
		vm_tools__vsh__setup_connection_response__free_unpacked(*resp, NULL);
}

/* Reads the SetupConnectionResponse (blocking, ANSWER_TIMEOUT_SEC at most);
 * what came after it goes to rest. */
static int read_response(int fd, VmTools__Vsh__SetupConnectionResponse **ret, struct buf *rest)
{
	uint8_t buf[VSH_FRAME_MAX];
	size_t len = 0, mlen, flen;
	const uint8_t *msg;
	int r;

	r = vsh_read_frame(fd, buf, sizeof(buf), &len, now_usec() + ANSWER_TIMEOUT_SEC * USEC_PER_SEC, &msg, &mlen,
			   &flen);
	if (r == -ESHUTDOWN)
		return -ECONNRESET;
	if (r < 0)
		return r;
	*ret = vm_tools__vsh__setup_connection_response__unpack(NULL, mlen, msg);
	if (!*ret)
		return -EBADMSG;
	return buf_append(rest, buf + flen, len - flen, SIZE_MAX);
}

/* "K=V" with both parts non-empty, as the original splits them. */
static bool is_env_word(const char *s)
{
	const char *eq = strchr(s, '=');
	return eq && eq != s && eq[1] && !strchr(eq + 1, '=');
}

/* What the command line asks for. */
struct invocation {
	VmTools__Vsh__SetupConnectionRequest req;
	VmTools__Vsh__SetupConnectionRequest__EnvEntry entries[MAX_ENV], *envp[MAX_ENV];
	struct addr addr;
	const char *addr_str;
	char addr_buf[64];
};

/* Flags into inv. Returns -1 to go on, else the exit status (0 for
 * --help, EXIT_SETUP after printing what is wrong). */
static int parse_flags(int argc, char **argv, struct invocation *inv, int *ret_force_tty)
{
	enum { OPT_CID = 0x100, OPT_ADDR, OPT_PORT, OPT_USER, OPT_CWD, OPT_CONTAINER };
	static const struct option longopts[] = {
		{ "cid", required_argument, NULL, OPT_CID },
		{ "addr", required_argument, NULL, OPT_ADDR },
		{ "port", required_argument, NULL, OPT_PORT },
		{ "user", required_argument, NULL, OPT_USER },
		{ "cwd", required_argument, NULL, OPT_CWD },
		{ "target_container", required_argument, NULL, OPT_CONTAINER },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	const char *cid = NULL;
	uint32_t port = 9001, v;
	int c;

	while ((c = getopt_long(argc, argv, "+tTh", longopts, NULL)) >= 0) {
		switch (c) {
		case OPT_CID:
			if (parse_u32(optarg, &v) < 0) {
				fprintf(stderr, "vsh: invalid --cid '%s': expected a number\n", optarg);
				return EXIT_SETUP;
			}
			cid = optarg;
			break;
		case OPT_ADDR: inv->addr_str = optarg; break;
		case OPT_PORT:
			if (parse_u32(optarg, &port) < 0) {
				fprintf(stderr, "vsh: invalid --port '%s': expected a number\n", optarg);
				return EXIT_SETUP;
			}
			break;
		case OPT_USER: inv->req.user = optarg; break;
		case OPT_CWD:
			if (parse_u32(optarg, &v) == 0 && v > 0 && v <= INT32_MAX)
				inv->req.cwd_pid = (int32_t)v;
			else
				inv->req.cwd = optarg;
			break;
		case OPT_CONTAINER: inv->req.target = optarg; break;
		case 't': *ret_force_tty = 1; break;
		case 'T': *ret_force_tty = 0; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_SETUP;
		}
	}
	if (!!cid + !!inv->addr_str != 1) {
		fprintf(stderr, "vsh: exactly one of --cid or --addr is required\n");
		return EXIT_SETUP;
	}
	if (cid) {
		snprintf(inv->addr_buf, sizeof(inv->addr_buf), "vsock:%s:%u", cid, port);
		inv->addr_str = inv->addr_buf;
	}
	if (addr_parse(inv->addr_str, &inv->addr) < 0) {
		fprintf(stderr, "vsh: invalid address '%s': expected %s\n", inv->addr_str, ADDR_SYNTAX);
		return EXIT_SETUP;
	}
	return -1;
}

/* The environment (TERM, then the VAR=value words) and the command. */
static void fill_command(struct invocation *inv, int argc, char **argv)
{
	VmTools__Vsh__SetupConnectionRequest *req = &inv->req;

	/* TERM first, so that a TERM= word overrides it. */
	const char *term = getenv("TERM");
	if (term) {
		vm_tools__vsh__setup_connection_request__env_entry__init(&inv->entries[0]);
		inv->entries[0].key = "TERM";
		inv->entries[0].value = (char *)term;
		inv->envp[0] = &inv->entries[0];
		req->n_env = 1;
	}
	while (optind < argc && is_env_word(argv[optind]) && req->n_env < MAX_ENV) {
		char *eq = strchr(argv[optind], '=');
		*eq = 0;
		size_t k;
		for (k = 0; k < req->n_env; k++)
			if (strcmp(inv->entries[k].key, argv[optind]) == 0)
				break;
		if (k == req->n_env) {
			vm_tools__vsh__setup_connection_request__env_entry__init(&inv->entries[k]);
			inv->envp[k] = &inv->entries[k];
			req->n_env++;
		}
		inv->entries[k].key = argv[optind];
		inv->entries[k].value = eq + 1;
		optind++;
	}
	req->env = inv->envp;
	req->n_argv = (size_t)(argc - optind);
	req->argv = argv + optind;
}

/* The loop, with the signals to forward routed through it: from here on
 * they are queued, not fatal. Done before the request is sent, because the
 * target runs (and the user may press ^C) before the READY answer has
 * reached us; a signal during the connect still ends vsh. */
static int route_signals(struct client *cl)
{
	static const int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGWINCH };
	int r = loop_new(&cl->loop);

	for (size_t i = 0; r >= 0 && i < ARRAY_SIZE(forwarded); i++)
		r = loop_add_signal(cl->loop, forwarded[i], on_signal, cl);
	return r;
}

/* Connects, sends the request and reads the answer: 0 when the session is
 * READY, else EXIT_SETUP after printing why. */
static int set_up(struct client *cl, const struct invocation *inv)
{
	_cleanup_(response_freep) VmTools__Vsh__SetupConnectionResponse *resp = NULL;
	uint8_t frame[VSH_FRAME_MAX];
	int r;

	r = sock_connect_wait(&inv->addr, 30 * USEC_PER_SEC, &cl->sock);
	if (r < 0) {
		fprintf(stderr, "vsh: cannot connect to %s: %s\n", inv->addr_str, sock_connect_strerror(&inv->addr, r));
		return EXIT_SETUP;
	}
	r = route_signals(cl);
	if (r < 0) {
		fprintf(stderr, "vsh: cannot set up signal forwarding: %s\n", strerror(-r));
		return EXIT_SETUP;
	}
	int n = vsh_frame_encode(&inv->req.base, frame, sizeof(frame));
	if (n < 0) {
		fprintf(stderr, "vsh: the request is larger than %d bytes (too many arguments?)\n", VSH_MAX_MESSAGE);
		return EXIT_SETUP;
	}
	if (send(cl->sock, frame, (size_t)n, MSG_NOSIGNAL) != n) {
		fprintf(stderr, "vsh: cannot send the request: %s\n", strerror(errno));
		return EXIT_SETUP;
	}
	r = read_response(cl->sock, &resp, &cl->in);
	if (r == -ETIMEDOUT) {
		fprintf(stderr, "vsh: no answer from %s within %d s\n", inv->addr_str, ANSWER_TIMEOUT_SEC);
		return EXIT_SETUP;
	}
	if (r < 0) {
		fprintf(stderr, "vsh: no answer from %s: %s\n", inv->addr_str, strerror(-r));
		return EXIT_SETUP;
	}
	if (resp->status != VM_TOOLS__VSH__CONNECTION_STATUS__READY) {
		fprintf(stderr, "vsh: the server could not set up the session: %s\n",
			ESCAPED(resp->description ? resp->description : "?"));
		return EXIT_SETUP;
	}
	return 0;
}

/* Forwards until EXITED or the connection's end. */
static void forward(struct client *cl)
{
	(void)loop_add_io(cl->loop, cl->sock, EPOLLIN, on_sock, cl, &cl->sock_io);
	/* Any kind of stdin: epoll refuses regular files and such, which
	 * update() reads as the socket takes the data (any other failure to
	 * watch stdin takes the same road). */
	if (loop_add_io(cl->loop, STDIN_FILENO, EPOLLIN, on_stdin, cl, &cl->stdin_io) < 0) {
		cl->stdin_io = NULL;
		cl->stdin_unpollable = true;
	}
	handle_frames(cl); /* anything that came with the response */
	if (!cl->exited) {
		update(cl);
		/* (loop_run() would forget a loop_exit() made before it.) */
		if (!cl->fault)
			(void)loop_run(cl->loop);
	}
}

static void client_clear(struct client *cl)
{
	/* Our sources first: the loop only detaches what is left (loop.h). */
	loop_io_free(TAKE_PTR(cl->sock_io));
	loop_io_free(TAKE_PTR(cl->stdin_io));
	loop_free(TAKE_PTR(cl->loop));
	buf_clear(&cl->in);
	buf_clear(&cl->out);
	cl->sock = safe_close(cl->sock);
}

static int run(int argc, char **argv)
{
	struct invocation inv = { .req = VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__INIT };
	_cleanup_(client_clear) struct client cl = {
		.sock = -1, .code = EXIT_LOST, .stdin_open = true, .out_open = { true, true, true }
	};
	struct terminal_state term_state = { 0 };
	int force_tty = -1, r;

	inv.req.target = "/vm_shell";
	r = parse_flags(argc, argv, &inv, &force_tty);
	if (r >= 0)
		return r;
	fill_command(&inv, argc, argv);
	bool interactive = isatty(STDIN_FILENO) && isatty(STDOUT_FILENO);
	bool want_pty = force_tty >= 0 ? force_tty : interactive;
	inv.req.nopty = !want_pty;
	if (want_pty)
		window_size(&inv.req.window_rows, &inv.req.window_cols);

	r = set_up(&cl, &inv);
	if (r != 0)
		return r;
	if (interactive && want_pty && terminal_make_raw(STDIN_FILENO, &term_state) < 0) {
		fprintf(stderr, "vsh: cannot put the terminal in raw mode: %s\n", strerror(errno));
		return EXIT_SETUP;
	}
	forward(&cl);
	terminal_restore(&term_state);
	/* Once EXITED has come, everything before it has been written out. */
	if (cl.exited)
		return cl.code & 0xff;
	if (cl.fault)
		fprintf(stderr, "vsh: %s: session ended before the command did\n", cl.fault);
	else
		fprintf(stderr, "vsh: connection lost before the command ended\n");
	return EXIT_LOST;
}

int main(int argc, char **argv)
{
	return run(argc, argv);
}
