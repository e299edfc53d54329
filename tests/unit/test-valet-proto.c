/* The C code of proto/valet/v1 is generated from a copy in which each proto3
 * `optional` field is a one-field oneof (scripts/protoc-c-proto3.py). These
 * cases check that this is the same wire format: presence survives, an
 * explicit zero included, in both directions. */
#include "test.h"
#include "valet/v1/files.pb-c.h"
#include "valet/v1/process.pb-c.h"
#include "valet/v1/snapshot.pb-c.h"
#include "valet/v1/tunnel.pb-c.h"

/* WriteHeader{path: "/a", mode: 0} as protoc encodes it for proto3
 * optional: the field is sent although it is zero. */
static const uint8_t header_mode_zero[] = { 0x0a, 0x02, '/', 'a', 0x10, 0x00 };
/* The same without mode: absent. */
static const uint8_t header_no_mode[] = { 0x0a, 0x02, '/', 'a' };

TEST(optional_zero_is_present_when_decoded)
{
	Valet__V1__WriteHeader *h = valet__v1__write_header__unpack(NULL, sizeof(header_mode_zero), header_mode_zero);
	CHECK(h);
	CHECK_STR(h->path, "/a");
	CHECK_EQ(h->_mode_case, VALET__V1__WRITE_HEADER___MODE_MODE);
	CHECK_EQ(h->mode, 0);
	valet__v1__write_header__free_unpacked(h, NULL);

	h = valet__v1__write_header__unpack(NULL, sizeof(header_no_mode), header_no_mode);
	CHECK(h);
	CHECK_EQ(h->_mode_case, VALET__V1__WRITE_HEADER___MODE__NOT_SET);
	valet__v1__write_header__free_unpacked(h, NULL);
}

TEST(optional_zero_is_sent_when_encoded)
{
	Valet__V1__WriteHeader h = VALET__V1__WRITE_HEADER__INIT;
	uint8_t out[32];

	h.path = "/a";
	CHECK_EQ(valet__v1__write_header__pack(&h, out), sizeof(header_no_mode));
	CHECK(memcmp(out, header_no_mode, sizeof(header_no_mode)) == 0);
	h._mode_case = VALET__V1__WRITE_HEADER___MODE_MODE;
	h.mode = 0;
	CHECK_EQ(valet__v1__write_header__pack(&h, out), sizeof(header_mode_zero));
	CHECK(memcmp(out, header_mode_zero, sizeof(header_mode_zero)) == 0);
}

TEST(every_service_is_described)
{
	CHECK_STR(valet__v1__files__descriptor.name, "valet.v1.Files");
	CHECK_EQ(valet__v1__files__descriptor.n_methods, 9);
	CHECK_STR(valet__v1__process__descriptor.name, "valet.v1.Process");
	CHECK_EQ(valet__v1__process__descriptor.n_methods, 6);
	CHECK_STR(valet__v1__tunnel__descriptor.name, "valet.v1.Tunnel");
	CHECK_EQ(valet__v1__tunnel__descriptor.n_methods, 1);
	CHECK_STR(valet__v1__snapshot__descriptor.name, "valet.v1.Snapshot");
	CHECK_EQ(valet__v1__snapshot__descriptor.n_methods, 3);
}

#include "base/macro.h"
#include "pb/bytes-field.h"

/* pb_bytes_field() finds ReadResponse.data and TreeResponse.data as
 * protobuf-c encodes them (any length, 0 included) and declines
 * everything else, which the caller decodes. */
TEST(bytes_field_of_data_messages)
{
	static uint8_t big[300000], out[300100];
	const size_t sizes[] = { 0, 1, 127, 128, 16383, 16384, sizeof(big) };
	const uint8_t *p;
	size_t n;
	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 31);
	for (size_t i = 0; i < ARRAY_SIZE(sizes); i++) {
		Valet__V1__ReadResponse m = VALET__V1__READ_RESPONSE__INIT;
		m.part_case = VALET__V1__READ_RESPONSE__PART_DATA;
		m.data.data = big;
		m.data.len = sizes[i];
		size_t len = valet__v1__read_response__pack(&m, out);
		CHECK(pb_bytes_field(out, len, 2, &p, &n));
		CHECK_EQ(n, sizes[i]);
		CHECK(p == out + len - n && memcmp(p, big, n) == 0);
		/* Cut short, or with a byte more: not the whole message. */
		CHECK(!pb_bytes_field(out, len - 1, 2, &p, &n));
		CHECK(!pb_bytes_field(out, len + 1, 2, &p, &n));
		CHECK(!pb_bytes_field(out, len, 3, &p, &n));
	}
	Valet__V1__ReadResponse sha = VALET__V1__READ_RESPONSE__INIT;
	sha.part_case = VALET__V1__READ_RESPONSE__PART_SHA256;
	sha.sha256.data = big;
	sha.sha256.len = 32;
	size_t len = valet__v1__read_response__pack(&sha, out);
	CHECK(!pb_bytes_field(out, len, 2, &p, &n));
	CHECK(pb_bytes_field(out, len, 3, &p, &n) && n == 32);
	Valet__V1__TreeResponse t = VALET__V1__TREE_RESPONSE__INIT;
	t.part_case = VALET__V1__TREE_RESPONSE__PART_DATA;
	t.data.data = big;
	t.data.len = 5;
	len = valet__v1__tree_response__pack(&t, out);
	CHECK(pb_bytes_field(out, len, 2, &p, &n) && n == 5);
	CHECK(!pb_bytes_field(out, 0, 2, &p, &n));
	/* A varint that never ends. */
	const uint8_t endless[] = { 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	CHECK(!pb_bytes_field(endless, sizeof(endless), 2, &p, &n));
}
