/* The standard services' method tables and their registration with the
 * agent (grpc-std.h). */
#include "grpc-std.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

/* userdata: struct grpcstd_health. */
static const struct rpc_method health_methods[] = {
	{ "/grpc.health.v1.Health/Check", &grpc__health__v1__health_check_request__descriptor, grpcstd_health_check },
	{ "/grpc.health.v1.Health/Watch", &grpc__health__v1__health_check_request__descriptor, grpcstd_health_watch,
	  .server_streaming = true },
	{ "/grpc.health.v1.Health/List", &grpc__health__v1__health_list_request__descriptor, grpcstd_health_list },
};

/* userdata: struct grpcstd_reflection. v1alpha's messages are v1's under
 * another package name, the same bytes: one decoder, one handler. */
static const struct rpc_method reflection_methods[] = {
	{ "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
	  &grpc__reflection__v1__server_reflection_request__descriptor, grpcstd_reflection_info,
	  .client_streaming = true, .server_streaming = true },
	{ "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
	  &grpc__reflection__v1__server_reflection_request__descriptor, grpcstd_reflection_info,
	  .client_streaming = true, .server_streaming = true },
};

/* Run once, at start-up: placed with main() in .text.startup (where GCC
 * puts main and constructors), among the pages the start touches anyway.
 * Beside the handlers it made one more 64 KiB block of code resident in
 * an idle static maitred (the kernel maps file pages in such blocks around
 * each page touched). */
__attribute__((section(".text.startup.grpcstd_register"))) int grpcstd_register(struct agent *a, struct grpcstd *g)
{
	*g = (struct grpcstd){
		.health = { .services = &a->services },
		.reflection = { .services = &a->services },
		.tables = {
			{ health_methods, ARRAY_SIZE(health_methods), &g->health },
			{ reflection_methods, ARRAY_SIZE(reflection_methods), &g->reflection },
		},
	};
	g->health.stop_hook = (struct maitred_stop_hook){ .fn = grpcstd_health_stopping, .userdata = &g->health };
	for (size_t i = 0; i < ARRAY_SIZE(g->tables); i++) {
		int r = maitred_add_service(a, &g->tables[i]);
		if (r < 0)
			return r;
	}
	maitred_add_stop_hook(a, &g->health.stop_hook);
	return 0;
}

void grpcstd_free(struct grpcstd *g)
{
	grpcstd_health_free(&g->health);
}
