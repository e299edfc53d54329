/* Requests the server core must refuse before any handler runs: a call
 * already past its deadline, strings with a NUL byte in them. */
#include "guest.pb-c.h"
#include "h2-peer.h"
#include "pb/nul-check.h"
#include "rpc/server-session.h"
#include "test.h"

static int n_handled;

static void h_any(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	VmTools__MountResponse resp = VM_TOOLS__MOUNT_RESPONSE__INIT;
	n_handled++;
	rpc_call_reply(call, &resp.base);
}

static const struct rpc_method methods[] = {
	{ "/t.S/Mount", &vm_tools__mount_request__descriptor, h_any },
	{ "/t.S/Launch", &vm_tools__launch_process_request__descriptor, h_any },
};
static const struct rpc_service service = { methods, 2, NULL };

static struct h2_result *call(struct rpc_server_session *s, struct h2_peer *p, const char *path, const uint8_t *msg,
			      size_t len, const char *timeout)
{
	static uint8_t body[1024];
	size_t n = h2_grpc_frame(body, msg, len, false);
	int32_t id = h2_peer_request(p, path, "application/grpc", body, n, timeout, true);
	h2_pump(p, s);
	return h2_peer_result(p, id);
}

TEST(expired_deadline_runs_no_handler)
{
	struct rpc_server_session *s;
	struct h2_peer *p = h2_peer_new();
	const uint8_t mount[] = "\x0a\x03"
				"abc";
	n_handled = 0;
	CHECK_EQ(rpc_server_session_new(&service, NULL, NULL, NULL, &s), 0);
	struct h2_result *r = call(s, p, "/t.S/Mount", mount, 5, "1n");
	CHECK(r->closed);
	CHECK_EQ(r->grpc_status, RPC_DEADLINE_EXCEEDED);
	CHECK_EQ(n_handled, 0);
	CHECK_EQ(rpc_server_session_pending_calls(s), 0);
	/* 0 of any unit is already over too; a live deadline is not. */
	CHECK_EQ(call(s, p, "/t.S/Launch", NULL, 0, "0S")->grpc_status, RPC_DEADLINE_EXCEEDED);
	CHECK_EQ(n_handled, 0);
	CHECK_EQ(call(s, p, "/t.S/Mount", mount, 5, "10S")->grpc_status, 0);
	CHECK_EQ(n_handled, 1);
	h2_peer_free(p);
	rpc_server_session_free(s);
}

static void expect_nul_refused(struct rpc_server_session *s, struct h2_peer *p, const char *path, const uint8_t *msg,
			       size_t len, const char *field)
{
	char want[128];
	int before = n_handled;
	struct h2_result *r = call(s, p, path, msg, len, NULL);
	snprintf(want, sizeof(want), "string field '%s' contains a NUL byte", field);
	CHECK_EQ(r->grpc_status, RPC_INVALID_ARGUMENT);
	CHECK_STR(r->grpc_message, want);
	CHECK_EQ(n_handled, before);
}

TEST(nul_in_a_string_is_invalid_argument)
{
	struct rpc_server_session *s;
	struct h2_peer *p = h2_peer_new();
	n_handled = 0;
	CHECK_EQ(rpc_server_session_new(&service, NULL, NULL, NULL, &s), 0);
	/* argv: "sh", "sh\0evil" */
	const uint8_t argv[] = "\x0a\x02sh\x0a\x07sh\0evil";
	expect_nul_refused(s, p, "/t.S/Launch", argv, sizeof(argv) - 1, "argv");
	CHECK(!test_failed_flag);
	/* env { key: "A" value: "1\0" } and env { key: "B\0C" value: "" } */
	const uint8_t envv[] = "\x12\x07\x0a\x01"
			       "A\x12\x02"
			       "1\0";
	expect_nul_refused(s, p, "/t.S/Launch", envv, sizeof(envv) - 1, "env.value");
	CHECK(!test_failed_flag);
	const uint8_t envk[] = "\x12\x05\x0a\x03"
			       "B\0C";
	expect_nul_refused(s, p, "/t.S/Launch", envk, sizeof(envk) - 1, "env.key");
	CHECK(!test_failed_flag);
	/* Every MountRequest string: source, target, fstype, options. */
	const uint8_t src[] = "\x0a\x02\0x";
	expect_nul_refused(s, p, "/t.S/Mount", src, sizeof(src) - 1, "source");
	CHECK(!test_failed_flag);
	const uint8_t tgt[] = "\x0a\x01x\x12\x02x\0";
	expect_nul_refused(s, p, "/t.S/Mount", tgt, sizeof(tgt) - 1, "target");
	CHECK(!test_failed_flag);
	const uint8_t fst[] = "\x1a\x01\0";
	expect_nul_refused(s, p, "/t.S/Mount", fst, sizeof(fst) - 1, "fstype");
	CHECK(!test_failed_flag);
	const uint8_t opt[] = "\x20\x01\x2a\x03"
			      "a\0b";
	expect_nul_refused(s, p, "/t.S/Mount", opt, sizeof(opt) - 1, "options");
	CHECK(!test_failed_flag);
	/* Without NUL the same shapes go through. */
	const uint8_t ok[] = "\x0a\x02sh\x12\x07\x0a\x01"
			     "A\x12\x02"
			     "1x";
	CHECK_EQ(call(s, p, "/t.S/Launch", ok, sizeof(ok) - 1, NULL)->grpc_status, 0);
	CHECK_EQ(n_handled, 1);
	h2_peer_free(p);
	rpc_server_session_free(s);
}

TEST(nul_check_on_broken_or_odd_encodings)
{
	char f[64] = "";
	const ProtobufCMessageDescriptor *d = &vm_tools__launch_process_request__descriptor;
	/* Unknown fields with NUL bytes are not strings of ours. */
	CHECK_EQ(pb_find_nul_string(d, (const uint8_t *)"\x72\x02\0\0", 4, f, sizeof(f)), 0);
	/* Varints, fixed32/64 are skipped. */
	CHECK_EQ(pb_find_nul_string(d, (const uint8_t *)"\x18\x01\x21\0\0\0\0\0\0\0\0\x2d\0\0\0\0", 16, f, sizeof(f)),
		 0);
	/* A length past the end, a varint that never ends, a group. */
	CHECK_EQ(pb_find_nul_string(d, (const uint8_t *)"\x0a\x09sh", 4, f, sizeof(f)), -EBADMSG);
	CHECK_EQ(pb_find_nul_string(d, (const uint8_t *)"\x18\xff\xff", 3, f, sizeof(f)), -EBADMSG);
	CHECK_EQ(pb_find_nul_string(d, (const uint8_t *)"\x0b", 1, f, sizeof(f)), -EBADMSG);
	CHECK_EQ(pb_find_nul_string(d, (const uint8_t *)"", 0, f, sizeof(f)), 0);
	CHECK_EQ(pb_find_nul_string(d, (const uint8_t *)"\x0a\x01\0", 3, f, sizeof(f)), 1);
	CHECK_STR(f, "argv");
}
