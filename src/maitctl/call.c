#include <stdio.h>
#include <string.h>

#include "base/escape.h"
#include "common.pb-c.h"
#include "loop/loop.h"
#include "maitctl.h"
#include "rpc/status.h"
#include "rpc/unary.h"

struct call_result {
	struct loop *loop;
	int code;
	char message[512];
	ProtobufCMessage *response;
};

static void on_done(int code, const char *message, ProtobufCMessage *response, void *userdata)
{
	struct call_result *res = userdata;

	res->code = code;
	snprintf(res->message, sizeof(res->message), "%s", message ? message : "");
	res->response = response;
	/* Called once the connection is closed: nothing is left to drain. */
	loop_exit(res->loop, 0);
}

void maitctl_json_string(const char *s)
{
	putchar('"');
	for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
		if (*c == '"' || *c == '\\')
			printf("\\%c", *c);
		else if (*c < 0x20)
			printf("\\u%04x", *c);
		else
			putchar(*c);
	}
	putchar('"');
}

void maitctl_print_error(const struct maitctl *ctl, int code, const char *message)
{
	char escaped[1024];

	if (ctl->json) {
		printf("{\"code\":\"%s\",\"message\":", rpc_code_name(code));
		maitctl_json_string(message);
		printf("}\n");
	}
	/* The guest's words: no control characters reach the terminal. */
	fprintf(stderr, "maitctl: %s: %s\n", rpc_code_name(code),
		escape_mem(message, strlen(message), escaped, sizeof(escaped)));
}

int maitctl_call_status(struct maitctl *ctl, const char *method, const ProtobufCMessage *request,
			const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret_response,
			char *ret_message, size_t size)
{
	_cleanup_(loop_freep) struct loop *loop = NULL;
	struct call_result res = { .code = -1 };
	char addrbuf[128];
	int r;

	r = loop_new(&loop);
	if (r < 0) {
		snprintf(ret_message, size, "%s", strerror(-r));
		return RPC_INTERNAL;
	}
	res.loop = loop;
	r = rpc_unary_call(loop, &ctl->addr, method, request, response_type, ctl->timeout_usec, on_done, &res);
	if (r < 0) {
		snprintf(ret_message, size, "cannot connect to %s: %s",
			 addr_format(&ctl->addr, addrbuf, sizeof(addrbuf)), strerror(-r));
		return RPC_UNAVAILABLE;
	}
	r = loop_run(loop);
	if (r < 0 || res.code < 0) {
		snprintf(ret_message, size, "event loop failed");
		return RPC_INTERNAL;
	}
	if (res.code != RPC_OK) {
		if (strncmp(res.message, "connection closed", 17) == 0)
			snprintf(ret_message, size, "%s: %s", addr_format(&ctl->addr, addrbuf, sizeof(addrbuf)),
				 res.message);
		else
			snprintf(ret_message, size, "%s", res.message);
		return res.code;
	}
	*ret_response = res.response;
	return RPC_OK;
}

int maitctl_call(struct maitctl *ctl, const char *method, const ProtobufCMessage *request,
		 const ProtobufCMessageDescriptor *response_type, ProtobufCMessage **ret_response)
{
	char msg[700];
	int code = maitctl_call_status(ctl, method, request, response_type, ret_response, msg, sizeof(msg));

	if (code != RPC_OK)
		maitctl_print_error(ctl, code, msg);
	return code;
}

int maitctl_call_empty(struct maitctl *ctl, const char *method, const ProtobufCMessage *request)
{
	_cleanup_response_ ProtobufCMessage *resp = NULL;

	if (maitctl_call(ctl, method, request, &vm_tools__empty_message__descriptor, &resp) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	return 0;
}

int maitctl_call_ok(struct maitctl *ctl, const char *method, const ProtobufCMessage *request)
{
	int r = maitctl_call_empty(ctl, method, request);

	if (r == 0)
		puts(ctl->json ? "{}" : "OK");
	return r;
}

int maitctl_run_query(struct maitctl *ctl, int argc, char **argv, const struct maitctl_query *q)
{
	VmTools__EmptyMessage req = VM_TOOLS__EMPTY_MESSAGE__INIT;
	_cleanup_response_ ProtobufCMessage *resp = NULL;
	int r = maitctl_no_args(argc, argv, q->help);

	if (r >= 0)
		return r;
	if (maitctl_call(ctl, q->method, &req.base, q->response_type, &resp) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	q->print(ctl, resp);
	return 0;
}
