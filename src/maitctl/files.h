/* What the valet.v1.Files subcommands (cp, stat, ls, mkdir, rm, mv)
 * share: guest paths, a streaming call run to its end, FileInfo output,
 * the progress line. */
#pragma once

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>

#include "base/sha256.h"
#include "loop/loop.h"
#include "maitctl.h"
#include "rpc/stream.h"
#include "valet/v1/files.pb-c.h"

#define FILES_SERVICE "/valet.v1.Files/"

/* ":PATH" is a guest path: PATH, else NULL. */
const char *maitctl_guest_path(const char *arg);
/* The guest path of a command that takes only guest paths: ":PATH" or
 * "PATH", absolute. Prints the usage error (prefix "maitctl CMD") and
 * returns MAITCTL_EXIT_USAGE, else 0. */
int maitctl_guest_arg(const char *cmd, const char *arg, const char **ret);

struct maitctl_progress;

/* The one guest path left after a command's options (optind on): as
 * maitctl_guest_arg(), and a usage error unless exactly one is left. */
int maitctl_one_guest_arg(const char *cmd, int argc, char **argv, const char **ret);
/* An octal mode up to 07777, for option opt of cmd: 0, or the usage
 * error printed and MAITCTL_EXIT_USAGE. */
int maitctl_parse_mode(const char *cmd, const char *opt, const char *arg, uint32_t *ret);

/* A streaming call run to its end on a loop of its own. */
struct maitctl_stream;
struct maitctl_stream_ops {
	/* One response message. < 0 after maitctl_stream_fail(). */
	int (*on_message)(struct maitctl_stream *s, const uint8_t *data, size_t len, void *userdata);
	/* The send queue has room again (after maitctl_stream_send said 1). */
	void (*on_writable)(struct maitctl_stream *s, void *userdata);
};
struct maitctl_stream {
	struct maitctl *ctl;
	struct loop *loop;
	struct rpc_stream_call *call; /* NULL once done */
	const struct maitctl_stream_ops *ops;
	void *userdata;
	int code;
	char message[512];
	bool failed;			   /* a local failure: code and message are ours */
	struct maitctl_progress *progress; /* erased before an error is printed */
};
/* Connects and starts the call; nothing is sent yet. 0, or the exit code
 * once the error is printed. */
int maitctl_stream_start(struct maitctl_stream *s, struct maitctl *ctl, const char *method, uint64_t timeout_usec,
			 const struct maitctl_stream_ops *ops, void *userdata);
/* 0, 1 (wait for on_writable), < 0 when the call is over (the status
 * says why) or failed locally. */
int maitctl_stream_send(struct maitctl_stream *s, const ProtobufCMessage *msg);
int maitctl_stream_close_send(struct maitctl_stream *s);
/* A local failure (a local file, a bad response): cancels the call; the
 * first one is what is reported. Returns -1. */
int maitctl_stream_fail(struct maitctl_stream *s, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Runs the loop until the call is over; prints the error. The gRPC code
 * (RPC_OK = 0). Frees the loop. */
int maitctl_stream_finish(struct maitctl_stream *s);

/* A local failure printed as a guest's is: the code of -errno r
 * (files_grpc_code(), the valet.v1 table) and the message. Returns
 * MAITCTL_EXIT_RPC_ERROR. */
int maitctl_local_error(const struct maitctl *ctl, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* FileInfo as ls -l and stat show it. */
const char *maitctl_type_name(int type);
void maitctl_mode_string(int type, uint32_t mode, char buf[static 11]);
/* "2026-12-07 04:05:06" (UTC) or with nanoseconds and "T...Z" for JSON. */
void maitctl_time_string(const Google__Protobuf__Timestamp *t, bool iso, char buf[static 40]);
/* One JSON object, no newline. */
void maitctl_info_json(const Valet__V1__FileInfo *i);
/* With --json: the object and a newline (mkdir, mv, stat). */
void maitctl_info_json_line(const struct maitctl *ctl, const Valet__V1__FileInfo *i);
void maitctl_hex(const uint8_t *d, size_t n, char *out);

/* The progress line of cp, on stderr when it is a terminal. */
struct maitctl_progress {
	bool on;
	bool shown;
	uint64_t total; /* 0: unknown */
	uint64_t start;
	uint64_t last;
	uint64_t files; /* trees: shown when set */
};
void maitctl_progress_init(struct maitctl_progress *p, uint64_t total);
/* At most ten times a second. */
void maitctl_progress_update(struct maitctl_progress *p, uint64_t done);
/* The final figures and a newline, when a line was shown. */
void maitctl_progress_end(struct maitctl_progress *p, uint64_t done);
/* For warnings while the line is shown: erases it. */
void maitctl_progress_clear(struct maitctl_progress *p);
