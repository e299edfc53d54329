/* Several services on one server session (the agent registers one method
 * table per service or handler family): a path is found in whichever table
 * lists it, and its handler gets that table's userdata. */
#include "common.pb-c.h"
#include "h2-peer.h"
#include "rpc/server-session.h"
#include "test.h"

static const char *seen;

static void h_record(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	seen = ud;
	/* The call's own accessor agrees with what the handler was given. */
	CHECK(rpc_call_service_userdata(call) == ud);
	rpc_call_reply(call, &resp.base);
}

static const struct rpc_method files_methods[] = {
	{ "/valet.v1.Files/Stat", &vm_tools__empty_message__descriptor, h_record },
	{ "/valet.v1.Files/Read", &vm_tools__empty_message__descriptor, h_record },
};
static const struct rpc_method process_methods[] = {
	{ "/valet.v1.Process/Start", &vm_tools__empty_message__descriptor, h_record },
};
static const struct rpc_method maitred_methods[] = {
	{ "/vm_tools.Maitred/Mount", &vm_tools__empty_message__descriptor, h_record },
};
static char files_state[] = "files", process_state[] = "process", maitred_state[] = "maitred";
static const struct rpc_service files = { files_methods, 2, files_state, NULL };
static const struct rpc_service process = { process_methods, 1, process_state, &files };
static const struct rpc_service services = { maitred_methods, 1, maitred_state, &process };

static struct h2_result *call(struct rpc_server_session *s, struct h2_peer *p, const char *path)
{
	uint8_t body[8];
	size_t n = h2_grpc_frame(body, NULL, 0, false);
	int32_t id = h2_peer_request(p, path, "application/grpc", body, n, NULL, true);
	h2_pump(p, s);
	return h2_peer_result(p, id);
}

TEST(each_method_reaches_its_own_service)
{
	struct rpc_server_session *s;
	struct h2_peer *p = h2_peer_new();
	static const struct {
		const char *path, *state;
	} cases[] = {
		{ "/vm_tools.Maitred/Mount", maitred_state },
		{ "/valet.v1.Process/Start", process_state },
		{ "/valet.v1.Files/Read", files_state },
		{ "/valet.v1.Files/Stat", files_state },
	};

	CHECK_EQ(rpc_server_session_new(&services, NULL, NULL, NULL, &s), 0);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		seen = NULL;
		struct h2_result *r = call(s, p, cases[i].path);
		CHECK(r->closed);
		CHECK_EQ(r->grpc_status, 0);
		CHECK_STR(seen, cases[i].state);
	}
	h2_peer_free(p);
	rpc_server_session_free(s);
}

TEST(a_method_no_service_lists_is_unimplemented)
{
	struct rpc_server_session *s;
	struct h2_peer *p = h2_peer_new();

	CHECK_EQ(rpc_server_session_new(&services, NULL, NULL, NULL, &s), 0);
	seen = NULL;
	struct h2_result *r = call(s, p, "/valet.v1.Tunnel/Open");
	CHECK(r->closed);
	CHECK_EQ(r->grpc_status, RPC_UNIMPLEMENTED);
	CHECK(seen == NULL);
	/* A method of one service under another's name is not found either. */
	r = call(s, p, "/valet.v1.Files/Start");
	CHECK_EQ(r->grpc_status, RPC_UNIMPLEMENTED);
	CHECK(seen == NULL);
	h2_peer_free(p);
	rpc_server_session_free(s);
}
