#include "frame.h"

#include <errno.h>

#include "base/macro.h"

int vsh_frame_encode(const ProtobufCMessage *m, uint8_t *out, size_t size)
{
	size_t len = protobuf_c_message_get_packed_size(m);

	if (len > VSH_MAX_MESSAGE)
		return -EMSGSIZE;
	if (size < 4 + len)
		return -ENOBUFS;
	out[0] = (uint8_t)len;
	out[1] = (uint8_t)(len >> 8);
	out[2] = (uint8_t)(len >> 16);
	out[3] = (uint8_t)(len >> 24);
	protobuf_c_message_pack(m, out + 4);
	return (int)(4 + len);
}

int vsh_frame_append(struct buf *out, const ProtobufCMessage *m)
{
	uint8_t frame[VSH_FRAME_MAX];
	int n = vsh_frame_encode(m, frame, sizeof(frame));
	return n < 0 ? n : buf_append(out, frame, (size_t)n, SIZE_MAX);
}

int vsh_frame_next(const uint8_t *data, size_t len, const uint8_t **ret_msg, size_t *ret_msg_len, size_t *ret_frame_len)
{
	uint32_t n;

	if (len < 4)
		return 0;
	n = (uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 | (uint32_t)data[3] << 24;
	if (n > VSH_MAX_MESSAGE)
		return -EMSGSIZE;
	if (len < 4 + (size_t)n)
		return 0;
	*ret_msg = data + 4;
	*ret_msg_len = n;
	*ret_frame_len = 4 + (size_t)n;
	return 1;
}

int vsh_frame_append_data(struct buf *out, enum vsh_sender from, VmTools__Vsh__StdioStream stream,
			  const uint8_t *data, size_t len)
{
	VmTools__Vsh__DataMessage d = VM_TOOLS__VSH__DATA_MESSAGE__INIT;
	VmTools__Vsh__HostMessage h = VM_TOOLS__VSH__HOST_MESSAGE__INIT;
	VmTools__Vsh__GuestMessage g = VM_TOOLS__VSH__GUEST_MESSAGE__INIT;
	const ProtobufCMessage *m = from == VSH_FROM_SERVER ? &h.base : &g.base;
	size_t off = 0;

	d.stream = stream;
	h.msg_case = VM_TOOLS__VSH__HOST_MESSAGE__MSG_DATA_MESSAGE;
	h.data_message = &d;
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_DATA_MESSAGE;
	g.data_message = &d;
	do {
		d.data.data = data ? (uint8_t *)data + off : NULL;
		d.data.len = MIN(len - off, (size_t)VSH_MAX_DATA);
		int r = vsh_frame_append(out, m);
		if (r < 0)
			return r;
		off += d.data.len;
	} while (off < len);
	return 0;
}

int vsh_frame_take(struct buf *in, vsh_frame_fn fn, void *userdata)
{
	size_t off = 0;
	int r = 0;

	while (off < in->len) {
		const uint8_t *msg;
		size_t mlen, flen;
		r = vsh_frame_next(in->data + off, in->len - off, &msg, &mlen, &flen);
		if (r <= 0)
			break;
		off += flen;
		r = fn(msg, mlen, userdata);
		if (r != 0)
			break;
	}
	buf_consume(in, off);
	return r;
}
