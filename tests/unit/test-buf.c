#include <errno.h>

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
