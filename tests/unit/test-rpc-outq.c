/* rpc/outq.c: a send queue's messages written in place (push_filled),
 * and the two pushes built on it; a fill that fails queues nothing. */
#include <errno.h>
#include <string.h>

#include "rpc/outq.h"
#include "rpc/wire.h"
#include "test.h"

static int fill_abc(uint8_t *buf, size_t len, void *arg)
{
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)('a' + i % 3);
	*(int *)arg += 1;
	return 0;
}

static int fill_fails(uint8_t *buf, size_t len, void *arg)
{
	memset(buf, 0xee, len); /* written, then given up */
	*(int *)arg += 1;
	return -EIO;
}

TEST(filled_encoded_and_failed_messages)
{
	struct rpc_outq q = { 0 };
	uint8_t out[64];
	int calls = 0;

	CHECK_EQ(rpc_outq_push_filled(&q, 5, fill_abc, &calls), 0);
	CHECK_EQ(calls, 1);
	CHECK_EQ(q.bytes, RPC_PREFIX_SIZE + 5);
	/* A fill's failure is returned; the queue is as it was. */
	CHECK_EQ(rpc_outq_push_filled(&q, 7, fill_fails, &calls), -EIO);
	CHECK_EQ(calls, 2);
	CHECK_EQ(q.bytes, RPC_PREFIX_SIZE + 5);
	CHECK_EQ(rpc_outq_push_encoded(&q, (const uint8_t *)"xy", 2), 0);
	CHECK_EQ(rpc_outq_push_encoded(&q, NULL, 0), 0);
	CHECK_EQ(q.bytes, 3 * RPC_PREFIX_SIZE + 7);
	CHECK_EQ(rpc_outq_read(&q, out, sizeof(out)), 3 * RPC_PREFIX_SIZE + 7);
	CHECK(memcmp(out, "\0\0\0\0\5abcab", 10) == 0);
	CHECK(memcmp(out + 10, "\0\0\0\0\2xy", 7) == 0);
	CHECK(memcmp(out + 17, "\0\0\0\0\0", 5) == 0);
	CHECK_EQ(q.bytes, 0);
	CHECK(!q.head && !q.tail);
}

TEST(filled_message_over_the_limit_is_refused_unfilled)
{
	struct rpc_outq q = { 0 };
	int calls = 0;

	CHECK_EQ(rpc_outq_push_filled(&q, RPC_MAX_MESSAGE_SIZE + 1, fill_abc, &calls), -E2BIG);
	CHECK_EQ(calls, 0);
	CHECK_EQ(q.bytes, 0);
	CHECK(!q.head);
}

/* Read in pieces: a message partly read stays at the head when the rest
 * is dropped. */
TEST(partly_read_message_survives_drop_unsent)
{
	struct rpc_outq q = { 0 };
	uint8_t out[16];
	int calls = 0;

	CHECK_EQ(rpc_outq_push_filled(&q, 6, fill_abc, &calls), 0);
	CHECK_EQ(rpc_outq_push_filled(&q, 4, fill_abc, &calls), 0);
	CHECK_EQ(rpc_outq_read(&q, out, 3), 3);
	rpc_outq_drop_unsent(&q);
	CHECK_EQ(q.bytes, RPC_PREFIX_SIZE + 6 - 3);
	CHECK_EQ(rpc_outq_read(&q, out, sizeof(out)), RPC_PREFIX_SIZE + 6 - 3);
	CHECK(memcmp(out, "\0\6abcabc", 8) == 0);
	rpc_outq_clear(&q);
}
