/* A streaming call of maitctl run to its end: the loop, the status, the
 * error printed as maitctl_call() prints it. */
#include <stdio.h>
#include <string.h>

#include "files.h"
#include "rpc/status.h"

static void on_message(struct rpc_stream_call *sc, const uint8_t *data, size_t len, void *userdata)
{
	struct maitctl_stream *s = userdata;

	/* After a local failure the call is being cancelled: no more. */
	if (!s->failed)
		(void)s->ops->on_message(s, data, len, s->userdata);
}

static void on_writable(struct rpc_stream_call *sc, void *userdata)
{
	struct maitctl_stream *s = userdata;

	if (!s->failed && s->ops->on_writable)
		s->ops->on_writable(s, s->userdata);
}

static void on_done(int code, const char *message, void *userdata)
{
	struct maitctl_stream *s = userdata;

	s->call = NULL;
	if (!s->failed) {
		s->code = code;
		snprintf(s->message, sizeof(s->message), "%s", message ? message : "");
	}
	loop_exit(s->loop, 0);
}

static const struct rpc_stream_call_ops call_ops = { on_message, on_writable, on_done };

int maitctl_stream_start(struct maitctl_stream *s, struct maitctl *ctl, const char *method, uint64_t timeout_usec,
			 const struct maitctl_stream_ops *ops, void *userdata)
{
	char addrbuf[128], msg[256];
	int r;

	*s = (struct maitctl_stream){ .ctl = ctl, .ops = ops, .userdata = userdata, .code = -1 };
	r = loop_new(&s->loop);
	if (r < 0) {
		maitctl_print_error(ctl, RPC_INTERNAL, strerror(-r));
		return MAITCTL_EXIT_RPC_ERROR;
	}
	r = rpc_stream_call_start(s->loop, &ctl->addr, method, timeout_usec, &call_ops, s, &s->call);
	if (r < 0) {
		snprintf(msg, sizeof(msg), "cannot connect to %s: %s",
			 addr_format(&ctl->addr, addrbuf, sizeof(addrbuf)), strerror(-r));
		maitctl_print_error(ctl, RPC_UNAVAILABLE, msg);
		loop_free(s->loop);
		s->loop = NULL;
		return MAITCTL_EXIT_RPC_ERROR;
	}
	return 0;
}

int maitctl_stream_send(struct maitctl_stream *s, const ProtobufCMessage *msg)
{
	if (s->failed || !s->call)
		return -EPIPE;
	int r = rpc_stream_call_send(s->call, msg);
	if (r < 0 && r != -EPIPE)
		return maitctl_stream_fail(s, RPC_INTERNAL, "sending: %s", strerror(-r));
	return r;
}

int maitctl_stream_close_send(struct maitctl_stream *s)
{
	if (s->failed || !s->call)
		return -EPIPE;
	return rpc_stream_call_close_send(s->call);
}

int maitctl_stream_fail(struct maitctl_stream *s, int code, const char *fmt, ...)
{
	va_list ap;

	if (s->failed)
		return -1;
	s->failed = true;
	s->code = code;
	va_start(ap, fmt);
	vsnprintf(s->message, sizeof(s->message), fmt, ap);
	va_end(ap);
	if (s->call)
		rpc_stream_call_cancel(s->call);
	return -1;
}

int maitctl_stream_finish(struct maitctl_stream *s)
{
	char addrbuf[128], msg[700];
	int r = 0;

	if (s->call)
		r = loop_run(s->loop);
	loop_free(s->loop);
	s->loop = NULL;
	if (r < 0 || s->code < 0) {
		maitctl_print_error(s->ctl, RPC_INTERNAL, "event loop failed");
		return RPC_INTERNAL;
	}
	if (s->code == RPC_OK)
		return RPC_OK;
	if (s->progress)
		maitctl_progress_clear(s->progress);
	if (!s->failed && strncmp(s->message, "connection closed", 17) == 0) {
		snprintf(msg, sizeof(msg), "%s: %s", addr_format(&s->ctl->addr, addrbuf, sizeof(addrbuf)), s->message);
		maitctl_print_error(s->ctl, s->code, msg);
	} else
		maitctl_print_error(s->ctl, s->code, s->message);
	return s->code;
}
