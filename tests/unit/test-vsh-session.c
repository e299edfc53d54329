/* The vsh session: its state machine alone (a table, no I/O), then whole
 * sessions run in a forked process against a socketpair, the test playing
 * the client, with real short-lived targets (true, cat, sh, sleep) on pipes
 * and on a PTY. Every wait is on an event (a frame, EOF, the session
 * process's exit), bounded by a poll timeout that only catches hangs. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "base/buf.h"
#include "base/macro.h"
#include "test.h"
#include "vsh.pb-c.h"
#include "vsh/frame.h"
#include "vsh/session.h"

/* --- the state machine ---------------------------------------------------- */

TEST(state_machine_table)
{
#define R VSH_SESSION_RUNNING
#define D VSH_SESSION_DRAINING
#define X VSH_SESSION_EXITED
#define G VSH_SESSION_CLIENT_GONE
#define F VSH_SESSION_FAILED
	/* next[state][event], events in enum order: TARGET_EXITED, OUTPUT_DONE,
	 * CLIENT_GONE, FAULT. */
	static const int next[5][4] = {
		[R] = { D, R, G, F }, [D] = { D, X, G, F }, [X] = { X, X, G, X },
		[G] = { G, G, G, G }, [F] = { F, F, G, F },
	};
	for (int st = 0; st < 5; st++)
		for (int ev = 0; ev < 4; ev++) {
			if ((int)vsh_session_step(st, ev) != next[st][ev])
				printf("# %s + event %d -> %s\n", vsh_session_state_name(st), ev,
				       vsh_session_state_name(vsh_session_step(st, ev)));
			CHECK_EQ(vsh_session_step(st, ev), next[st][ev]);
		}
	CHECK(!vsh_session_state_is_final(R));
	CHECK(!vsh_session_state_is_final(D));
	CHECK(vsh_session_state_is_final(X) && vsh_session_state_is_final(G) && vsh_session_state_is_final(F));
	CHECK_STR(vsh_session_state_name(D), "draining");
	CHECK_STR(vsh_session_state_name(99), "?");
#undef R
#undef D
#undef X
#undef G
#undef F
}

TEST(output_still_open_at_exit_drains_first)
{
	enum vsh_session_state st = VSH_SESSION_RUNNING;
	st = vsh_session_step(st, VSH_EVENT_OUTPUT_DONE); /* closed its stdout, still running */
	CHECK_EQ(st, VSH_SESSION_RUNNING);
	st = vsh_session_step(st, VSH_EVENT_TARGET_EXITED);
	CHECK_EQ(st, VSH_SESSION_DRAINING);
	st = vsh_session_step(st, VSH_EVENT_OUTPUT_DONE);
	CHECK_EQ(st, VSH_SESSION_EXITED);
}

/* --- whole sessions ------------------------------------------------------- */

struct client {
	int fd;
	pid_t session;
	int summary_fd; /* the session process writes its summary line here */
	struct buf in;
	bool ready, ended, eof;
	int setup_status, end_status, code;
	char setup_desc[256], end_desc[256], summary[512];
	char out[2][1024]; /* stdout, stderr: the start of each */
	size_t out_len[2];
	size_t total[2]; /* bytes received */
	size_t frames[2], largest[2];
	bool out_eof[2];
};

static void client_send(struct client *c, const VmTools__Vsh__GuestMessage *g)
{
	uint8_t frame[VSH_FRAME_MAX];
	int n = vsh_frame_encode(&g->base, frame, sizeof(frame));
	if (n > 0)
		(void)!send(c->fd, frame, (size_t)n, MSG_NOSIGNAL);
}

static void client_send_stdin(struct client *c, const char *data)
{
	VmTools__Vsh__DataMessage d = VM_TOOLS__VSH__DATA_MESSAGE__INIT;
	VmTools__Vsh__GuestMessage g = VM_TOOLS__VSH__GUEST_MESSAGE__INIT;
	d.stream = VM_TOOLS__VSH__STDIO_STREAM__STDIN_STREAM;
	d.data.data = (uint8_t *)data;
	d.data.len = strlen(data);
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_DATA_MESSAGE;
	g.data_message = &d;
	client_send(c, &g);
}

