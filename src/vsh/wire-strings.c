#include "wire-strings.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Nested messages deeper than this are refused rather than walked. */
#define MAX_DEPTH 8

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p == end)
			return -EBADMSG;
		uint8_t b = *(*p)++;
		v |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*ret = v;
			return 0;
		}
	}
	return -EBADMSG;
}

/* name holds the path of the enclosing fields ("env."), used bytes of it. */
static int walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end, char *name, size_t size,
		size_t used, unsigned depth)
{
	if (depth > MAX_DEPTH)
		return -EBADMSG;
	while (p < end) {
		uint64_t key, len;
		if (read_varint(&p, end, &key) < 0)
			return -EBADMSG;
		switch (key & 7) {
		case 0: /* varint */
			if (read_varint(&p, end, &len) < 0)
				return -EBADMSG;
			continue;
		case 1: /* 64-bit */
			if (end - p < 8)
				return -EBADMSG;
			p += 8;
			continue;
		case 5: /* 32-bit */
			if (end - p < 4)
				return -EBADMSG;
			p += 4;
			continue;
		case 2: break;
		default: return -EBADMSG; /* groups: protobuf-c refuses them too */
		}
		if (read_varint(&p, end, &len) < 0 || len > (uint64_t)(end - p))
			return -EBADMSG;
		const uint8_t *v = p;
		p += len;
		const ProtobufCFieldDescriptor *fd =
			key >> 3 <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3))
					       : NULL;
		if (!fd)
			continue; /* unknown field: protobuf-c keeps it as bytes */
		if (fd->type == PROTOBUF_C_TYPE_STRING && memchr(v, 0, len)) {
			snprintf(name + used, size - used, "%s", fd->name);
			return 1;
		}
		if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
			snprintf(name + used, size - used, "%s.", fd->name);
			int r = walk(fd->descriptor, v, v + len, name, size, strlen(name), depth + 1);
			if (r != 0)
				return r;
			name[used] = 0;
		}
	}
	return 0;
}

int vsh_find_nul_string(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len, char *ret_field,
			size_t field_size)
{
	if (field_size == 0)
		return -EINVAL;
	ret_field[0] = 0;
	return walk(desc, data, data + len, ret_field, field_size, 0, 0);
}
