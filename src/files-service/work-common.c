#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>

#include "frame.h"
#include "work.h"

static int send_error(int fd, int code, const char *msg)
{
	struct fsvc_error_head h = { .code = (uint32_t)code };

	return fsvc_send(fd, FSVC_ERROR, &h, sizeof(h), msg, strlen(msg));
}

int fsvc_work_fail(int fd, int r, const struct files_err *err)
{
	char fallback[256];
	const char *msg = err && err->msg[0] ? err->msg : NULL;

	if (!msg) {
		snprintf(fallback, sizeof(fallback), "%s", strerror(r < 0 ? -r : r));
		msg = fallback;
	}
	(void)send_error(fd, files_grpc_code(r), msg);
	return r;
}

int fsvc_work_fail_code(int fd, int code, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)send_error(fd, code, msg);
	return -EINVAL;
}

int fsvc_work_done(int fd)
{
	return fsvc_send(fd, FSVC_DONE, NULL, 0, NULL, 0);
}

int fsvc_work_begin(int fd, const char *user, struct files_user *ret_user)
{
	struct files_err err = { 0 };
	int r;

	/* A worker outliving maitred would be nobody's: its socket's end is
	 * what it waits on, but a stuck disk is not. */
	(void)prctl(PR_SET_PDEATHSIG, SIGKILL);
	r = files_user_resolve(user, ret_user, &err);
	if (r < 0)
		return fsvc_work_fail(fd, r, &err);
	/* Root acting as root: nothing to change. */
	if (ret_user->uid == 0 && (!user || !user[0]))
		return 0;
	r = files_act_as(ret_user);
	if (r < 0) {
		files_user_clear(ret_user);
		return fsvc_work_fail_code(fd, FILES_GRPC_INTERNAL, "could not act as %s: %s", user, strerror(-r));
	}
	return 0;
}