static void client_send_signal(struct client *c, int sig)
{
	VmTools__Vsh__GuestMessage g = VM_TOOLS__VSH__GUEST_MESSAGE__INIT;
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_SIGNAL;
	g.signal = sig;
	client_send(c, &g);
}

static void client_take(struct client *c, const uint8_t *msg, size_t mlen)
{
	if (!c->ready && !c->setup_status) {
		VmTools__Vsh__SetupConnectionResponse *r = vm_tools__vsh__setup_connection_response__unpack(NULL, mlen, msg);
		if (!r)
			return;
		c->setup_status = r->status;
		c->ready = r->status == VM_TOOLS__VSH__CONNECTION_STATUS__READY;
		snprintf(c->setup_desc, sizeof(c->setup_desc), "%s", r->description ? r->description : "");
		vm_tools__vsh__setup_connection_response__free_unpacked(r, NULL);
		return;
	}
	VmTools__Vsh__HostMessage *h = vm_tools__vsh__host_message__unpack(NULL, mlen, msg);
	if (!h)
		return;
	if (h->msg_case == VM_TOOLS__VSH__HOST_MESSAGE__MSG_DATA_MESSAGE) {
		int k = h->data_message->stream == VM_TOOLS__VSH__STDIO_STREAM__STDERR_STREAM;
		size_t len = h->data_message->data.len;
		if (len == 0)
			c->out_eof[k] = true;
		c->total[k] += len;
		c->frames[k]++;
		c->largest[k] = MAX(c->largest[k], len);
		len = MIN(len, sizeof(c->out[k]) - 1 - c->out_len[k]);
		if (len)
			memcpy(c->out[k] + c->out_len[k], h->data_message->data.data, len);
		c->out_len[k] += len;
	} else if (h->msg_case == VM_TOOLS__VSH__HOST_MESSAGE__MSG_STATUS_MESSAGE) {
		c->ended = true;
		c->end_status = h->status_message->status;
		c->code = h->status_message->code;
		snprintf(c->end_desc, sizeof(c->end_desc), "%s",
			 h->status_message->description ? h->status_message->description : "");
	}
	vm_tools__vsh__host_message__free_unpacked(h, NULL);
}

/* Reads until cond() holds or the connection ends; false on a hang (10 s). */
static bool client_until(struct client *c, bool (*cond)(const struct client *c))
{
	while (!cond(c) && !c->eof) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		uint8_t chunk[65536];
		if (poll(&p, 1, 10000) <= 0)
			return false;
		ssize_t n = recv(c->fd, chunk, sizeof(chunk), 0);
		if (n <= 0) {
			c->eof = true;
			break;
		}
		(void)buf_append(&c->in, chunk, (size_t)n, SIZE_MAX);
		size_t off = 0, mlen, flen;
		const uint8_t *msg;
		while (vsh_frame_next(c->in.data + off, c->in.len - off, &msg, &mlen, &flen) > 0) {
			client_take(c, msg, mlen);
			off += flen;
		}
		buf_consume(&c->in, off);
	}
	return cond(c) || c->eof;
}

static bool is_ready(const struct client *c)
{
	return c->ready || c->setup_status;
}

static bool said_up(const struct client *c)
{
	return strstr(c->out[0], "up") != NULL;
}

static bool at_eof(const struct client *c)
{
	return c->eof;
}

/* Starts a session process for req. The request goes as the bytes vshd
 * would have read already (received) or, with over_socket, through the
 * socket. */
