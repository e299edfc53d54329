#include "log.h"

#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/uio.h>

static const char *log_ident = "valet";
static enum log_sink log_sink = LOG_SINK_STDERR;
static int log_kmsg_fd = -1;
static int log_max_level = LOG_INFO;

void log_setup(const char *ident, enum log_sink sink)
{
	log_ident = ident;
	log_sink = sink;
}

int log_open_kmsg(void)
{
	if (log_kmsg_fd < 0) {
		log_kmsg_fd = open("/dev/kmsg", O_WRONLY | O_CLOEXEC | O_NOCTTY);
		if (log_kmsg_fd < 0)
			return negative_errno();
	}
	log_sink = LOG_SINK_KMSG;
	return 0;
}

void log_set_max_level(int level)
{
	log_max_level = level;
}

void log_close(void)
{
	log_kmsg_fd = safe_close(log_kmsg_fd);
	log_sink = LOG_SINK_STDERR;
}

static void log_write_stderr(int level, const char *msg)
{
	static const char *const names[] = {
		[LOG_EMERG] = "emerg",	   [LOG_ALERT] = "alert",   [LOG_CRIT] = "crit", [LOG_ERR] = "error",
		[LOG_WARNING] = "warning", [LOG_NOTICE] = "notice", [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
	};
	char line[1200];
	int n = snprintf(line, sizeof(line), "%s: %s: %s\n", log_ident, names[level & 7], msg);
	/* One write per line: lines from several processes do not mix. */
	(void)!write(STDERR_FILENO, line, (size_t)MIN(n, (int)sizeof(line) - 1));
}

static int log_write_kmsg(int level, const char *msg)
{
	char prefix[64];
	int n = snprintf(prefix, sizeof(prefix), "<%d>%s: ", level & 7, log_ident);
	struct iovec iov[] = {
		{ prefix, (size_t)n },
		{ (void *)msg, strlen(msg) },
		{ (void *)"\n", 1 },
	};
	return writev(log_kmsg_fd, iov, 3) < 0 ? -1 : 0;
}

int log_full(int level, int err, const char *fmt, ...)
{
	int saved = errno;
	if (err < 0)
		err = -err;
	if ((level & 7) <= log_max_level) {
		char msg[1024];
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		if (err && n >= 0 && (size_t)n < sizeof(msg))
			snprintf(msg + n, sizeof(msg) - (size_t)n, ": %s", strerror(err));
		if (log_sink != LOG_SINK_KMSG || log_write_kmsg(level, msg) < 0)
			log_write_stderr(level, msg);
	}
	errno = saved;
	return -err;
}
