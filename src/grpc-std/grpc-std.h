/* The standard gRPC services every generic tool expects (layer
 * grpc-std): grpc.health.v1.Health (health.c) and server reflection,
 * grpc.reflection.v1 and v1alpha (reflection.c), registered with the agent
 * beside the other services. Both answer from the method tables registered
 * at the time of asking, so they describe exactly what this maitred serves
 * (switches included). docs/behaviour.md says what they answer. */
#pragma once

#include "agent/agent.h"

struct health_watch;

/* userdata of the Health methods. */
struct grpcstd_health {
	struct rpc_service *const *services; /* the agent's list */
	struct health_watch *watches;	     /* Watch calls open */
	bool stopping;			     /* maitred's orderly end has begun */
	struct maitred_stop_hook stop_hook;
};

/* userdata of the reflection methods. */
struct grpcstd_reflection {
	struct rpc_service *const *services;
};

struct grpcstd {
	struct grpcstd_health health;
	struct grpcstd_reflection reflection;
	struct rpc_service tables[2];
};

/* Registers Health and reflection (v1, v1alpha) with the agent; g must
 * outlive the server. -EEXIST as maitred_add_service(). */
int grpcstd_register(struct agent *a, struct grpcstd *g);
/* Ends what is still open (after the loop). */
void grpcstd_free(struct grpcstd *g);

/* The handlers (health.c, reflection.c). */
void grpcstd_health_check(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void grpcstd_health_watch(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
void grpcstd_health_list(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
/* maitred's orderly end: Watch calls get NOT_SERVING and end. */
void grpcstd_health_stopping(void *userdata);
void grpcstd_health_free(struct grpcstd_health *h);
void grpcstd_reflection_info(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
