#include "unary.h"

#include <stdio.h>

#include "base/time-util.h"
#include "net/connector.h"
#include "rpc/client-session.h"
#include "rpc/conn.h"

struct unary {
	struct loop *loop;
	struct addr addr;
	uint64_t deadline;
	struct connector *connector;
	struct rpc_client_session *session;
	struct rpc_conn *conn;
	/* At the deadline: ends the call whatever the peer does (a peer that
	 * stops reading would keep the connection, and the answer, for ever). */
	struct loop_timer *timer;
	const ProtobufCMessageDescriptor *response_type;
	rpc_unary_done_fn done;
	void *userdata;
	bool answered;
	int code;
	char message[512];
	ProtobufCMessage *response;
};

/* Records the answer; the caller hears of it once the connection is gone,
 * so nothing of the call is left when it does. */
static void unary_on_reply(int code, const char *message, const uint8_t *data, size_t len, void *userdata)
{
	struct unary *u = userdata;

	if (u->answered)
		return;
	u->answered = true;
	if (code == RPC_OK) {
		u->response = protobuf_c_message_unpack(u->response_type, NULL, len, data);
		if (!u->response) {
			code = RPC_INTERNAL;
			message = "could not decode the response message";
		}
	}
	u->code = code;
	snprintf(u->message, sizeof(u->message), "%s", message ? message : "");
	if (u->session)
		rpc_client_session_shutdown(u->session);
}

static void unary_free(struct unary *u)
{
	if (!u)
		return;
	connector_free(u->connector);
	loop_timer_free(u->timer);
	rpc_client_session_free(TAKE_PTR(u->session));
	if (u->response)
		protobuf_c_message_free_unpacked(u->response, NULL);
	free(u);
}
DEFINE_FREEP(struct unary, unary_free)

static void unary_on_close(int reason, void *userdata)
{
	struct unary *u = userdata;

	u->conn = NULL;
	if (!u->answered)
		rpc_conn_closed_abort(u->session, reason);
	ProtobufCMessage *resp = u->code == RPC_OK ? TAKE_PTR(u->response) : NULL;
	u->done(u->code, u->message, resp, u->userdata);
	unary_free(u);
}

/* The session's own deadline has answered DEADLINE_EXCEEDED (or will, in
 * this round) and queued its RST_STREAM and GOAWAY; the connection would
 * close once they are written, which a peer that stops reading never
 * allows. The call is over: write what the socket takes now, close, and
 * report. While connecting, the connector keeps the same deadline. */
static void unary_on_deadline(struct loop_timer *t, void *userdata)
{
	struct unary *u = userdata;

	if (!u->conn)
		return;
	if (!u->answered)
		unary_on_reply(RPC_DEADLINE_EXCEEDED, "deadline exceeded", NULL, 0, u);
	rpc_conn_flush_and_free(TAKE_PTR(u->conn));
	ProtobufCMessage *resp = u->code == RPC_OK ? TAKE_PTR(u->response) : NULL;
	u->done(u->code, u->message, resp, u->userdata);
	unary_free(u);
}

static void unary_on_connected(int fd, void *userdata)
{
	struct unary *u = userdata;
	char msg[300];
	int r;

	u->connector = NULL;
	r = rpc_conn_new_client(u->loop, fd, u->session, unary_on_close, u, &u->conn);
	if (r >= 0)
		return;
	bool late = rpc_conn_connect_failed_message(&u->addr, r, u->deadline, msg, sizeof(msg));
	unary_on_reply(late ? RPC_DEADLINE_EXCEEDED : RPC_UNAVAILABLE, msg, NULL, 0, u);
	u->done(u->code, u->message, NULL, u->userdata);
	unary_free(u);
}

int rpc_unary_call(struct loop *l, const struct addr *a, const char *path, const ProtobufCMessage *request,
		   const ProtobufCMessageDescriptor *response_type, uint64_t timeout_usec, rpc_unary_done_fn done,
		   void *userdata)
{
	_cleanup_(unary_freep) struct unary *u = calloc(1, sizeof(*u));
	int r;

	if (!u)
		return -ENOMEM;
	*u = (struct unary){ .loop = l,
			     .addr = *a,
			     .deadline = timeout_usec ? now_usec() + timeout_usec : USEC_INFINITY,
			     .response_type = response_type,
			     .done = done,
			     .userdata = userdata };
	r = rpc_client_session_new(&u->session);
	if (r < 0)
		return r;
	r = rpc_client_session_call(u->session, path, request, timeout_usec, unary_on_reply, u);
	if (r < 0)
		return r;
	r = loop_add_timer(l, u->deadline, unary_on_deadline, u, &u->timer);
	if (r < 0)
		return r;
	/* The call's deadline covers connecting too. */
	r = connector_start(l, a, u->deadline, unary_on_connected, u, &u->connector);
	if (r < 0)
		return r;
	TAKE_PTR(u); /* the loop's now, until done */
	return 0;
}
