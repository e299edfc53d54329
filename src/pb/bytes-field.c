#include "pb/bytes-field.h"

bool pb_bytes_field(const uint8_t *msg, size_t len, unsigned field, const uint8_t **ret, size_t *ret_len)
{
	uint64_t n = 0;
	size_t i = 1;

	/* The tag (field number, wire type 2) in one byte, the varint length,
	 * the bytes up to the end of the message: anything else is decoded. */
	if (field > 15 || len < 2 || msg[0] != ((field << 3) | 2))
		return false;
	for (unsigned shift = 0;; shift += 7) {
		if (i >= len || shift > 63)
			return false;
		uint8_t b = msg[i++];
		n |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80))
			break;
	}
	if (n != len - i)
		return false;
	*ret = msg + i;
	*ret_len = (size_t)n;
	return true;
}