static bool client_start(struct client *c, VmTools__Vsh__SetupConnectionRequest *req, bool over_socket)
{
	struct vsh_policy policy = { .allow_user_switch = true };
	uint8_t frame[VSH_FRAME_MAX];
	int sv[2], sp[2];

	*c = (struct client){ .fd = -1 };
	int len = vsh_frame_encode(&req->base, frame, sizeof(frame));
	if (len < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(sp, O_CLOEXEC) < 0)
		return false;
	c->session = fork();
	if (c->session < 0)
		return false;
	if (c->session == 0) {
		char summary[512] = "";
		safe_close(sv[1]);
		safe_close(sp[0]);
		signal(SIGPIPE, SIG_IGN);
		int r = vsh_session_run(sv[0], over_socket ? NULL : frame, over_socket ? 0 : (size_t)len, &policy,
					summary, sizeof(summary));
		(void)!write(sp[1], summary, strlen(summary));
		_exit(r < 0 ? 1 : 0);
	}
	safe_close(sv[0]);
	safe_close(sp[1]);
	c->fd = sv[1];
	c->summary_fd = sp[0];
	if (over_socket)
		(void)!send(c->fd, frame, (size_t)len, MSG_NOSIGNAL);
	return true;
}

/* Reads to the end; the session process's exit status (-1 on a hang). */
static int client_finish(struct client *c)
{
	int status = -1;
	bool ok = client_until(c, at_eof);

	safe_close(c->fd);
	if (!ok)
		(void)kill(c->session, SIGKILL);
	if (waitpid(c->session, &status, 0) != c->session)
		status = -1;
	ssize_t n = read(c->summary_fd, c->summary, sizeof(c->summary) - 1);
	c->summary[n > 0 ? n : 0] = 0;
	safe_close(c->summary_fd);
	buf_clear(&c->in);
	return ok && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static VmTools__Vsh__SetupConnectionRequest request(char **argv, size_t argc, bool pty)
{
	VmTools__Vsh__SetupConnectionRequest req = VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__INIT;
	req.argv = argv;
	req.n_argv = argc;
	req.nopty = !pty;
	req.window_rows = 33;
	req.window_cols = 77;
	return req;
}

TEST(true_on_pipes_exits_zero)
{
	char *argv[] = { "true" };
	VmTools__Vsh__SetupConnectionRequest req = request(argv, 1, false);
	struct client c;

	CHECK(client_start(&c, &req, false));
	CHECK_EQ(client_finish(&c), 0);
	CHECK(c.ready);
	CHECK(c.ended);
	CHECK_EQ(c.end_status, VM_TOOLS__VSH__CONNECTION_STATUS__EXITED);
	CHECK_EQ(c.code, 0);
	CHECK(c.out_eof[0] && c.out_eof[1]);
	CHECK(strstr(c.summary, "ended with code 0"));
}

TEST(cat_echoes_stdin_until_eof)
{
	char *argv[] = { "cat" };
	VmTools__Vsh__SetupConnectionRequest req = request(argv, 1, false);
	struct client c;

	/* The request through the socket this time. */
	CHECK(client_start(&c, &req, true));
	CHECK(client_until(&c, is_ready));
	CHECK(c.ready);
	client_send_stdin(&c, "hello ");
	client_send_stdin(&c, "vsh\n");
	client_send_stdin(&c, ""); /* EOF */
	CHECK_EQ(client_finish(&c), 0);
	CHECK_STR(c.out[0], "hello vsh\n");
	CHECK_EQ(c.end_status, VM_TOOLS__VSH__CONNECTION_STATUS__EXITED);
	CHECK_EQ(c.code, 0);
}

TEST(stdout_stderr_and_exit_code)
{
	char *argv[] = { "sh", "-c", "echo out; echo err >&2; exit 3" };
	VmTools__Vsh__SetupConnectionRequest req = request(argv, 3, false);
	struct client c;

	CHECK(client_start(&c, &req, false));
	CHECK_EQ(client_finish(&c), 0);
	CHECK_STR(c.out[0], "out\n");
	CHECK_STR(c.out[1], "err\n");
	CHECK_EQ(c.code, 3);
}

TEST(large_output_in_frames)
{
	/* 100000 bytes: cut into frames of at most VSH_MAX_DATA on the way. */
	char *argv[] = { "sh", "-c", "head -c 100000 /dev/zero; echo done >&2" };
	VmTools__Vsh__SetupConnectionRequest req = request(argv, 3, false);
	struct client c;

	CHECK(client_start(&c, &req, false));
	CHECK_EQ(client_finish(&c), 0);
	CHECK_STR(c.out[1], "done\n");
	CHECK_EQ(c.total[0], 100000);
	CHECK_EQ(c.largest[0], VSH_MAX_DATA);
	CHECK(c.frames[0] >= 100000 / VSH_MAX_DATA + 1); /* and the EOF */
	CHECK_EQ(c.code, 0);
}

TEST(pty_size_and_exit_code)
{
	char *argv[] = { "sh", "-c", "stty size; test -t 0 && echo tty; exit 4" };
	VmTools__Vsh__SetupConnectionRequest req = request(argv, 3, true);
	struct client c;

	CHECK(client_start(&c, &req, false));
	CHECK_EQ(client_finish(&c), 0);
	/* A terminal's line discipline ends lines with CR LF. */
	CHECK_STR(c.out[0], "33 77\r\ntty\r\n");
	CHECK_EQ(c.code, 4);
}

TEST(signal_reaches_the_target)
{
	char *argv[] = { "sh", "-c", "echo up; exec sleep 100" };
	VmTools__Vsh__SetupConnectionRequest req = request(argv, 3, false);
	struct client c;

	CHECK(client_start(&c, &req, false));
	/* "up" means the shell runs: its group exists for the signal. */
	CHECK(client_until(&c, is_ready));
	CHECK(client_until(&c, said_up));
	CHECK(strstr(c.out[0], "up"));
	client_send_signal(&c, SIGTERM);
	CHECK_EQ(client_finish(&c), 0);
	CHECK_EQ(c.end_status, VM_TOOLS__VSH__CONNECTION_STATUS__EXITED);
	CHECK_EQ(c.code, 128 + SIGTERM);
}

TEST(client_gone_hangs_the_target_up)
{
	char *argv[] = { "sleep", "100" };
	VmTools__Vsh__SetupConnectionRequest req = request(argv, 2, false);
	struct client c;

	CHECK(client_start(&c, &req, false));
	CHECK(client_until(&c, is_ready));
	CHECK(c.ready);
	shutdown(c.fd, SHUT_WR); /* the client is done */
	CHECK_EQ(client_finish(&c), 0);
	CHECK(!c.ended);
	CHECK(strstr(c.summary, "client went away; sent SIGHUP"));
}

TEST(oversized_frame_ends_the_session)
{
	char *argv[] = { "sleep", "100" };
	VmTools__Vsh__SetupConnectionRequest req = request(argv, 2, false);
	struct client c;

	CHECK(client_start(&c, &req, false));
	CHECK(client_until(&c, is_ready));
	CHECK_EQ(send(c.fd, "\xff\xff\x00\x00", 4, MSG_NOSIGNAL), 4);
	CHECK_EQ(client_finish(&c), 0);
	CHECK(strstr(c.summary, "client went away"));
}

TEST(missing_program_is_127)
{
	char *argv[] = { "/nonexistent/valet-program" };
	VmTools__Vsh__SetupConnectionRequest req = request(argv, 1, false);
	struct client c;

	CHECK(client_start(&c, &req, false));
	CHECK_EQ(client_finish(&c), 0);
	CHECK(c.ready);
	CHECK_EQ(c.end_status, VM_TOOLS__VSH__CONNECTION_STATUS__EXITED);
	CHECK_EQ(c.code, 127);
	CHECK(strstr(c.end_desc, "cannot execute"));
}

TEST(setup_failures_answer_failed)
{
	char *argv[] = { "true" };
	VmTools__Vsh__SetupConnectionRequest req = request(argv, 1, false);
	struct client c;

	req.target = "penguin";
	CHECK(client_start(&c, &req, false));
	CHECK_EQ(client_finish(&c), 1);
	CHECK(!c.ready);
	CHECK_EQ(c.setup_status, VM_TOOLS__VSH__CONNECTION_STATUS__FAILED);
	CHECK(strstr(c.setup_desc, "container shells are not supported"));

	req.target = NULL;
	req.user = "no-such-user-valet";
	CHECK(client_start(&c, &req, false));
	CHECK_EQ(client_finish(&c), 1);
	CHECK_STR(c.setup_desc, "could not find user: no-such-user-valet");
	CHECK(strstr(c.summary, "setup failed"));
}
