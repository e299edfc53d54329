#include "nul-check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

/* Our messages nest two deep (map entries); anything deeper is not ours. */
#define MAX_DEPTH 16

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *ret)
{
	uint64_t v = 0;

	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*p >= end)
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

static int skip(const uint8_t **p, const uint8_t *end, size_t n)
{
	if ((size_t)(end - *p) < n)
		return -EBADMSG;
	*p += n;
	return 0;
}

/* path holds the names of the enclosing fields ("env."), at offset off. */
static int scan(const ProtobufCMessageDescriptor *desc, const uint8_t *p, const uint8_t *end, char *path, size_t size,
		size_t off, unsigned depth)
{
	if (depth > MAX_DEPTH)
		return -EBADMSG;
	while (p < end) {
		uint64_t key, v;
		int r;

		if (read_varint(&p, end, &key) < 0)
			return -EBADMSG;
		switch (key & 7) {
		case 0: r = read_varint(&p, end, &v); break;
		case 1: r = skip(&p, end, 8); break;
		case 5: r = skip(&p, end, 4); break;
		case 2: {
			if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p))
				return -EBADMSG;
			const ProtobufCFieldDescriptor *f =
				key >> 3 <= UINT32_MAX
					? protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3))
					: NULL;
			if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, (size_t)v)) {
				snprintf(path + off, size - off, "%s", f->name);
				return 1;
			}
			if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
				int n = snprintf(path + off, size - off, "%s.", f->name);
				size_t noff = n > 0 && (size_t)n < size - off ? off + (size_t)n : off;
				r = scan(f->descriptor, p, p + v, path, size, noff, depth + 1);
				if (r != 0)
					return r;
			}
			p += v;
			r = 0;
			break;
		}
		default: return -EBADMSG; /* groups: protobuf-c does not decode them either */
		}
		if (r < 0)
			return r;
	}
	return 0;
}

int pb_find_nul_string(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len, char *ret_field,
		       size_t size)
{
	char path[128] = "";
	int r = scan(desc, data, data + len, path, sizeof(path), 0, 0);

	if (r > 0)
		snprintf(ret_field, size, "%s", path);
	return r;
}
