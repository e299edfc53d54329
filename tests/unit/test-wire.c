#include <errno.h>

#include "rpc/status.h"
#include "rpc/wire.h"
#include "test.h"

TEST(prefix_roundtrip)
{
	uint8_t b[5];
	bool c;
	uint32_t len;
	rpc_prefix_encode(b, true, 0x01020304);
	CHECK(memcmp(b, "\x01\x01\x02\x03\x04", 5) == 0);
	rpc_prefix_decode(b, &c, &len);
	CHECK(c);
	CHECK_EQ(len, 0x01020304);
	rpc_prefix_encode(b, false, 0);
	rpc_prefix_decode(b, &c, &len);
	CHECK(!c);
	CHECK_EQ(len, 0);
}

TEST(percent_encoding)
{
	char *e = rpc_percent_encode("a b%c\n\xc3\xbc~");
	CHECK_STR(e, "a b%25c%0A%C3%BC~");
	char *d = rpc_percent_decode(e, strlen(e));
	CHECK_STR(d, "a b%c\n\xc3\xbc~");
	free(e);
	free(d);
	/* Malformed escapes are kept literally. */
	d = rpc_percent_decode("50%", 3);
	CHECK_STR(d, "50%");
	free(d);
	d = rpc_percent_decode("%zz%4", 5);
	CHECK_STR(d, "%zz%4");
	free(d);
}

TEST(timeout_parse)
{
	uint64_t us;
	CHECK_EQ(rpc_timeout_parse("1S", 2, &us), 0);
	CHECK_EQ(us, 1000000);
	CHECK_EQ(rpc_timeout_parse("250m", 4, &us), 0);
	CHECK_EQ(us, 250000);
	CHECK_EQ(rpc_timeout_parse("2H", 2, &us), 0);
	CHECK_EQ(us, 7200000000ull);
	CHECK_EQ(rpc_timeout_parse("3M", 2, &us), 0);
	CHECK_EQ(us, 180000000ull);
	CHECK_EQ(rpc_timeout_parse("5000n", 5, &us), 0);
	CHECK_EQ(us, 5);
	CHECK_EQ(rpc_timeout_parse("99999999u", 9, &us), 0);
	CHECK_EQ(rpc_timeout_parse("123456789u", 10, &us), -EINVAL); /* 9 digits */
	CHECK_EQ(rpc_timeout_parse("S", 1, &us), -EINVAL);
	CHECK_EQ(rpc_timeout_parse("10x", 3, &us), -EINVAL);
	CHECK_EQ(rpc_timeout_parse("-1S", 3, &us), -EINVAL);
}

TEST(timeout_format_roundtrip)
{
	const uint64_t values[] = { 1, 999, 30000000, 100000000, 5000000000ull, 200000000000000ull };
	for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
		char s[16];
		uint64_t back;
		rpc_timeout_format(values[i], s);
		CHECK(strlen(s) <= 9);
		CHECK_EQ(rpc_timeout_parse(s, strlen(s), &back), 0);
		/* Coarser units round down, never up. */
		CHECK(back <= values[i]);
		CHECK(back * 2 >= values[i] || values[i] > 360000000000ull);
	}
}

TEST(status_names)
{
	CHECK_STR(rpc_code_name(RPC_OK), "OK");
	CHECK_STR(rpc_code_name(RPC_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
	CHECK_STR(rpc_code_name(16), "UNAUTHENTICATED");
	CHECK_STR(rpc_code_name(17), "UNKNOWN");
	CHECK_STR(rpc_code_name(-1), "UNKNOWN");
}
