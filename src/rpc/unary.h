/* One unary gRPC call on a connection of its own, driven by the event
 * loop: connect, call, decode the response, close. Used by maitctl and by
 * maitred's VmReady notification. */
#pragma once

#include <protobuf-c/protobuf-c.h>

#include "loop/loop.h"
#include "net/addr.h"

/* response is decoded with the descriptor given (NULL unless code is OK);
 * it is the callback's to free (protobuf_c_message_free_unpacked). */
typedef void (*rpc_unary_done_fn)(int code, const char *message, ProtobufCMessage *response, void *userdata);

/* done runs exactly once, from the loop, unless this returns < 0. */
int rpc_unary_call(struct loop *l, const struct addr *a, const char *path, const ProtobufCMessage *request,
		   const ProtobufCMessageDescriptor *response_type, uint64_t timeout_usec, rpc_unary_done_fn done,
		   void *userdata);
