#include "channel.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "base/time-util.h"
#include "net/connector.h"
#include "rpc/conn.h"

struct rpc_channel {
	struct loop *loop;
	struct addr addr;
	struct connector *connector;
	struct rpc_client_session *session;
	struct rpc_conn *conn;
	/* Reports a failed connect from the loop, never from inside the
	 * caller's own call. */
	struct loop_defer *report;
	rpc_channel_closed_fn on_closed;
	void *userdata;
	/* rpc_channel_free() was called from inside the loop: the connection
	 * may be in the middle of its own callback, so the memory goes at the
	 * end of the round (report). */
	bool freed;
	int code;
	char message[300];
};

static void channel_release(struct rpc_channel *ch)
{
	connector_free(ch->connector);
	rpc_conn_free(ch->conn);
	rpc_client_session_free(ch->session);
	loop_defer_free(ch->report);
	free(ch);
}

void rpc_channel_free(struct rpc_channel *ch)
{
	if (!ch || ch->freed)
		return;
	bool inside = ch->report && loop_is_dispatching(ch->loop);
	ch->freed = true;
	/* The calls hear of it while the channel still exists. */
	if (ch->session)
		rpc_client_session_abort(ch->session, RPC_UNAVAILABLE, "channel closed");
	if (!inside) {
		channel_release(ch);
		return;
	}
	connector_free(TAKE_PTR(ch->connector));
	loop_defer_schedule(ch->report);
}

static void channel_report(struct rpc_channel *ch)
{
	rpc_channel_closed_fn fn = ch->on_closed;
	void *ud = ch->userdata;
	char message[sizeof(ch->message)];
	int code = ch->code;

	rpc_client_session_abort(ch->session, code, ch->message);
	memcpy(message, ch->message, sizeof(message));
	channel_release(ch);
	fn(code, message, ud);
}

static void channel_on_report(struct loop_defer *d, void *userdata)
{
	struct rpc_channel *ch = userdata;
	if (ch->freed)
		channel_release(ch);
	else
		channel_report(ch);
}

static void channel_notify(void *userdata)
{
	struct rpc_channel *ch = userdata;
	if (ch->conn)
		rpc_conn_kick(ch->conn);
}

static void channel_on_close(int reason, void *userdata)
{
	struct rpc_channel *ch = userdata;

	ch->conn = NULL;
	if (ch->freed)
		return; /* released at the end of the round */
	ch->code = RPC_UNAVAILABLE;
	rpc_conn_closed_message(reason, ch->message, sizeof(ch->message));
	channel_report(ch);
}

static void channel_on_connected(int fd, void *userdata)
{
	struct rpc_channel *ch = userdata;
	char addrbuf[128];
	int r;

	ch->connector = NULL;
	if (ch->freed) { /* not reached: freeing frees the connector */
		if (fd >= 0)
			close(fd);
		return;
	}
	r = rpc_conn_new_client(ch->loop, fd, ch->session, channel_on_close, ch, &ch->conn);
	if (r >= 0) {
		rpc_conn_kick(ch->conn); /* the calls made while connecting */
		return;
	}
	if (r == -ETIMEDOUT) {
		ch->code = RPC_DEADLINE_EXCEEDED;
		snprintf(ch->message, sizeof(ch->message), "timed out connecting to %s",
			 addr_format(&ch->addr, addrbuf, sizeof(addrbuf)));
	} else {
		/* Not a timeout: no deadline to compare with. */
		ch->code = RPC_UNAVAILABLE;
		(void)rpc_conn_connect_failed_message(&ch->addr, r, USEC_INFINITY, ch->message, sizeof(ch->message));
	}
	loop_defer_schedule(ch->report);
}

int rpc_channel_open(struct loop *l, const struct addr *a, uint64_t connect_timeout_usec,
		     rpc_channel_closed_fn on_closed, void *userdata, struct rpc_channel **ret)
{
	_cleanup_(rpc_channel_freep) struct rpc_channel *ch = calloc(1, sizeof(*ch));
	int r;

	if (!ch)
		return -ENOMEM;
	*ch = (struct rpc_channel){ .loop = l, .addr = *a, .on_closed = on_closed, .userdata = userdata };
	r = loop_add_defer(l, channel_on_report, ch, &ch->report);
	if (r < 0)
		return r;
	r = rpc_client_session_new(&ch->session);
	if (r < 0)
		return r;
	rpc_client_session_set_notify(ch->session, channel_notify, ch);
	r = connector_start(l, a, connect_timeout_usec ? now_usec() + connect_timeout_usec : USEC_INFINITY,
			    channel_on_connected, ch, &ch->connector);
	if (r < 0)
		return r;
	*ret = TAKE_PTR(ch);
	return 0;
}

struct rpc_client_session *rpc_channel_session(struct rpc_channel *ch)
{
	return ch->session;
}

bool rpc_channel_connected(const struct rpc_channel *ch)
{
	return ch->conn != NULL;
}
