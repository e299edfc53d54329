#include <errno.h>
#include <stdint.h>
#include <sys/socket.h>

#include "base/buf.h"
#include "test.h"

TEST(buf_limit)
{
	struct buf b = { 0 };
	CHECK_EQ(buf_append(&b, (const uint8_t *)"abcd", 4, 6), 0);
	CHECK_EQ(buf_append(&b, (const uint8_t *)"efg", 3, 6), -E2BIG);
	CHECK_EQ(b.len, 4);
	buf_consume(&b, 1);
	CHECK(memcmp(b.data, "bcd", 3) == 0);
	buf_clear(&b);
	CHECK(b.data == NULL);
}

/* A socket that takes some: the count, then the rest once read; a socket
 * whose peer is gone: -EPIPE (no SIGPIPE). buf_send() consumes what went. */
TEST(buf_send_some_partial_and_gone)
{
	enum { BIG = 4 << 20 };
	int sv[2];
	uint8_t *data = calloc(1, BIG);
	struct buf b = { 0 };
	CHECK(data != NULL);
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
	CHECK_EQ(buf_send_some(sv[0], data, 0), 0);
	CHECK_EQ(buf_send_some(sv[0], (const uint8_t *)"abc", 3), 3);
	ssize_t n = buf_send_some(sv[0], data, BIG);
	CHECK(n > 0 && n < BIG); /* the socket's buffer is smaller */
	CHECK_EQ(buf_send_some(sv[0], data, BIG), 0);

	CHECK_EQ(buf_append(&b, data, 1000, SIZE_MAX), 0);
	CHECK_EQ(buf_send(sv[0], &b), 0); /* full: nothing went, nothing lost */
	CHECK_EQ(b.len, 1000);
	while (read(sv[1], data, BIG) > 0)
		;
	CHECK_EQ(buf_send(sv[0], &b), 0); /* read: all of it went */
	CHECK_EQ(b.len, 0);
	CHECK_EQ(buf_append(&b, data, 10, SIZE_MAX), 0);
	close(sv[1]);
	CHECK_EQ(buf_send_some(sv[0], data, 10), -EPIPE);
	CHECK_EQ(buf_send(sv[0], &b), -EPIPE);
	buf_clear(&b);
	close(sv[0]);
	free(data);
}
