#include "alloc.h"

#include <stdlib.h>

static void *h2_malloc(size_t size, void *ud)
{
	return malloc(size);
}

static void h2_free(void *ptr, void *ud)
{
	free(ptr);
}

static void *h2_calloc(size_t nmemb, size_t size, void *ud)
{
	return calloc(nmemb, size);
}

static void *h2_realloc(void *ptr, size_t size, void *ud)
{
	return realloc(ptr, size);
}

nghttp2_mem rpc_nghttp2_mem = {
	.malloc = h2_malloc,
	.free = h2_free,
	.calloc = h2_calloc,
	.realloc = h2_realloc,
};

static void *pb_alloc(void *ud, size_t size)
{
	return malloc(size);
}

static void pb_free(void *ud, void *ptr)
{
	free(ptr);
}

ProtobufCAllocator rpc_protobuf_allocator = {
	.alloc = pb_alloc,
	.free = pb_free,
};
