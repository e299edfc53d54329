/* Allocation-failure sweep over the standard services (src/grpc-std)
 * through the server core: health Check, List, a Watch ended by maitred's
 * stop, and a reflection stream of three requests. For every N the N-th
 * allocation fails: every call still ends with a status (or the
 * connection is dropped), the Watch is forgotten either way, nothing
 * leaks (LeakSanitizer in the sanitizer build), and the next call is
 * served. */
#include "agent/agent.h"
#include "failmalloc.h"
#include "grpc-std/grpc-std.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "h2-peer.h"
#include "test.h"

static uint8_t check_body[32], list_body[16], refl[3][64];
static size_t check_len, list_len, refl_len[3];

static size_t pack_reflection(uint8_t *out, const char *list, const char *file, const char *symbol)
{
	Grpc__Reflection__V1__ServerReflectionRequest req = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;

	if (list) {
		req.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
		req.list_services = (char *)list;
	} else if (file) {
		req.message_request_case =
			GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
		req.file_by_filename = (char *)file;
	} else {
		req.message_request_case =
			GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
		req.file_containing_symbol = (char *)symbol;
	}
	return grpc__reflection__v1__server_reflection_request__pack(&req, out);
}

static void bodies(void)
{
	Grpc__Health__V1__HealthCheckRequest check = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
	uint8_t msg[16];

	check_len = h2_grpc_frame(check_body, msg, grpc__health__v1__health_check_request__pack(&check, msg), false);
	list_len = h2_grpc_frame(list_body, NULL, 0, false);
	refl_len[0] = pack_reflection(refl[0], "*", NULL, NULL);
	refl_len[1] = pack_reflection(refl[1], NULL, "grpc/health/v1/health.proto", NULL);
	refl_len[2] = pack_reflection(refl[2], NULL, NULL, "nope.Nope");
}

static bool session_dead(struct rpc_server_session *s, int fed)
{
	const uint8_t *d;
	return fed < 0 || rpc_server_session_pull(s, &d) < 0 || !rpc_server_session_alive(s);
}

static bool answered(struct h2_result *r)
{
	return r->closed && (r->grpc_status >= 0 || r->rst_code != 0);
}

enum { CHECK_CALL, LIST_CALL, WATCH_CALL, REFLECT_CALL, N_CALLS };

static void scenario(unsigned long n, unsigned long *ret_count)
{
	struct agent a = { 0 };
	struct grpcstd g;
	struct rpc_server_session *s = NULL;
	struct h2_peer *p = h2_peer_new();
	int32_t ids[N_CALLS];
	int r;

	CHECK_EQ(grpcstd_register(&a, &g), 0);
	failmalloc_arm(n);
	r = rpc_server_session_new(a.services, NULL, NULL, NULL, &s);
	if (r < 0) {
		*ret_count = failmalloc_disarm();
		CHECK_EQ(r, -ENOMEM);
	} else {
		ids[CHECK_CALL] = h2_peer_request(p, "/grpc.health.v1.Health/Check", "application/grpc", check_body,
						  check_len, NULL, true);
		ids[LIST_CALL] = h2_peer_request(p, "/grpc.health.v1.Health/List", "application/grpc", list_body,
						 list_len, NULL, true);
		ids[WATCH_CALL] = h2_peer_request(p, "/grpc.health.v1.Health/Watch", "application/grpc", check_body,
						  check_len, NULL, true);
		ids[REFLECT_CALL] = h2_peer_start(p, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", NULL);
		for (int i = 0; i < 3; i++)
			h2_peer_send_msg(p, ids[REFLECT_CALL], refl[i], refl_len[i], false);
		h2_peer_close_send(p, ids[REFLECT_CALL]);
		int fed = h2_pump(p, s);
		/* maitred's orderly end: the Watch gets NOT_SERVING and ends. */
		grpcstd_health_stopping(&g.health);
		if (fed >= 0)
			fed = h2_pump(p, s);
		bool dead = session_dead(s, fed);
		rpc_server_session_shutdown(s);
		(void)h2_pump(p, s);
		*ret_count = failmalloc_disarm();
		CHECK(g.health.watches == NULL);
		if (!dead) {
			for (int i = 0; i < N_CALLS; i++)
				CHECK(answered(h2_peer_result(p, ids[i])));
			CHECK_EQ(rpc_server_session_pending_calls(s), 0);
			if (!failmalloc_injected()) {
				CHECK_EQ(h2_peer_result(p, ids[CHECK_CALL])->grpc_status, 0);
				CHECK_EQ(h2_peer_result(p, ids[LIST_CALL])->grpc_status, 0);
				CHECK_EQ(h2_peer_result(p, ids[WATCH_CALL])->grpc_status, RPC_UNAVAILABLE);
				CHECK_EQ(h2_result_messages(h2_peer_result(p, ids[WATCH_CALL])), 2);
				CHECK_EQ(h2_peer_result(p, ids[REFLECT_CALL])->grpc_status, 0);
				CHECK_EQ(h2_result_messages(h2_peer_result(p, ids[REFLECT_CALL])), 3);
			}
		}
		rpc_server_session_free(TAKE_PTR(s));
	}
	grpcstd_free(&g);
	h2_peer_free(p);

	/* The next call is served. */
	struct agent a2 = { 0 };
	CHECK_EQ(grpcstd_register(&a2, &g), 0);
	p = h2_peer_new();
	CHECK_EQ(rpc_server_session_new(a2.services, NULL, NULL, NULL, &s), 0);
	int32_t id = h2_peer_request(p, "/grpc.health.v1.Health/Check", "application/grpc", check_body, check_len, NULL,
				     true);
	CHECK_EQ(h2_pump(p, s), 0);
	CHECK_EQ(h2_peer_result(p, id)->grpc_status, 0);
	rpc_server_session_free(s);
	grpcstd_free(&g);
	h2_peer_free(p);
}

TEST(sweep_health_and_reflection)
{
	bodies();
	unsigned long total = failmalloc_sweep(NULL, scenario, FAILMALLOC_EACH_INJECTED);
	/* The session's, the calls', the decoded requests, the Watch, the
	 * answers' arrays. */
	CHECK(total > 50);
}
