#include "stream.h"

#include <stdio.h>

#include "base/time-util.h"
#include "net/connector.h"
#include "rpc/client-session.h"
#include "rpc/conn.h"

struct rpc_stream_call {
	struct loop *loop;
	struct addr addr;
	uint64_t deadline;
	struct connector *connector;
	struct rpc_client_session *session;
	struct rpc_conn *conn;
	/* The session's call, until its status is in. */
	struct rpc_client_call *call;
	/* Runs on_done from the loop when the call ends before connecting. */
	struct loop_defer *finish;
	const struct rpc_stream_call_ops *ops;
	void *userdata;
	bool answered;
	int code;
	char message[512];
};

static void sc_free(struct rpc_stream_call *sc)
{
	if (!sc)
		return;
	connector_free(sc->connector);
	rpc_conn_free(sc->conn);
	rpc_client_session_free(sc->session);
	loop_defer_free(sc->finish);
	free(sc);
}
DEFINE_FREEP(struct rpc_stream_call, sc_free)

static void sc_message(struct rpc_client_call *c, const uint8_t *data, size_t len, void *userdata)
{
	struct rpc_stream_call *sc = userdata;
	sc->ops->on_message(sc, data, len, sc->userdata);
}

static void sc_writable(struct rpc_client_call *c, void *userdata)
{
	struct rpc_stream_call *sc = userdata;
	if (sc->ops->on_writable)
		sc->ops->on_writable(sc, sc->userdata);
}

/* The status is in: the connection ends (GOAWAY), and the caller hears of
 * it once it is gone, so nothing of the call is left when it does. */
static void sc_done(struct rpc_client_call *c, int code, const char *message, void *userdata)
{
	struct rpc_stream_call *sc = userdata;

	sc->call = NULL;
	if (sc->answered)
		return;
	sc->answered = true;
	sc->code = code;
	snprintf(sc->message, sizeof(sc->message), "%s", message ? message : "");
	rpc_client_session_shutdown(sc->session);
	if (sc->conn)
		rpc_conn_kick(sc->conn);
	else
		loop_defer_schedule(sc->finish); /* never connected: no close to wait for */
}

static const struct rpc_client_stream_ops session_ops = { sc_message, sc_writable, sc_done };

static void sc_report(struct rpc_stream_call *sc)
{
	sc->ops->on_done(sc->code, sc->message, sc->userdata);
	sc_free(sc);
}

static void sc_on_finish(struct loop_defer *d, void *userdata)
{
	sc_report(userdata);
}

static void sc_on_close(int reason, void *userdata)
{
	struct rpc_stream_call *sc = userdata;

	sc->conn = NULL;
	if (!sc->answered)
		rpc_conn_closed_abort(sc->session, reason);
	sc_report(sc);
}

static void sc_on_connected(int fd, void *userdata)
{
	struct rpc_stream_call *sc = userdata;
	char msg[300];
	int r;

	sc->connector = NULL;
	r = rpc_conn_new_client(sc->loop, fd, sc->session, sc_on_close, sc, &sc->conn);
	if (r >= 0)
		return;
	(void)rpc_conn_connect_failed_message(&sc->addr, r, sc->deadline, msg, sizeof(msg));
	rpc_client_session_abort(sc->session, r == -ETIMEDOUT ? RPC_DEADLINE_EXCEEDED : RPC_UNAVAILABLE, msg);
	loop_defer_cancel(sc->finish);
	sc_report(sc);
}

int rpc_stream_call_start(struct loop *l, const struct addr *a, const char *path, uint64_t timeout_usec,
			  const struct rpc_stream_call_ops *ops, void *userdata, struct rpc_stream_call **ret)
{
	_cleanup_(sc_freep) struct rpc_stream_call *sc = calloc(1, sizeof(*sc));
	int r;

	if (!sc)
		return -ENOMEM;
	*sc = (struct rpc_stream_call){ .loop = l,
					.addr = *a,
					.deadline = timeout_usec ? now_usec() + timeout_usec : USEC_INFINITY,
					.ops = ops,
					.userdata = userdata };
	r = loop_add_defer(l, sc_on_finish, sc, &sc->finish);
	if (r < 0)
		return r;
	r = rpc_client_session_new(&sc->session);
	if (r < 0)
		return r;
	r = rpc_client_session_start(sc->session, path, timeout_usec, &session_ops, sc, &sc->call);
	if (r < 0)
		return r;
	/* The call's deadline covers connecting too. */
	r = connector_start(l, a, sc->deadline, sc_on_connected, sc, &sc->connector);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(sc); /* the loop's now, until on_done */
	return 0;
}

int rpc_stream_call_send(struct rpc_stream_call *sc, const ProtobufCMessage *msg)
{
	if (!sc->call)
		return -EPIPE;
	int r = rpc_client_call_send(sc->call, msg);
	if (r >= 0 && sc->conn)
		rpc_conn_kick(sc->conn);
	return r;
}

int rpc_stream_call_close_send(struct rpc_stream_call *sc)
{
	if (!sc->call)
		return -EPIPE;
	int r = rpc_client_call_close_send(sc->call);
	if (r >= 0 && sc->conn)
		rpc_conn_kick(sc->conn);
	return r;
}

void rpc_stream_call_cancel(struct rpc_stream_call *sc)
{
	if (sc->call)
		rpc_client_call_cancel(sc->call);
}
