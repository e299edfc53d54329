/* NUL bytes in the strings of an encoded SetupConnectionRequest: found in
 * every string field, nested map entries included; bytes fields and
 * unknown fields are left alone; malformed encodings are refused. */
#include "test.h"
#include "vsh.pb-c.h"
#include "pb/nul-check.h"

static int check(const uint8_t *data, size_t len, char *field, size_t size)
{
	return pb_find_nul_string(&vm_tools__vsh__setup_connection_request__descriptor, data, len, field, size);
}

TEST(clean_request_passes)
{
	char field[64];
	/* target "/vm_shell", argv ["sh"], env {"A": "1"}, nopty, unknown field 99 (varint) */
	static const uint8_t req[] = { 0x0a, 9,	   '/', 'v',  'm', '_', 's',  'h', 'e', 'l',  'l', 0x2a, 2,    's',
				       'h',  0x1a, 6,	0x0a, 1,   'A', 0x12, 1,   '1', 0x40, 1,   0x98, 0x06, 7 };
	CHECK_EQ(check(req, sizeof(req), field, sizeof(field)), 0);
	CHECK_EQ(check(req, 0, field, sizeof(field)), 0);
}

TEST(nul_found_in_each_field)
{
	char field[64];
	static const uint8_t argv[] = { 0x2a, 2, 's', 'h', 0x2a, 4, 's', 'h', 0, 'x' };
	CHECK_EQ(check(argv, sizeof(argv), field, sizeof(field)), 1);
	CHECK(strcmp(field, "argv") == 0);
	static const uint8_t user[] = { 0x12, 3, 'a', 0, 'b' };
	CHECK_EQ(check(user, sizeof(user), field, sizeof(field)), 1);
	CHECK(strcmp(field, "user") == 0);
	static const uint8_t key[] = { 0x1a, 6, 0x0a, 1, 0, 0x12, 1, '1' };
	CHECK_EQ(check(key, sizeof(key), field, sizeof(field)), 1);
	CHECK(strcmp(field, "env.key") == 0);
	static const uint8_t value[] = { 0x1a, 7, 0x0a, 1, 'A', 0x12, 2, '1', 0 };
	CHECK_EQ(check(value, sizeof(value), field, sizeof(field)), 1);
	CHECK(strcmp(field, "env.value") == 0);
	/* A NUL in an unknown length-delimited field is not ours to judge. */
	static const uint8_t unknown[] = { 0xa2, 0x06, 2, 0, 0 };
	CHECK_EQ(check(unknown, sizeof(unknown), field, sizeof(field)), 0);
}

TEST(malformed_refused)
{
	char field[64];
	static const uint8_t truncated_len[] = { 0x12, 5, 'a' };
	CHECK_EQ(check(truncated_len, sizeof(truncated_len), field, sizeof(field)), -EBADMSG);
	static const uint8_t truncated_varint[] = { 0x40, 0x80 };
	CHECK_EQ(check(truncated_varint, sizeof(truncated_varint), field, sizeof(field)), -EBADMSG);
	static const uint8_t group[] = { 0x0b, 0x0c };
	CHECK_EQ(check(group, sizeof(group), field, sizeof(field)), -EBADMSG);
	static const uint8_t fixed64[] = { 0x09, 1, 2, 3 };
	CHECK_EQ(check(fixed64, sizeof(fixed64), field, sizeof(field)), -EBADMSG);
}
