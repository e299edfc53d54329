/* Server reflection, grpc.reflection.v1 and v1alpha (the same messages):
 * ServerReflectionInfo answers each request of the stream, in order, with
 * one response, and ends (OK) when the client half-closes.
 *
 * list_services names the services the method tables serve at the time of
 * asking (served.h: a service switched off entirely is not listed). The
 * files and symbols come from the descriptors built into maitred
 * (descriptor-set.h): a file is sent with its transitive imports in the
 * same response (as gRPC's C++ server does), so that every response is
 * complete by itself. Unknown names get error_response NOT_FOUND; the
 * served files define no extensions, so file_containing_extension is
 * NOT_FOUND and all_extension_numbers_of_type an empty list for a known
 * message. A request over REFLECTION_MAX_REQUEST bytes (longer than any
 * name it could ask for) gets error_response INVALID_ARGUMENT, without the
 * echo of itself. The stream goes on after every error_response.
 *
 * Back-pressure: when the send queue is full, receiving pauses until it
 * drains (the peer's requests wait in the stream's window). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "descriptor-set.h"
#include "grpc-std.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "served.h"

#define REFLECTION_MAX_REQUEST (16 * 1024)

typedef Grpc__Reflection__V1__ServerReflectionRequest request_t;
typedef Grpc__Reflection__V1__ServerReflectionResponse response_t;

/* What a response points at, freed once it is sent. */
struct answer {
	response_t resp;
	Grpc__Reflection__V1__FileDescriptorResponse files;
	Grpc__Reflection__V1__ExtensionNumberResponse extensions;
	Grpc__Reflection__V1__ListServiceResponse list;
	Grpc__Reflection__V1__ErrorResponse error;
	ProtobufCBinaryData *blobs;
	Grpc__Reflection__V1__ServiceResponse *services, **service_ptrs;
	char *names;
	char message[400];
};

static void answer_free(struct answer *a)
{
	free(a->blobs);
	free(a->services);
	free(a->service_ptrs);
	free(a->names);
}

#define NAME_SHOWN 200

/* s for an error message: at most NAME_SHOWN bytes, not cutting a UTF-8
 * sequence (a string field must stay valid UTF-8), "..." when cut. */
static const char *shown(const char *s, char buf[static NAME_SHOWN + 4])
{
	size_t n = strlen(s);

	if (n <= NAME_SHOWN)
		return s;
	n = NAME_SHOWN;
	while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
		n--;
	memcpy(buf, s, n);
	memcpy(buf + n, "...", 4);
	return buf;
}

_printf_(3, 4) static void set_error(struct answer *a, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(a->message, sizeof(a->message), fmt, ap);
	va_end(ap);
	grpc__reflection__v1__error_response__init(&a->error);
	a->error.error_code = code;
	a->error.error_message = a->message;
	a->resp.message_response_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
	a->resp.error_response = &a->error;
}

/* The file and its transitive imports, the file first. */
static int set_file(struct answer *a, unsigned file)
{
	size_t n_deps;
	const uint16_t *deps = descset_file_deps(file, &n_deps);

	a->blobs = calloc(n_deps + 1, sizeof(*a->blobs));
	if (!a->blobs)
		return -ENOMEM;
	for (size_t i = 0; i <= n_deps; i++) {
		size_t size;
		const uint8_t *data = descset_file_bytes(i == 0 ? file : deps[i - 1], &size);
		/* protobuf-c's type is not const; packing only reads it. */
		a->blobs[i] = (ProtobufCBinaryData){ .len = size, .data = (uint8_t *)data };
	}
	grpc__reflection__v1__file_descriptor_response__init(&a->files);
	a->files.file_descriptor_proto = a->blobs;
	a->files.n_file_descriptor_proto = n_deps + 1;
	a->resp.message_response_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
	a->resp.file_descriptor_response = &a->files;
	return 0;
}

static int count_service(const char *name, size_t len, void *userdata)
{
	size_t *n = userdata;
	n[0]++;
	n[1] += len + 1;
	return 0;
}

static int add_service(const char *name, size_t len, void *userdata)
{
	struct answer *a = userdata;
	size_t i = a->list.n_service++;
	char *copy = a->names;

	/* names is filled from its start; each entry's name follows the
	 * previous one. */
	if (i > 0)
		copy = a->services[i - 1].name + strlen(a->services[i - 1].name) + 1;
	memcpy(copy, name, len);
	copy[len] = '\0';
	grpc__reflection__v1__service_response__init(&a->services[i]);
	a->services[i].name = copy;
	a->service_ptrs[i] = &a->services[i];
	return 0;
}

