#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "convert.h"
#include "frame.h"
#include "ring.h"
#include "work.h"

/* Whether this worker may take another call once the current one ends;
 * never again once it has acted as a user. */
static bool reusable, acted;
static struct fsvc_ring ring;

void fsvc_work_set_ring(uint8_t *map)
{
	ring.map = map;
	fsvc_ring_reset(&ring);
}

struct fsvc_ring *fsvc_work_ring(void)
{
	return ring.map ? &ring : NULL;
}

void fsvc_work_set_reusable(bool on)
{
	reusable = on;
}

bool fsvc_work_reusable(void)
{
	return reusable && !acted;
}

static int send_end(int fd, enum fsvc_frame_kind kind, int code, const char *msg)
{
	struct fsvc_end_head h = { .reusable = reusable && !acted, .code = (uint32_t)code };

	return fsvc_send(fd, kind, &h, sizeof(h), msg, msg ? strlen(msg) : 0);
}

int fsvc_work_fail(int fd, int r, const struct files_err *err)
{
	char fallback[256];

	(void)send_end(fd, FSVC_ERROR, files_grpc_code(r), fsvc_err_message(r, err, fallback, sizeof(fallback)));
	return r;
}

int fsvc_work_fail_code(int fd, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)send_end(fd, FSVC_ERROR, code, msg);
	return -EINVAL;
}

int fsvc_work_done(int fd)
{
	return send_end(fd, FSVC_DONE, 0, NULL);
}

int fsvc_work_reply(int fd, const ProtobufCMessage *m)
{
	struct fsvc_end_head h = { .reusable = reusable && !acted };

	return fsvc_send_headed_message(fd, FSVC_REPLY, &h, sizeof(h), m);
}

int fsvc_work_begin(int fd, const char *user, struct files_user *ret_user)
{
	struct files_err err = { 0 };
	int r;

	r = files_user_resolve(user, ret_user, &err);
	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	if (!user || !user[0])
		return 0; /* root, as the worker is */
	/* For good: this worker serves no other call. */
	acted = true;
	r = files_act_as(ret_user);
	if (r < 0) {
		files_user_clear(ret_user);
		return fsvc_work_fail_code(fd, FILES_GRPC_INTERNAL, "could not act as %s: %s", user, strerror(-r));
	}
	return 0;
}

