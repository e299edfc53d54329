/* valet.v1.Files' request messages as a peer sends them, through what
 * the service checks before any file is touched: the path checks of the
 * files layer (every method's path, Move's two) and a Write header's
 * options (files-service/convert.c: mode, sha256, mtime). An accepted
 * path is absolute, without NUL, empty, "." or ".." components, shorter
 * than 4096 bytes; accepted options have a mode of at most 07777 and a
 * digest of 32 bytes or none.
 *
 * Input: the first byte picks the message (Write's WriteRequest, Read,
 * Stat, List, MakeDirectory, Remove, Move, WriteTree's TreeRequest), the
 * rest is that message in protobuf. */
#include <errno.h>
#include <string.h>

#include "files-service/convert.h"
#include "files/path.h"
#include "fuzz.h"
#include "valet/v1/files.pb-c.h"

static void check_path(const char *p)
{
	struct files_err err = { "" };
	size_t len = strlen(p);
	int r = files_path_check(p, len, &err);

	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL && err.msg[0]);
		return;
	}
	FUZZ_CHECK(p[0] == '/' && len < FILES_PATH_MAX);
	FUZZ_CHECK(!strstr(p, "//") && !strstr(p, "/./") && !strstr(p, "/../"));
	if (len > 1) {
		FUZZ_CHECK(p[len - 1] != '/');
		FUZZ_CHECK(!(len >= 2 && strcmp(p + len - 2, "/.") == 0));
		FUZZ_CHECK(!(len >= 3 && strcmp(p + len - 3, "/..") == 0));
	}
}

static void check_header(const Valet__V1__WriteHeader *h)
{
	struct files_write_opts o;
	struct files_err err = { "" };
	int r = fsvc_write_opts_from_pb(h, &o, &err);

	check_path(h->path);
	if (r < 0) {
		FUZZ_CHECK(r == -EINVAL && err.msg[0]);
		return;
	}
	FUZZ_CHECK(!o.has_mode || o.mode <= 07777);
	FUZZ_CHECK(o.has_mode == (h->_mode_case == VALET__V1__WRITE_HEADER___MODE_MODE));
	FUZZ_CHECK(!o.sha256 || h->sha256.len == 32);
	FUZZ_CHECK(!o.has_mtime || (o.mtime.tv_nsec >= 0 && o.mtime.tv_nsec <= 999999999));
}

static const ProtobufCMessageDescriptor *const types[] = {
	&valet__v1__write_request__descriptor,	   &valet__v1__read_request__descriptor,
	&valet__v1__stat_request__descriptor,	   &valet__v1__list_request__descriptor,
	&valet__v1__make_directory_request__descriptor, &valet__v1__remove_request__descriptor,
	&valet__v1__move_request__descriptor,	   &valet__v1__tree_request__descriptor,
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	ProtobufCMessage *m;
	const ProtobufCMessageDescriptor *d;

	if (size < 1)
		return 0;
	d = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	m = protobuf_c_message_unpack(d, NULL, size - 1, data + 1);
	if (!m)
		return 0;
	if (d == &valet__v1__write_request__descriptor) {
		const Valet__V1__WriteRequest *w = (const Valet__V1__WriteRequest *)m;
		if (w->part_case == VALET__V1__WRITE_REQUEST__PART_HEADER && w->header)
			check_header(w->header);
	} else if (d == &valet__v1__move_request__descriptor) {
		check_path(((const Valet__V1__MoveRequest *)m)->source);
		check_path(((const Valet__V1__MoveRequest *)m)->destination);
	} else if (d == &valet__v1__tree_request__descriptor) {
		const Valet__V1__TreeRequest *t = (const Valet__V1__TreeRequest *)m;
		if (t->part_case == VALET__V1__TREE_REQUEST__PART_HEADER && t->header)
			check_path(t->header->root);
	} else {
		/* The others start with their path, field 1. */
		const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(d, 1);
		FUZZ_CHECK(f && f->type == PROTOBUF_C_TYPE_STRING);
		check_path(*(char *const *)((const char *)m + f->offset));
	}
	protobuf_c_message_free_unpacked(m, NULL);
	return 0;
}
