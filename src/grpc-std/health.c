/* grpc.health.v1.Health: Check, Watch and List, answered from the method
 * tables served (served.h). "" (the server as a whole) and every service
 * served are SERVING until maitred's orderly end begins, NOT_SERVING from
 * then on; any other name, a service switched off entirely included, is
 * not known: Check answers NOT_FOUND, Watch SERVICE_UNKNOWN (gRPC's health
 * protocol). What is served never changes while maitred runs, so a Watch
 * sends one status at once and the next only at the end, NOT_SERVING,
 * before it is finished (UNAVAILABLE) for the stop to go on. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/list.h"
#include "grpc-std.h"
#include "grpc/health/v1/health.pb-c.h"
#include "served.h"

struct health_watch {
	struct rpc_call *call;
	struct health_watch *prev, *next;
};

typedef Grpc__Health__V1__HealthCheckResponse__ServingStatus serving_status;

static bool known(const struct grpcstd_health *h, const char *name)
{
	return name[0] == '\0' || grpcstd_served(*h->services, name, strlen(name));
}

static serving_status status_of(const struct grpcstd_health *h)
{
	return h->stopping ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
			   : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
}

void grpcstd_health_check(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
	struct grpcstd_health *h = userdata;
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	if (!known(h, req->service))
		return rpc_call_fail(call, RPC_NOT_FOUND, "no service named '%.200s' is served here", req->service);
	resp.status = status_of(h);
	rpc_call_reply(call, &resp.base);
}

static int send_status(struct rpc_call *call, serving_status status)
{
	Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;

	resp.status = status;
	int r = rpc_call_send(call, &resp.base);
	return r < 0 ? r : 0;
}

static void watch_free(struct grpcstd_health *h, struct health_watch *w)
{
	LIST_REMOVE(h->watches, w);
	free(w);
}

static void on_watch_cancel(struct rpc_call *call, void *userdata)
{
	struct grpcstd_health *h = rpc_call_service_userdata(call);
	watch_free(h, userdata);
}

static void finish_stopping(struct rpc_call *call)
{
	(void)send_status(call, GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING);
	rpc_call_finish(call, RPC_UNAVAILABLE, "maitred is stopping");
}

void grpcstd_health_watch(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const Grpc__Health__V1__HealthCheckRequest *req = (const void *)request;
	struct grpcstd_health *h = userdata;

	if (h->stopping)
		return finish_stopping(call);
	struct health_watch *w = calloc(1, sizeof(*w));
	if (!w)
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	int r = send_status(call, known(h, req->service)
					  ? status_of(h)
					  : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN);
	if (r < 0) {
		free(w);
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
	}
	w->call = call;
	LIST_PREPEND(h->watches, w);
	rpc_call_set_cancel(call, on_watch_cancel, w);
}

struct list_state {
	Grpc__Health__V1__HealthListResponse__StatusesEntry *entries;
	Grpc__Health__V1__HealthListResponse__StatusesEntry **ptrs;
	char *names; /* each entry's key, NUL-terminated, one after the other */
	size_t n, used;
	Grpc__Health__V1__HealthCheckResponse status;
};

static int count_one(const char *name, size_t len, void *userdata)
{
	size_t *n = userdata;
	n[0]++;
	n[1] += len + 1;
	return 0;
}

static void add_entry(struct list_state *st, const char *name, size_t len)
{
	Grpc__Health__V1__HealthListResponse__StatusesEntry *e = &st->entries[st->n];

	grpc__health__v1__health_list_response__statuses_entry__init(e);
	e->key = memcpy(st->names + st->used, name, len);
	e->key[len] = '\0';
	st->used += len + 1;
	e->value = &st->status;
	st->ptrs[st->n++] = e;
}

static int add_one(const char *name, size_t len, void *userdata)
{
	add_entry(userdata, name, len);
	return 0;
}

void grpcstd_health_list(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	struct grpcstd_health *h = userdata;
	Grpc__Health__V1__HealthListResponse resp = GRPC__HEALTH__V1__HEALTH_LIST_RESPONSE__INIT;
	size_t count[2] = { 1, 1 }; /* "" first */
	struct list_state st = { 0 };

	(void)grpcstd_for_each_served(*h->services, count_one, count);
	st.entries = calloc(count[0], sizeof(*st.entries));
	st.ptrs = calloc(count[0], sizeof(*st.ptrs));
	st.names = malloc(count[1]);
	if (!st.entries || !st.ptrs || !st.names) {
		rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "out of memory");
		goto out;
	}
	grpc__health__v1__health_check_response__init(&st.status);
	st.status.status = status_of(h);
	add_entry(&st, "", 0);
	(void)grpcstd_for_each_served(*h->services, add_one, &st);
	resp.statuses = st.ptrs;
	resp.n_statuses = st.n;
	rpc_call_reply(call, &resp.base);
out:
	free(st.entries);
	free(st.ptrs);
	free(st.names);
}

void grpcstd_health_stopping(void *userdata)
{
	struct grpcstd_health *h = userdata;

	h->stopping = true;
	while (h->watches) {
		struct health_watch *w = h->watches;
		struct rpc_call *call = w->call;
		/* Forgotten first: finishing frees the call. */
		rpc_call_set_cancel(call, NULL, NULL);
		watch_free(h, w);
		finish_stopping(call);
	}
}

void grpcstd_health_free(struct grpcstd_health *h)
{
	/* The calls still open are the server's to cancel (it is freed
	 * after this): forgotten here, without a cancel callback left. */
	while (h->watches) {
		rpc_call_set_cancel(h->watches->call, NULL, NULL);
		watch_free(h, h->watches);
	}
}
