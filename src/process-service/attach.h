/* The calls attached to a process (Start, Connect): each has its own
 * cursor per stream and sends from it as its send queue allows; the
 * slowest one holds the process's output back (proc.c reads only what the
 * ring can hold without dropping what that call has not sent). A cursor
 * the ring passed before the call attached gets `dropped` (the exact
 * count) with the next Output. Once the process has ended and the call
 * has everything, Exited, and the call ends OK. */
#pragma once

#include "service.h"

/* Allocated before the process starts, so that attaching cannot fail. */
struct pattach *pattach_new(void);
/* Attaches a to p from the offsets given (<= what was written), sends
 * Started and what there is. */
void pattach_attach(struct pattach *a, struct pproc *p, struct rpc_call *call, uint64_t stdout_from,
		    uint64_t stderr_from, bool starter);
/* Every call attached to p sends what it can (p has new output, or ended). */
void pattach_pump_all(struct pproc *p);
/* Ends every call attached to p with code (maitred is stopping). */
void pattach_end_all(struct pproc *p, int code, const char *msg);
