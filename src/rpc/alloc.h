/* The allocators handed to nghttp2 and protobuf-c by the sessions. They are
 * plain malloc/free, but called from our own code: a test executable that
 * wraps malloc at link time (tests/unit/failmalloc.c) then reaches every
 * allocation a call makes, the libraries' included. */
#pragma once

#include <nghttp2/nghttp2.h>
#include <protobuf-c/protobuf-c.h>

extern nghttp2_mem rpc_nghttp2_mem;
extern ProtobufCAllocator rpc_protobuf_allocator;
