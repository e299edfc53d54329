/* maitctl exec, attach, ps, kill: the valet.v1.Process commands
 * (docs/process-cli.md). What their files share. */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "maitctl.h"
#include "process.pb-c.h"

/* The connection to maitred was lost while attached: the process goes on
 * in the guest (vsh's number for the same case). */
#define MAITCTL_EXIT_LOST 123

/* What an attached session (exec without --detach, attach) does. */
struct exec_params {
	/* Start (exec): the request; NULL for Connect (attach). */
	const Valet__V1__StartRequest *start;
	/* Connect: the target. */
	uint64_t id;
	const char *tag;
	bool from_start; /* ignore the offsets a previous maitctl printed */
	/* Local stdin is sent with SendInput (its end too). */
	bool forward_stdin;
	/* The process has a PTY: local terminal raw (when it is one), its
	 * size sent on SIGWINCH. */
	bool pty;
	/* Print the id and return once Started has come. */
	bool detach;
};

/* Runs the session to its end: the process's exit status (code, or
 * 128+signal), MAITCTL_EXIT_RPC_ERROR when it cannot start or connect,
 * MAITCTL_EXIT_LOST when the connection ends first (with how to reattach
 * on stderr). */
int exec_session_run(struct maitctl *ctl, const struct exec_params *p);

/* The offsets of each stream a maitctl on this host has written out for
 * a process, in a small file mapped shared ($XDG_RUNTIME_DIR/maitctl/),
 * so that they survive maitctl being killed: attach continues there. */
struct exec_offsets {
	uint64_t *next; /* [2]: stdout (or the PTY), stderr */
	uint64_t local[2]; /* when there is no file */
	void *map;
	char path[512];
};

/* Opens (or creates) the record of process id (pid) at addr; a record of
 * another pid, or any with reset, starts at 0. Without a usable directory
 * the offsets live in memory only. Never fails. */
void exec_offsets_open(struct exec_offsets *o, const struct addr *addr, uint64_t id, int32_t pid, bool reset);
/* The process has ended and everything is written: the record goes. */
void exec_offsets_remove(struct exec_offsets *o);
void exec_offsets_close(struct exec_offsets *o);

/* The local terminal's size (stdin's, else stdout's); 0 x 0 when neither
 * is a terminal. */
void exec_window_size(uint32_t *rows, uint32_t *cols);

/* "TERM", "SIGTERM", "term", "15": the number, or -EINVAL. */
int exec_parse_signal(const char *s, int *ret);

/* ID|TAG: an argument of digits only is an id. */
void exec_parse_target(const char *s, uint64_t *ret_id, const char **ret_tag);
/* The running process with that id or tag (List): 0 and *ret_info (free
 * with protobuf_c_message_free_unpacked on *ret_list), -ENOENT when none
 * is running, or MAITCTL_EXIT_RPC_ERROR once a failure is printed. */
int exec_find_running(struct maitctl *ctl, uint64_t id, const char *tag, Valet__V1__ListProcessesResponse **ret_list,
		      const Valet__V1__ProcessInfo **ret_info);
