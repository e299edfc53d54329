/* rpc/unary.c against an in-process rpc_server on a unix socket, both in
 * one loop: a reply, an error status, a deadline, nobody listening. */
#include <sys/stat.h>

#include "base/time-util.h"
#include "guest.pb-c.h"
#include "rpc/server.h"
#include "rpc/unary.h"
#include "test.h"

#define GUARD_USEC (10 * USEC_PER_SEC)

static struct loop *L;
static int n_cancelled;

/* Mount answers error = strlen(source); "fail" is refused. */
static void h_mount(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	const VmTools__MountRequest *req = (const VmTools__MountRequest *)request;
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;
	if (strcmp(req->source, "fail") == 0) {
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "no such source: %s", req->source);
		return;
	}
	resp.error = (int32_t)strlen(req->source);
	rpc_call_reply(call, &resp.base);
}

static void on_cancel(struct rpc_call *call, void *ud)
{
	n_cancelled++;
}

/* Never answers: the caller's deadline must end the call. */
static void h_hang(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	rpc_call_set_cancel(call, on_cancel, NULL);
}

static const struct rpc_method methods[] = {
	{ "/t.S/Mount", &vm_tools__mount_request__descriptor, h_mount },
	{ "/t.S/Hang", &vm_tools__mount_request__descriptor, h_hang },
};
static const struct rpc_service service = { methods, 2, NULL };

struct outcome {
	bool done;
	int code;
	char message[256];
	ProtobufCMessage *response;
};

static void on_done(int code, const char *message, ProtobufCMessage *response, void *ud)
{
	struct outcome *o = ud;
	o->done = true;
	o->code = code;
	snprintf(o->message, sizeof(o->message), "%s", message);
	o->response = response;
	loop_exit(L, 0);
}

static bool hung;

static void on_guard(struct loop_timer *t, void *ud)
{
	hung = true;
	loop_exit(L, 0);
}

static char dir[64], spec[128];

static int server_start(struct rpc_server **ret)
{
	struct rpc_server_config cfg;
	struct addr a;
	int r;

	n_cancelled = 0;
	hung = false;
	snprintf(dir, sizeof(dir), "/tmp/valet-test-unary-XXXXXX");
	if (!mkdtemp(dir))
		return -errno;
	snprintf(spec, sizeof(spec), "unix:%s/s", dir);
	r = loop_new(&L);
	if (r < 0)
		return r;
	rpc_server_config_init(&cfg, &service);
	r = rpc_server_new(L, &cfg, ret);
	if (r < 0)
		return r;
	r = addr_parse(spec, &a);
	if (r < 0)
		return r;
	return rpc_server_listen(*ret, &a);
}

static void server_done(struct rpc_server *srv)
{
	char path[96];
	rpc_server_free(srv);
	loop_free(L);
	snprintf(path, sizeof(path), "%s/s", dir);
	(void)unlink(path);
	(void)rmdir(dir);
}

/* One call with source as the request; runs the loop until it is done. */
static int call(const char *path, const char *source, uint64_t timeout_usec, struct outcome *o)
{
	VmTools__MountRequest req = VM_TOOLS__MOUNT_REQUEST__INIT;
	struct loop_timer *guard;
	struct addr a;
	int r;

	*o = (struct outcome){ .code = -1 };
	req.source = (char *)source;
	r = addr_parse(spec, &a);
	if (r < 0)
		return r;
	r = rpc_unary_call(L, &a, path, &req.base, &vm_tools__mount_response__descriptor, timeout_usec, on_done, o);
	if (r < 0)
		return r;
	r = loop_add_timer(L, now_usec() + GUARD_USEC, on_guard, NULL, &guard);
	if (r < 0)
		return r;
	while (!o->done && !hung)
		(void)loop_run(L);
	loop_timer_free(guard);
	return hung ? -ETIMEDOUT : 0;
}

TEST(unary_ok_decodes_the_response)
{
	struct rpc_server *srv = NULL;
	struct outcome o;

	CHECK_EQ(server_start(&srv), 0);
	CHECK_EQ(call("/t.S/Mount", "abcd", 5 * USEC_PER_SEC, &o), 0);
	CHECK_EQ(o.code, RPC_OK);
	CHECK(o.response);
	CHECK_EQ(((VmTools__MountResponse *)o.response)->error, 4);
	protobuf_c_message_free_unpacked(o.response, NULL);
	/* Again, without a timeout: a connection per call. */
	CHECK_EQ(call("/t.S/Mount", "ab", 0, &o), 0);
	CHECK_EQ(o.code, RPC_OK);
	CHECK_EQ(((VmTools__MountResponse *)o.response)->error, 2);
	protobuf_c_message_free_unpacked(o.response, NULL);
	server_done(srv);
}

TEST(unary_error_status_and_message)
{
	struct rpc_server *srv = NULL;
	struct outcome o;

	CHECK_EQ(server_start(&srv), 0);
	CHECK_EQ(call("/t.S/Mount", "fail", 5 * USEC_PER_SEC, &o), 0);
	CHECK_EQ(o.code, RPC_FAILED_PRECONDITION);
	CHECK_STR(o.message, "no such source: fail");
	CHECK(!o.response);
	CHECK_EQ(call("/t.S/Nope", "x", 5 * USEC_PER_SEC, &o), 0);
	CHECK_EQ(o.code, RPC_UNIMPLEMENTED);
	CHECK(!o.response);
	server_done(srv);
}

TEST(unary_deadline_exceeded)
{
	struct rpc_server *srv = NULL;
	struct outcome o;

	CHECK_EQ(server_start(&srv), 0);
	uint64_t start = now_usec();
	CHECK_EQ(call("/t.S/Hang", "x", 50 * USEC_PER_MSEC, &o), 0);
	CHECK_EQ(o.code, RPC_DEADLINE_EXCEEDED);
	CHECK(!o.response);
	CHECK(now_usec() - start >= 50 * USEC_PER_MSEC);
	/* The server's handler hears of it too (the client's RST_STREAM, or its
	 * own copy of the deadline), or at the latest when freed. */
	server_done(srv);
	CHECK_EQ(n_cancelled, 1);
}

TEST(unary_nobody_listening_fails_without_calling_back)
{
	struct rpc_server *srv = NULL;
	struct outcome o;

	CHECK_EQ(server_start(&srv), 0);
	rpc_server_free(srv);
	/* The listener and its socket file are gone: the call fails at once,
	 * and done is never called (maitctl says "cannot connect"). */
	CHECK_EQ(call("/t.S/Mount", "x", 5 * USEC_PER_SEC, &o), -ENOENT);
	CHECK(!o.done);
	server_done(NULL);
}
