/* valet.v1.Process in maitred (shared/spec valet-v1.md; docs/process.md):
 * processes started for the host that outlive the call that started them,
 * their output kept in a ring buffer per stream (ring.h) that any number
 * of calls can attach to (Start, Connect) and come back to by offset.
 *
 * Files: service.c (the method table, List, SendSignal, Resize, what is
 * remembered and for how long), request.c (a StartRequest's checks, pure),
 * proc.c (one process: starting it, reading its output as far as the attached calls allow,
 * its input, its end), attach.c (the calls attached to a process: each
 * sends from its own cursor as its send queue allows). A process tells
 * the service of new output and of its end through service->changed, so
 * that no two files call each other. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "agent/agent.h"
#include "ring.h"

/* How long output held open by what the process left behind (`sleep 1000
 * &`) is waited for once the process itself has exited: vsh's bound. */
#define PROCESS_DRAIN_USEC (100 * 1000)
/* Output messages carry at most this much data. */
#define PROCESS_CHUNK (64 * 1024)
/* ProcessInfo.argv keeps this much of a process's argv (List answers
 * stay within one message for every process remembered). */
#define PROCESS_LIST_ARGV_BYTES 2048
#define PROCESS_TAG_MAX 256

enum { PROC_STDOUT, PROC_STDERR, PROC_N_STREAMS };

struct process_service;
struct pattach;

struct pproc {
	struct pproc *prev, *next;
	struct process_service *svc;
	uint64_t id;
	pid_t pid;
	char *tag;   /* "" when none */
	char **argv; /* cut to PROCESS_LIST_ARGV_BYTES */
	char *user;
	bool pty;
	bool kill_on_disconnect;
	struct timespec started;
	size_t buffer_bytes;
	/* Output: pipes (stdout, stderr), or the PTY's master as PROC_STDOUT
	 * (which is then the input too: in_fd == out_fd[0], one loop_io). */
	int out_fd[PROC_N_STREAMS];
	struct loop_io *out_io[PROC_N_STREAMS];
	struct ring ring[PROC_N_STREAMS];
	/* Not read while reading more would drop bytes an attached call has
	 * not sent yet (proc.c: the process then blocks on its write);
	 * hup: the end was told while so (not watched again until resumed). */
	bool out_paused[PROC_N_STREAMS], out_hup[PROC_N_STREAMS];
	/* The drain deadline has passed: what is read now is the last. */
	bool draining;
	/* Input: -1 when not asked for (/dev/null), or closed. */
	int in_fd;
	struct loop_io *in_io; /* pipes only */
	bool stdin_asked;
	/* The SendInput call being written (at most one per process), its
	 * bytes (a copy) and whether it ends the input. */
	struct rpc_call *input_call;
	uint8_t *input;
	size_t input_len, input_done;
	bool input_eof;
	/* The end: reaped (status), then ended once every output is closed. */
	struct loop_child *child;
	struct loop_timer *drain;
	bool reaped, ended;
	int status;
	struct timespec ended_at;
	uint64_t ended_usec; /* monotonic: when it is forgotten unseen */
	bool seen;	     /* a List or Connect has seen its end */
	bool start_saw_end;  /* an Exited was sent on a Start: evictable */
	struct pattach *attached;
};

/* One Start or Connect call attached to a process. */
struct pattach {
	struct pattach *prev, *next;
	struct pproc *p;
	struct rpc_call *call;
	uint64_t cursor[PROC_N_STREAMS];
	bool blocked; /* the call's queue is full: wait for writable */
	bool starter; /* the Start call (kill_on_disconnect) */
};

struct process_service {
	struct maitred *core;
	struct rpc_service table;
	struct maitred_stop_hook stop_hook;
	struct pproc *procs; /* the newest first */
	unsigned n_procs;
	uint64_t next_id;
	struct ring_budget budget;
	/* Created on the first Start: forgetting processes (once nothing
	 * holds them) and the expiry of exited ones nobody has seen. */
	struct loop_defer *gc;
	struct loop_timer *expiry;
	bool stopping;
	/* A process has new output or has ended (service.c: the attached
	 * calls move on). */
	void (*changed)(struct pproc *p);
};

int process_service_register(struct agent *a, struct process_service *s);
/* Once the loop has ended: the processes still running are killed (their
 * whole group, SIGKILL) and forgotten. */
void process_service_free(struct process_service *s);
