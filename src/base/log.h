/* The logger used by programs (libraries never log above debug).
 * It is printf-checked, keeps errno, and writes to stderr or /dev/kmsg. */
#pragma once

#include <stdbool.h>
#include <syslog.h>

#include "macro.h"

enum log_sink {
	LOG_SINK_STDERR,
	LOG_SINK_KMSG,
};

/* ident is the program name used as a prefix on kmsg lines. */
void log_setup(const char *ident, enum log_sink sink);
/* Opens /dev/kmsg and switches to it; falls back to stderr on failure. */
int log_open_kmsg(void);
void log_set_max_level(int level);
void log_close(void);

/* Returns -abs(err) when err is given, so callers can `return log_x(...)`. */
int log_full(int level, int err, const char *fmt, ...) _printf_(3, 4);

#define log_debug(...) log_full(LOG_DEBUG, 0, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, 0, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, 0, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, 0, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, 0, __VA_ARGS__)
#define log_error_errno(err, ...) log_full(LOG_ERR, (err), __VA_ARGS__)
#define log_warning_errno(err, ...) log_full(LOG_WARNING, (err), __VA_ARGS__)
