/* Restored: the VM was just restored from a snapshot, maybe as one of
 * many clones. In this order, each step only once the request has passed
 * every check (nothing changes for a bad request): the clock stepped to
 * the host's time (agent/clock.c, as SetTime), the host's entropy added
 * and the CRNG reseeded (entropy.c), the network applied as
 * ConfigureNetwork does (agent/network.c), the generation recorded.
 * Everything runs in maitred's loop: these are quick system calls (the
 * time maitred spends is logged; docs/benchmarks.md). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/clock.h"
#include "agent/network.h"
#include "base/escape.h"
#include "base/log.h"
#include "base/time-util.h"
#include "service.h"
#include "snapshot.pb-c.h"

#define GENERATION_MAX 256

static uint64_t cpu_nsec(void)
{
	struct timespec ts;
	(void)clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static void refuse(struct rpc_call *call, int code, const char *message)
{
	log_info("Restored from %s: %s: %s", rpc_call_peer(call), rpc_code_name(code), ESCAPED(message));
	rpc_call_fail(call, code, "%s", message);
}

void snap_restored(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const Valet__V1__RestoredRequest *req = (const Valet__V1__RestoredRequest *)request;
	Valet__V1__RestoredResponse resp = VALET__V1__RESTORED_RESPONSE__INIT;
	struct snapshot_service *s = userdata;
	uint64_t t0 = now_usec(), c0 = cpu_nsec();
	struct maitred_net_error nerr;
	struct timespec old;
	const char *resolv = NULL, *step_name = "";
	char why[400], summary[128] = "";
	int64_t step = 0;
	char *gen = NULL;
	int r;

	if (req->entropy.len < SNAP_ENTROPY_MIN || req->entropy.len > SNAP_ENTROPY_MAX) {
		snprintf(why, sizeof(why), "entropy: %zu bytes: from %d to %d bytes are needed", req->entropy.len,
			 SNAP_ENTROPY_MIN, SNAP_ENTROPY_MAX);
		return refuse(call, RPC_INVALID_ARGUMENT, why);
	}
	if (req->time && maitred_time_check(req->time, why, sizeof(why)) < 0)
		return refuse(call, RPC_INVALID_ARGUMENT, why);
	if (strlen(req->generation) > GENERATION_MAX) {
		snprintf(why, sizeof(why), "generation: %zu bytes: at most %d", strlen(req->generation),
			 GENERATION_MAX);
		return refuse(call, RPC_INVALID_ARGUMENT, why);
	}
	if (req->network && maitred_network_check(s->core, req->network, &nerr) < 0) {
		snprintf(why, sizeof(why), "network: %.320s", nerr.message);
		return refuse(call, nerr.code, why);
	}
	/* Allocated before anything changes: recording it cannot fail. */
	if (*req->generation && !(gen = strdup(req->generation)))
		return refuse(call, RPC_RESOURCE_EXHAUSTED, "out of memory");

	uint64_t t_clock = now_usec();
	if (req->time) {
		/* The host's time when it sent the request, plus the time
		 * spent here before the step (the checks took 50 ms in a guest
		 * just restored under TCG, its code not translated yet): the
		 * clock can only come out closer to the host's. */
		Google__Protobuf__Timestamp at = *req->time;
		maitred_time_add_usec(&at, t_clock - t0);
		r = maitred_clock_step(&at, &old, &step);
		if (r < 0) {
			free(gen);
			snprintf(why, sizeof(why), "could not set the clock to %lld: %s", (long long)req->time->seconds,
				 strerror(-r));
			return refuse(call, r == -EPERM ? RPC_PERMISSION_DENIED : RPC_INTERNAL, why);
		}
	}
	uint64_t t_entropy = now_usec();
	r = snap_entropy_add(&s->entropy, req->entropy.data, req->entropy.len, &step_name);
	if (r < 0) {
		free(gen);
		snprintf(why, sizeof(why), "could not add the entropy: %s: %s%s", step_name, strerror(-r),
			 req->time ? " (the clock was stepped)" : "");
		return refuse(call, r == -EPERM ? RPC_PERMISSION_DENIED : RPC_INTERNAL, why);
	}
	uint64_t t_network = now_usec();
	if (req->network) {
		r = maitred_network_configure(s->core, req->network, &resolv, summary, sizeof(summary), &nerr);
		if (r < 0) {
			free(gen);
			snprintf(why, sizeof(why), "network: %.320s (the clock and the entropy were applied)", nerr.message);
			return refuse(call, nerr.code, why);
		}
	}
	resp.clock_step_ns = step;
	resp.previous_generation = s->generation ? s->generation : (char *)"";
	uint64_t t_end = now_usec(), cpu = cpu_nsec() - c0;
	/* The steps' wall times say where a slow call spent it. */
	log_info("Restored from %s: clock stepped %+.6f s, %zu bytes of entropy added and the CRNG reseeded%s%s%s, "
		 "generation \"%s\" (was \"%s\"); %.3f ms, %.3f ms of CPU (checks %.3f, clock %.3f, entropy %.3f, "
		 "network %.3f ms)",
		 rpc_call_peer(call), (double)step / 1e9, req->entropy.len, req->network ? ", network: " : "", summary,
		 resolv ? " and resolv.conf" : "", gen ? ESCAPED(gen) : ESCAPED(resp.previous_generation),
		 ESCAPED(resp.previous_generation), (double)(t_end - t0) / 1e3, (double)cpu / 1e6,
		 (double)(t_clock - t0) / 1e3, (double)(t_entropy - t_clock) / 1e3, (double)(t_network - t_entropy) / 1e3,
		 (double)(t_end - t_network) / 1e3);
	rpc_call_reply(call, &resp.base);
	/* An empty generation leaves the recorded one as it is. */
	if (gen) {
		free(s->generation);
		s->generation = gen;
	}
}
