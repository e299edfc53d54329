/* Writes the seed corpora that are made of protocol bytes, from the real
 * code: our gRPC client talking to our gRPC server in memory (each side's
 * bytes recorded), and vsh frames made by vsh_frame_encode. The text
 * corpora (boot jobs, command lines, addresses) are written by hand.
 *
 *   build/fuzz/gen-corpus fuzz/corpus     (rewrites the generated files) */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "base/buf.h"
#include "common.pb-c.h"
#include "guest.pb-c.h"
#include "rpc/client-session.h"
#include "rpc/server-session.h"
#include "vsh.pb-c.h"
#include "vsh/frame.h"

/* The server session's clock (data, not read): a second in. */
#define GEN_CLOCK 1000000u

static const char *out_dir;

static void die(const char *what)
{
	fprintf(stderr, "gen-corpus: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* corpus/TARGET/NAME = head + body */
static void write_seed(const char *target, const char *name, const void *head, size_t head_len, const struct buf *body)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", out_dir, target);
	(void)mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", out_dir, target, name);
	f = fopen(path, "wbe");
	if (!f || fwrite(head, 1, head_len, f) != head_len ||
	    (body->len && fwrite(body->data, 1, body->len, f) != body->len) || fclose(f) != 0)
		die(path);
}

/* --- gRPC: a server whose handlers answer by method ---------------------- */

static struct rpc_call *held;

static void h_mount(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;
	const VmTools__MountRequest *req = (const VmTools__MountRequest *)request;
	if (strcmp(req->fstype, "nope") == 0) {
		rpc_call_fail(call, RPC_INVALID_ARGUMENT, "unknown filesystem type: %s", req->fstype);
		return;
	}
	rpc_call_reply(call, &resp.base);
}

static void h_launch(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	VmTools__LaunchProcessResponse resp = VM_TOOLS__LAUNCH_PROCESS_RESPONSE__INIT;
	const VmTools__LaunchProcessRequest *req = (const VmTools__LaunchProcessRequest *)request;
	if (req->wait_for_exit && !held) {
		held = call; /* answered by the deadline */
		return;
	}
	resp.status = VM_TOOLS__PROCESS_STATUS__EXITED;
	resp.code = 0;
	rpc_call_reply(call, &resp.base);
}

static void h_empty(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	rpc_call_reply(call, &resp.base);
}

static void on_cancel(struct rpc_call *call, void *ud)
{
	held = NULL;
}

/* Streaming (fuzz-server-session's /t.S methods): a reply per message,
 * the call finished at the half-close. */
static void s_message(struct rpc_call *call, const ProtobufCMessage *msg, void *ud)
{
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;
	(void)rpc_call_send(call, &resp.base);
}

static void s_end(struct rpc_call *call, void *ud)
{
	rpc_call_finish(call, RPC_OK, NULL);
}

static void h_stream(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	rpc_call_set_receiver(call, s_message, s_end, NULL);
	s_message(call, request, NULL);
}

static const struct rpc_method methods[] = {
	{ "/t.S/Client", &vm_tools__mount_request__descriptor, h_stream, true, false },
	{ "/t.S/Server", &vm_tools__mount_request__descriptor, h_stream, false, true },
	{ "/t.S/Bidi", &vm_tools__mount_request__descriptor, h_stream, true, true },
	{ "/vm_tools.Maitred/ConfigureNetwork", &vm_tools__network_config_request__descriptor, h_empty },
	{ "/vm_tools.Maitred/Shutdown", &vm_tools__empty_message__descriptor, h_empty },
	{ "/vm_tools.Maitred/LaunchProcess", &vm_tools__launch_process_request__descriptor, h_launch },
	{ "/vm_tools.Maitred/Mount", &vm_tools__mount_request__descriptor, h_mount },
	{ "/vm_tools.StartupListener/VmReady", &vm_tools__empty_message__descriptor, h_empty },
};
static const struct rpc_service service = { methods, ARRAY_SIZE(methods), NULL };

static void ignore_reply(int code, const char *message, const uint8_t *data, size_t len, void *ud) {}

/* Moves bytes both ways until both are quiet, recording each direction. */
static void pump(struct rpc_client_session *c, struct rpc_server_session *s, struct buf *to_server,
		 struct buf *to_client)
{
	for (bool moved = true; moved;) {
		const uint8_t *p;
		ssize_t n;
		moved = false;
		while ((n = rpc_client_session_pull(c, &p)) > 0) {
			(void)buf_append(to_server, p, (size_t)n, SIZE_MAX);
			(void)rpc_server_session_feed(s, p, (size_t)n, GEN_CLOCK);
			moved = true;
		}
		if (held)
			rpc_call_set_cancel(held, on_cancel, NULL);
		while ((n = rpc_server_session_pull(s, &p)) > 0) {
			(void)buf_append(to_client, p, (size_t)n, SIZE_MAX);
			(void)rpc_client_session_feed(c, p, (size_t)n);
			moved = true;
		}
	}
}

struct grpc_call {
	const char *path;
	const ProtobufCMessage *req;
	uint64_t timeout;
};

/* One conversation: calls started together (as the client fuzzer starts
 * them), optional deadline, optional graceful end. */
static void conversation(const char *name, const struct grpc_call *calls, size_t n, bool expire, bool shutdown,
			 uint8_t client_calls_byte)
{
	struct rpc_client_session *c;
	struct rpc_server_session *s;
	struct buf to_server = { 0 }, to_client = { 0 };

	held = NULL;
	if (rpc_client_session_new(&c) < 0 || rpc_server_session_new(&service, NULL, NULL, NULL, &s) < 0)
		die("session");
	for (size_t i = 0; i < n; i++)
		if (rpc_client_session_call(c, calls[i].path, calls[i].req, calls[i].timeout, ignore_reply, NULL) < 0)
			die("call");
	pump(c, s, &to_server, &to_client);
	if (expire) {
		/* The server lets the call's deadline pass; the client resets. */
		rpc_server_session_expire(s, UINT64_MAX - 1);
		pump(c, s, &to_server, &to_client);
		rpc_client_session_expire(c, UINT64_MAX - 1);
		pump(c, s, &to_server, &to_client);
	}
	if (shutdown) {
		rpc_server_session_shutdown(s);
		rpc_client_session_shutdown(c);
		pump(c, s, &to_server, &to_client);
	}
	/* Server seeds: schedule seed 0 (feed in varied chunks), choices
	 * 0 (answer every call at once); the deferred variant answers later. */
	uint8_t head[16] = { 0 };
	char file[128];
	snprintf(file, sizeof(file), "%s", name);
	write_seed("server-session", file, head, sizeof(head), &to_server);
	memset(head + 8, 0xaa, 8); /* 2: every call deferred, answered later */
	snprintf(file, sizeof(file), "%s-deferred", name);
	write_seed("server-session", file, head, sizeof(head), &to_server);
	uint8_t chead[9] = { 0 };
	chead[8] = client_calls_byte;
	write_seed("client-session", name, chead, sizeof(chead), &to_client);
	buf_clear(&to_server);
	buf_clear(&to_client);
	rpc_client_session_free(c);
	rpc_server_session_free(s);
}

/* RST_STREAM(CANCEL) of a stream, fed to the server and kept. */
static void raw_reset(struct rpc_server_session *s, struct buf *to_server, uint32_t stream)
{
	const uint8_t rst[] = { 0, 0, 4, 3, 0, stream >> 24, stream >> 16, stream >> 8, stream, 0, 0, 0, 8 };
	(void)buf_append(to_server, rst, sizeof(rst), SIZE_MAX);
	(void)rpc_server_session_feed(s, rst, sizeof(rst), GEN_CLOCK);
}

/* Resets of streams never opened (taken out by rpc/reset-filter.c)
 * between two calls, then one of stream 0 (a connection error). */
static void idle_reset_conversation(const struct grpc_call *call)
{
	struct rpc_client_session *c;
	struct rpc_server_session *s;
	struct buf to_server = { 0 }, to_client = { 0 };
	uint8_t head[16] = { 0 };

	held = NULL;
	if (rpc_client_session_new(&c) < 0 || rpc_server_session_new(&service, NULL, NULL, NULL, &s) < 0)
		die("session");
	for (int i = 0; i < 2; i++) {
		if (rpc_client_session_call(c, call->path, call->req, call->timeout, ignore_reply, NULL) < 0)
			die("call");
		pump(c, s, &to_server, &to_client);
		raw_reset(s, &to_server, 5);
		raw_reset(s, &to_server, 41);
	}
	raw_reset(s, &to_server, 0);
	write_seed("server-session", "idle-resets", head, sizeof(head), &to_server);
	buf_clear(&to_server);
	buf_clear(&to_client);
	rpc_client_session_free(c);
	rpc_server_session_free(s);
}

static void stream_done(struct rpc_client_call *call, int code, const char *message, void *ud) {}
static void stream_msg(struct rpc_client_call *call, const uint8_t *d, size_t len, void *ud) {}
static const struct rpc_client_stream_ops stream_ops = { stream_msg, NULL, stream_done };

/* Streaming calls (server seeds only): each path gets msgs messages, then
 * the half-close. */
static void stream_conversation(const char *name, const char *const *paths, size_t n, const ProtobufCMessage *msg,
				int msgs)
{
	struct rpc_client_session *c;
	struct rpc_server_session *s;
	struct rpc_client_call *calls[8];
	struct buf to_server = { 0 }, to_client = { 0 };

	if (rpc_client_session_new(&c) < 0 || rpc_server_session_new(&service, NULL, NULL, NULL, &s) < 0)
		die("session");
	for (size_t i = 0; i < n; i++)
		if (rpc_client_session_start(c, paths[i], 0, &stream_ops, NULL, &calls[i]) < 0)
			die("call");
	for (int k = 0; k < msgs; k++) {
		for (size_t i = 0; i < n; i++)
			(void)rpc_client_call_send(calls[i], msg);
		pump(c, s, &to_server, &to_client);
	}
	for (size_t i = 0; i < n; i++)
		(void)rpc_client_call_close_send(calls[i]);
	pump(c, s, &to_server, &to_client);
	uint8_t head[16] = { 0 };
	char file[128];
	write_seed("server-session", name, head, sizeof(head), &to_server);
	memset(head + 8, 0x55, 8); /* receivers paused by the choices */
	snprintf(file, sizeof(file), "%s-paused", name);
	write_seed("server-session", file, head, sizeof(head), &to_server);
	buf_clear(&to_server);
	buf_clear(&to_client);
	rpc_client_session_free(c);
	rpc_server_session_free(s);
}

static void grpc_seeds(void)
{
	static char *argv[] = { "/bin/sh", "-c", "echo hello" };
	VmTools__LaunchProcessRequest launch = VM_TOOLS__LAUNCH_PROCESS_REQUEST__INIT;
	VmTools__LaunchProcessRequest launch_wait = VM_TOOLS__LAUNCH_PROCESS_REQUEST__INIT;
	VmTools__MountRequest mount = VM_TOOLS__MOUNT_REQUEST__INIT;
	VmTools__MountRequest bad_mount = VM_TOOLS__MOUNT_REQUEST__INIT;
	VmTools__NetworkConfigRequest net = VM_TOOLS__NETWORK_CONFIG_REQUEST__INIT;
	VmTools__IPv4Config ipv4 = VM_TOOLS__IPV4_CONFIG__INIT;
	VmTools__EmptyMessage empty = VM_TOOLS__EMPTY_MESSAGE__INIT;
	VmTools__LaunchProcessRequest__EnvEntry env = VM_TOOLS__LAUNCH_PROCESS_REQUEST__ENV_ENTRY__INIT;
	VmTools__LaunchProcessRequest__EnvEntry *envp[] = { &env };

	env.key = "TERM";
	env.value = "linux";
	launch.argv = argv;
	launch.n_argv = 3;
	launch.env = envp;
	launch.n_env = 1;
	launch.respawn = true;
	launch_wait = launch;
	launch_wait.respawn = false;
	launch_wait.wait_for_exit = true;
	mount.source = "tmpfs";
	mount.target = "/mnt";
	mount.fstype = "tmpfs";
	mount.options = "size=1m";
	mount.mountflags = 6;
	bad_mount = mount;
	bad_mount.fstype = "nope";
	ipv4.address = 0x0f02000a; /* 10.0.2.15/24 via 10.0.2.2, network order */
	ipv4.netmask = 0x00ffffff;
	ipv4.gateway = 0x0202000a;
	net.ipv4_config = &ipv4;

	struct grpc_call launch_call[] = { { "/vm_tools.Maitred/LaunchProcess", &launch.base, 0 } };
	struct grpc_call wait_call[] = { { "/vm_tools.Maitred/LaunchProcess", &launch_wait.base, 5000000 } };
	struct grpc_call mount_call[] = { { "/vm_tools.Maitred/Mount", &mount.base, 0 } };
	struct grpc_call fail_call[] = { { "/vm_tools.Maitred/Mount", &bad_mount.base, 0 } };
	struct grpc_call ready_call[] = { { "/vm_tools.StartupListener/VmReady", &empty.base, 0 } };
	struct grpc_call unknown_call[] = { { "/vm_tools.Maitred/Nope", &empty.base, 0 } };
	struct grpc_call many[] = {
		{ "/vm_tools.Maitred/ConfigureNetwork", &net.base, 1000000 },
		{ "/vm_tools.Maitred/Mount", &mount.base, 0 },
		{ "/vm_tools.Maitred/LaunchProcess", &launch.base, 0 },
		{ "/vm_tools.Maitred/Shutdown", &empty.base, 0 },
	};
	/* The client byte: bits 7-6 = calls - 1; per call bit 0 LaunchProcess
	 * (else VmReady), bit 1 a timeout. */
	conversation("launch", launch_call, 1, false, false, 0x01);
	conversation("launch-wait-deadline", wait_call, 1, true, false, 0x03);
	conversation("mount", mount_call, 1, false, false, 0x01);
	conversation("mount-fails", fail_call, 1, false, false, 0x01);
	conversation("vm-ready", ready_call, 1, false, false, 0x00);
	conversation("unknown-method", unknown_call, 1, false, false, 0x00);
	conversation("four-calls-then-goaway", many, 4, false, true, 0xc5);
	idle_reset_conversation(&mount_call[0]);

	static const char *const bidi[] = { "/t.S/Bidi" }, *const client[] = { "/t.S/Client" },
				 *const server[] = { "/t.S/Server" },
				 *const all[] = { "/t.S/Bidi", "/t.S/Client", "/t.S/Server" };
	stream_conversation("stream-bidi", bidi, 1, &mount.base, 4);
	stream_conversation("stream-client", client, 1, &mount.base, 3);
	stream_conversation("stream-server", server, 1, &mount.base, 1);
	stream_conversation("stream-three-kinds", all, 3, &mount.base, 2);
}

/* --- vsh ------------------------------------------------------------------ */

static void frame(struct buf *b, const ProtobufCMessage *m)
{
	if (vsh_frame_append(b, m) < 0)
		die("frame");
}

static void vsh_seeds(void)
{
	VmTools__Vsh__SetupConnectionRequest req = VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__INIT;
	VmTools__Vsh__SetupConnectionResponse resp = VM_TOOLS__VSH__SETUP_CONNECTION_RESPONSE__INIT;
	VmTools__Vsh__SetupConnectionRequest__EnvEntry env[2] = {
		VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__ENV_ENTRY__INIT,
		VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__ENV_ENTRY__INIT
	};
	VmTools__Vsh__SetupConnectionRequest__EnvEntry *envp[] = { &env[0], &env[1] };
	static char *argv[] = { "sh", "-c", "echo $FOO; cat" };
	struct buf b = { 0 };

	/* What vsh sends: the request, stdin, a resize, a signal, EOF. */
	env[0].key = "FOO";
	env[0].value = "1";
	env[1].key = "TERM";
	env[1].value = "xterm-256color";
	req.target = "/vm_shell";
	req.user = "root";
	req.env = envp;
	req.n_env = 2;
	req.argv = argv;
	req.n_argv = 3;
	req.window_rows = 24;
	req.window_cols = 80;
	req.cwd = "/tmp";
	frame(&b, &req.base);

	VmTools__Vsh__DataMessage data = VM_TOOLS__VSH__DATA_MESSAGE__INIT;
	VmTools__Vsh__WindowResizeMessage resize = VM_TOOLS__VSH__WINDOW_RESIZE_MESSAGE__INIT;
	VmTools__Vsh__ConnectionStatusMessage status = VM_TOOLS__VSH__CONNECTION_STATUS_MESSAGE__INIT;
	VmTools__Vsh__GuestMessage g = VM_TOOLS__VSH__GUEST_MESSAGE__INIT;
	data.stream = VM_TOOLS__VSH__STDIO_STREAM__STDIN_STREAM;
	data.data.data = (uint8_t *)"abc\n";
	data.data.len = 4;
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_DATA_MESSAGE;
	g.data_message = &data;
	frame(&b, &g.base);
	resize.rows = 50;
	resize.cols = 132;
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_RESIZE_MESSAGE;
	g.resize_message = &resize;
	frame(&b, &g.base);
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_SIGNAL;
	g.signal = VM_TOOLS__VSH__SIGNAL__SIGNAL_INT;
	frame(&b, &g.base);
	data.data.len = 0;
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_DATA_MESSAGE;
	g.data_message = &data;
	frame(&b, &g.base);
	status.status = VM_TOOLS__VSH__CONNECTION_STATUS__EXITED;
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_STATUS_MESSAGE;
	g.status_message = &status;
	frame(&b, &g.base);
	uint8_t head[9] = { 0 }; /* direction 0: client to vshd; seed 0 */
	write_seed("vsh-frame", "client-session", head, sizeof(head), &b);
	buf_clear(&b);

	/* What vshd sends: READY, output on both streams, EXITED. */
	VmTools__Vsh__HostMessage h = VM_TOOLS__VSH__HOST_MESSAGE__INIT;
	resp.status = VM_TOOLS__VSH__CONNECTION_STATUS__READY;
	resp.pid = 1234;
	frame(&b, &resp.base);
	data.stream = VM_TOOLS__VSH__STDIO_STREAM__STDOUT_STREAM;
	data.data.data = (uint8_t *)"1\nabc\n";
	data.data.len = 6;
	h.msg_case = VM_TOOLS__VSH__HOST_MESSAGE__MSG_DATA_MESSAGE;
	h.data_message = &data;
	frame(&b, &h.base);
	data.stream = VM_TOOLS__VSH__STDIO_STREAM__STDERR_STREAM;
	data.data.len = 0;
	frame(&b, &h.base);
	status.status = VM_TOOLS__VSH__CONNECTION_STATUS__EXITED;
	status.code = 130;
	status.description = "killed by signal 2";
	h.msg_case = VM_TOOLS__VSH__HOST_MESSAGE__MSG_STATUS_MESSAGE;
	h.status_message = &status;
	frame(&b, &h.base);
	head[0] = 1;
	write_seed("vsh-frame", "server-session", head, sizeof(head), &b);
	buf_clear(&b);

	/* Setup requests for target preparation: 1 byte of policy, then the
	 * request without its frame. */
	struct {
		const char *name;
		uint8_t policy;
		const char *user, *cwd;
		size_t n_argv;
		int cwd_pid;
	} setups[] = {
		{ "command-as-root", 0x04, "root", "/tmp", 3, 0 },
		{ "login-shell-default-user", 0x05, "", "", 0, 0 },
		{ "other-user-no-switch", 0x01, "nobody", "/", 1, 0 },
		{ "unknown-user", 0x04, "no-such-user", "", 1, 0 },
		{ "cwd-of-pid", 0x04, "root", "/nonexistent", 2, 1 },
	};
	for (size_t i = 0; i < sizeof(setups) / sizeof(setups[0]); i++) {
		uint8_t packed[VSH_MAX_MESSAGE];
		req.user = (char *)setups[i].user;
		req.cwd = (char *)setups[i].cwd;
		req.n_argv = setups[i].n_argv;
		req.cwd_pid = setups[i].cwd_pid;
		size_t n = vm_tools__vsh__setup_connection_request__pack(&req, packed);
		(void)buf_append(&b, packed, n, SIZE_MAX);
		write_seed("vsh-target", setups[i].name, &setups[i].policy, 1, &b);
		buf_clear(&b);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: gen-corpus CORPUS_DIR\n");
		return 2;
	}
	out_dir = argv[1];
	grpc_seeds();
	vsh_seeds();
	return 0;
}