static int set_services(struct answer *a, const struct rpc_service *list)
{
	size_t count[2] = { 0, 1 };

	(void)grpcstd_for_each_served(list, count_service, count);
	a->services = calloc(count[0] + 1, sizeof(*a->services));
	a->service_ptrs = calloc(count[0] + 1, sizeof(*a->service_ptrs));
	a->names = malloc(count[1]);
	if (!a->services || !a->service_ptrs || !a->names)
		return -ENOMEM;
	grpc__reflection__v1__list_service_response__init(&a->list);
	a->list.service = a->service_ptrs;
	(void)grpcstd_for_each_served(list, add_service, a);
	a->resp.message_response_case =
		GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
	a->resp.list_services_response = &a->list;
	return 0;
}

/* Fills a->resp for one request: an answer or an error_response; -ENOMEM. */
static int answer_request(struct answer *a, const request_t *req, const struct grpcstd_reflection *r)
{
	enum descset_kind kind;
	char buf[NAME_SHOWN + 4];
	int i;

	switch (req->message_request_case) {
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
		i = descset_find_file(req->file_by_filename);
		if (i >= 0)
			return set_file(a, i);
		set_error(a, RPC_NOT_FOUND, "no file named '%s'", shown(req->file_by_filename, buf));
		return 0;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
		i = descset_find_symbol(req->file_containing_symbol, NULL);
		if (i >= 0)
			return set_file(a, i);
		set_error(a, RPC_NOT_FOUND, "no symbol named '%s'", shown(req->file_containing_symbol, buf));
		return 0;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
		set_error(a, RPC_NOT_FOUND, "no extension of '%s' is known (the served files define none)",
			  shown(req->file_containing_extension && req->file_containing_extension->containing_type
					? req->file_containing_extension->containing_type
					: "",
				buf));
		return 0;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
		if (descset_find_symbol(req->all_extension_numbers_of_type, &kind) < 0 || kind != DESCSET_MESSAGE) {
			set_error(a, RPC_NOT_FOUND, "no message type named '%s'",
				  shown(req->all_extension_numbers_of_type, buf));
			return 0;
		}
		grpc__reflection__v1__extension_number_response__init(&a->extensions);
		a->extensions.base_type_name = req->all_extension_numbers_of_type;
		a->resp.message_response_case =
			GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
		a->resp.all_extension_numbers_response = &a->extensions;
		return 0;
	case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
		return set_services(a, *r->services);
	default:
		set_error(a, RPC_UNIMPLEMENTED,
			  "a request this server does not know (it answers file_by_filename, "
			  "file_containing_symbol, file_containing_extension, all_extension_numbers_of_type, "
			  "list_services)");
		return 0;
	}
}

static void on_writable(struct rpc_call *call, void *userdata)
{
	rpc_call_resume_receiving(call);
}

static void on_request(struct rpc_call *call, const ProtobufCMessage *msg, void *userdata)
{
	const request_t *req = (const void *)msg;
	struct answer a = { 0 };
	size_t size = protobuf_c_message_get_packed_size(msg);
	int r = 0;

	grpc__reflection__v1__server_reflection_response__init(&a.resp);
	if (size > REFLECTION_MAX_REQUEST) {
		set_error(&a, RPC_INVALID_ARGUMENT, "a request of %zu bytes; at most %d are accepted", size,
			  REFLECTION_MAX_REQUEST);
	} else {
		a.resp.valid_host = req->host;
		/* Packing only reads it. */
		a.resp.original_request = (request_t *)req;
		r = answer_request(&a, req, userdata);
	}
	if (r >= 0)
		r = rpc_call_send(call, &a.resp.base);
	answer_free(&a);
	if (r < 0)
		/* The call is freed: the loop delivering messages stops. */
		return rpc_call_fail(call, RPC_RESOURCE_EXHAUSTED, "could not answer a reflection request: %s",
				     strerror(-r));
	if (r > 0) {
		/* Full: no further request until the queue has drained. */
		rpc_call_pause_receiving(call);
		rpc_call_set_writable(call, on_writable, NULL);
	}
}

static void on_end(struct rpc_call *call, void *userdata)
{
	rpc_call_finish(call, RPC_OK, NULL);
}

void grpcstd_reflection_info(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	rpc_call_set_receiver(call, on_request, on_end, userdata);
	on_request(call, request, userdata);
}
