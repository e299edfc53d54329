/* One process of valet.v1.Process (service.h's struct pproc): started
 * with its stdio (pipes or a PTY) and every watch it needs allocated
 * first, its output read into its rings (as far as the attached calls allow), its input written
 * as the pipe takes it, its end (reaped, then its output closed). What
 * happens is told to the service through svc->changed. */
#pragma once

#include "process.pb-c.h"
#include "service.h"

/* Starts req (checked by process_check_start()) with buffer bytes per
 * stream. 0 and *ret, linked first in svc's list; or a gRPC code and
 * err, and nothing is left (no process, no entry). */
int pproc_start(struct process_service *svc, const Valet__V1__StartRequest *req, size_t buffer, struct pproc **ret,
		char *err, size_t err_size);
/* Frees p (unlinked from svc's list by the caller); its process group is killed first when it has not
 * been reaped. */
void pproc_free(struct pproc *p);

/* SendInput: 0 when the call is p's now (answered once its bytes are in
 * the pipe or the PTY, or failed if the input closes first), else a gRPC
 * code with err. */
int pproc_send_input(struct pproc *p, struct rpc_call *call, const Valet__V1__SendInputRequest *req, char *err,
		     size_t err_size);
int pproc_send_signal(struct pproc *p, int sig, bool group, char *err, size_t err_size);
int pproc_resize(struct pproc *p, unsigned rows, unsigned cols, char *err, size_t err_size);
/* Reads again the streams paused for an attached call that has moved on
 * or gone (its cursor advanced, or it detached). */
void pproc_resume_output(struct pproc *p);
/* Signals the whole group (what is left of it once the process itself
 * has exited). */
void pproc_kill_group(struct pproc *p, int sig);

/* p's end as a message (p->reaped); ts is filled and pointed at. */
void pproc_exited_pb(const struct pproc *p, Valet__V1__ProcessEvent__Exited *ret, Google__Protobuf__Timestamp *ts);
void pproc_timestamp_pb(const struct timespec *t, Google__Protobuf__Timestamp *ts);
