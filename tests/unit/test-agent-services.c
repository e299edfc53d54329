/* The agent's service registry (agent/service.c): vm_tools.Maitred's
 * method families and another service on one server, each handler with its
 * own state; a path registered twice is refused. */
#include "agent/agent.h"
#include "common.pb-c.h"
#include "guest.pb-c.h"
#include "h2-peer.h"
#include "test.h"
#include "vmtools/vmtools.h"

static void *seen;

static void h_files(struct rpc_call *call, const ProtobufCMessage *request, void *ud)
{
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	seen = ud;
	rpc_call_reply(call, &resp.base);
}

static const struct rpc_method files_methods[] = {
	{ "/valet.v1.Files/Stat", &vm_tools__empty_message__descriptor, h_files },
};
static const struct rpc_method clash_methods[] = {
	{ "/valet.v1.Files/Read", &vm_tools__empty_message__descriptor, h_files },
	{ "/vm_tools.Maitred/Mount", &vm_tools__empty_message__descriptor, h_files },
};

static struct h2_result *call(struct rpc_server_session *s, struct h2_peer *p, const char *path)
{
	uint8_t body[8];
	size_t n = h2_grpc_frame(body, NULL, 0, false);
	int32_t id = h2_peer_request(p, path, "application/grpc", body, n, NULL, true);
	h2_pump(p, s);
	return h2_peer_result(p, id);
}

static size_t n_paths(const struct rpc_service *s)
{
	size_t n = 0;
	for (; s; s = s->next)
		n += s->n_methods;
	return n;
}

TEST(vmtools_and_another_service_share_the_server)
{
	struct agent a = { 0 };
	struct vmtools v;
	char files_state[] = "files";
	struct rpc_service files = { files_methods, ARRAY_SIZE(files_methods), files_state };
	struct rpc_service clash = { clash_methods, ARRAY_SIZE(clash_methods), files_state };
	struct rpc_server_session *s;
	struct h2_peer *p = h2_peer_new();

	CHECK_EQ(vmtools_register(&a, &v), 0);
	/* Every vm_tools.Maitred method, Shutdown included. */
	CHECK_EQ(n_paths(a.services), 19);
	CHECK_EQ(maitred_add_service(&a, &files), 0);
	CHECK_EQ(n_paths(a.services), 20);
	/* One path of it is vm_tools.Maitred's: none of it is added. */
	CHECK_EQ(maitred_add_service(&a, &clash), -EEXIST);
	CHECK_EQ(maitred_add_service(&a, &files), -EEXIST);
	CHECK_EQ(n_paths(a.services), 20);

	CHECK_EQ(rpc_server_session_new(a.services, NULL, NULL, NULL, &s), 0);
	seen = NULL;
	CHECK_EQ(call(s, p, "/valet.v1.Files/Stat")->grpc_status, 0);
	CHECK(seen == files_state);
	/* vm_tools.Maitred still answers, from its own table. */
	CHECK_EQ(call(s, p, "/vm_tools.Maitred/GetKernelVersion")->grpc_status, 0);
	CHECK_EQ(call(s, p, "/vm_tools.Maitred/StartTermina")->grpc_status, RPC_UNIMPLEMENTED);
	CHECK_EQ(call(s, p, "/valet.v1.Files/Read")->grpc_status, RPC_UNIMPLEMENTED);
	CHECK(seen == files_state);
	h2_peer_free(p);
	rpc_server_session_free(s);
	vmtools_free(&v);
}

/* Method switches (agent/switches.c): a service or one method, from
 * maitred_disable() or a config file's lines; a name that matches
 * nothing is refused with the line it is on. */
TEST(switches_disable_services_and_methods)
{
	struct agent a = { 0 };
	struct vmtools v;
	char files_state[] = "files";
	struct rpc_service files = { files_methods, ARRAY_SIZE(files_methods), files_state };
	struct maitred_config_error err;
	struct rpc_server_session *s;
	struct h2_peer *p = h2_peer_new();

	CHECK_EQ(vmtools_register(&a, &v), 0);
	CHECK_EQ(maitred_add_service(&a, &files), 0);
	/* Not prefixes, not empty, no leading slash. */
	CHECK_EQ(maitred_disable(&a, "vm_tools.Maitre"), -ENOENT);
	CHECK_EQ(maitred_disable(&a, "vm_tools.Maitred/Mount9"), -ENOENT);
	CHECK_EQ(maitred_disable(&a, "vm_tools.Maitred/"), -ENOENT);
	CHECK_EQ(maitred_disable(&a, "/vm_tools.Maitred/Mount"), -ENOENT);
	CHECK_EQ(maitred_disable(&a, ""), -ENOENT);
	CHECK_EQ(a.n_switch_names, 0);

	/* A good file: comments, blank lines, blanks around. */
	CHECK_EQ(maitred_config_parse(&a, "# the host may not run programs\n\n"
					  "disable vm_tools.Maitred/LaunchProcess\n"
					  "\t disable   valet.v1.Files   # all of it\r\n",
				      &err),
		 0);
	CHECK_EQ(err.line, 0);
	CHECK_EQ(a.n_switch_names, 2);
	/* A bad line: its number and what is wrong; the lines before it apply. */
	CHECK_EQ(maitred_config_parse(&a, "disable vm_tools.Maitred/Mount\n# c\n\ndisable\n", &err), -EINVAL);
	CHECK_EQ(err.line, 4);
	CHECK_STR(err.message, "expected 'disable NAME'");
	CHECK_EQ(maitred_config_parse(&a, "disable a b\n", &err), -EINVAL);
	CHECK_EQ(err.line, 1);
	CHECK_EQ(maitred_config_parse(&a, "enable vm_tools.Maitred/Mount", &err), -EINVAL);
	CHECK_EQ(err.line, 1);
	CHECK_EQ(maitred_config_parse(&a, "\n\ndisable vm_tools.Maitred/Mont\n", &err), -ENOENT);
	CHECK_EQ(err.line, 3);
	CHECK_STR(err.message, "'vm_tools.Maitred/Mont' is no service or method maitred serves");
	CHECK_EQ(maitred_config_load(&a, "/nonexistent/maitred.conf", &err), -ENOENT);
	CHECK_EQ(err.line, 0);

	CHECK_EQ(rpc_server_session_new(a.services, NULL, NULL, NULL, &s), 0);
	struct h2_result *r = call(s, p, "/vm_tools.Maitred/LaunchProcess");
	CHECK_EQ(r->grpc_status, RPC_PERMISSION_DENIED);
	CHECK_STR(r->grpc_message, "vm_tools.Maitred/LaunchProcess is disabled on this guest");
	r = call(s, p, "/vm_tools.Maitred/Mount");
	CHECK_EQ(r->grpc_status, RPC_PERMISSION_DENIED);
	r = call(s, p, "/valet.v1.Files/Stat");
	CHECK_EQ(r->grpc_status, RPC_PERMISSION_DENIED);
	CHECK_STR(r->grpc_message, "valet.v1.Files is disabled on this guest (valet.v1.Files/Stat called)");
	/* The rest is served; an unknown method is still unknown. */
	CHECK_EQ(call(s, p, "/vm_tools.Maitred/GetKernelVersion")->grpc_status, 0);
	CHECK_EQ(call(s, p, "/vm_tools.Maitred/StartTermina")->grpc_status, RPC_UNIMPLEMENTED);
	h2_peer_free(p);
	rpc_server_session_free(s);
	maitred_agent_free(&a);
	vmtools_free(&v);
}
