#include "outq.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"
#include "rpc/wire.h"

struct rpc_outmsg {
	struct rpc_outmsg *next;
	size_t len, off;
	uint8_t data[];
};

/* Appends one message of len bytes, its prefix written and its payload
 * by fill: 0, or -E2BIG, -ENOMEM, fill's -errno (nothing queued). */
int rpc_outq_push_filled(struct rpc_outq *q, size_t len, rpc_fill_fn fill, void *arg)
{
	struct rpc_outmsg *m;
	int r;

	if (len > RPC_MAX_MESSAGE_SIZE)
		return -E2BIG;
	m = malloc(sizeof(*m) + RPC_PREFIX_SIZE + len);
	if (!m)
		return -ENOMEM;
	r = fill(m->data + RPC_PREFIX_SIZE, len, arg);
	if (r < 0) {
		free(m);
		return r;
	}
	m->next = NULL;
	m->len = RPC_PREFIX_SIZE + len;
	m->off = 0;
	rpc_prefix_encode(m->data, false, (uint32_t)len);
	if (q->tail)
		q->tail->next = m;
	else
		q->head = m;
	q->tail = m;
	q->bytes += m->len;
	return 0;
}

int rpc_fill_packed(uint8_t *buf, size_t len, void *arg)
{
	protobuf_c_message_pack(arg, buf);
	return 0;
}

int rpc_outq_push(struct rpc_outq *q, const ProtobufCMessage *msg)
{
	return rpc_outq_push_filled(q, protobuf_c_message_get_packed_size(msg), rpc_fill_packed, (void *)msg);
}

int rpc_fill_copy(uint8_t *buf, size_t len, void *arg)
{
	if (len)
		memcpy(buf, arg, len);
	return 0;
}

int rpc_outq_push_encoded(struct rpc_outq *q, const uint8_t *data, size_t len)
{
	return rpc_outq_push_filled(q, len, rpc_fill_copy, (void *)data);
}

size_t rpc_outq_read(struct rpc_outq *q, uint8_t *buf, size_t len)
{
	size_t n = 0;

	while (q->head && n < len) {
		struct rpc_outmsg *m = q->head;
		size_t k = MIN(len - n, m->len - m->off);
		memcpy(buf + n, m->data + m->off, k);
		m->off += k;
		n += k;
		if (m->off == m->len) {
			q->head = m->next;
			if (!q->head)
				q->tail = NULL;
			free(m);
		}
	}
	q->bytes -= n;
	return n;
}

void rpc_outq_clear(struct rpc_outq *q)
{
	while (q->head) {
		struct rpc_outmsg *m = q->head;
		q->head = m->next;
		free(m);
	}
	*q = (struct rpc_outq){ 0 };
}

void rpc_outq_drop_unsent(struct rpc_outq *q)
{
	struct rpc_outmsg *keep = q->head && q->head->off ? q->head : NULL, *m = keep ? keep->next : q->head;

	while (m) {
		struct rpc_outmsg *next = m->next;
		q->bytes -= m->len;
		free(m);
		m = next;
	}
	if (keep)
		keep->next = NULL;
	q->head = q->tail = keep;
}
