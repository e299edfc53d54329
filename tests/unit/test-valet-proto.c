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
