/* files-service/frame.c: the frames inside a BATCH packet, put and read
 * back, a payload cut anywhere refused, and the span of whole frames one
 * packet carries. */
#include <errno.h>
#include <string.h>

#include "files-service/frame.h"
#include "test.h"

TEST(batch_put_and_next)
{
	uint8_t buf[256];
	size_t len = 0, off = 0, n;
	const uint8_t *data;
	uint8_t kind;

	fsvc_batch_put(buf, &len, FSVC_ENTRY, "ab", 2, "cd", 2);
	fsvc_batch_put(buf, &len, FSVC_DATA, NULL, 0, NULL, 0);
	memcpy(fsvc_batch_add(buf, &len, FSVC_MSG, 3), "xyz", 3);
	CHECK_EQ(len, 3 * FSVC_SUB_HEAD + 7);
	CHECK_EQ(fsvc_batch_next(buf, len, &off, &kind, &data, &n), 1);
	CHECK_EQ(kind, FSVC_ENTRY);
	CHECK_EQ(n, 4);
	CHECK(memcmp(data, "abcd", 4) == 0);
	CHECK_EQ(fsvc_batch_next(buf, len, &off, &kind, &data, &n), 1);
	CHECK_EQ(kind, FSVC_DATA);
	CHECK_EQ(n, 0);
	CHECK_EQ(fsvc_batch_next(buf, len, &off, &kind, &data, &n), 1);
	CHECK_EQ(kind, FSVC_MSG);
	CHECK(n == 3 && memcmp(data, "xyz", 3) == 0);
	CHECK_EQ(fsvc_batch_next(buf, len, &off, &kind, &data, &n), 0);
	CHECK_EQ(off, len);
}

/* Every length short of the whole: the frame cut (its head or its
 * payload) is refused, after the whole frames before it. */
TEST(batch_cut_anywhere_refused)
{
	uint8_t buf[64];
	size_t len = 0;

	fsvc_batch_put(buf, &len, FSVC_ENTRY, "hello", 5, NULL, 0);
	fsvc_batch_put(buf, &len, FSVC_DATA, "world!", 6, NULL, 0);
	for (size_t cut = 1; cut < len; cut++) {
		size_t off = 0, n;
		const uint8_t *data;
		uint8_t kind;
		int r, frames = 0;
		while ((r = fsvc_batch_next(buf, cut, &off, &kind, &data, &n)) > 0)
			frames++;
		CHECK_EQ(frames, cut >= FSVC_SUB_HEAD + 5 ? 1 : 0);
		/* Cut right after the first frame: a batch of one. */
		CHECK_EQ(r, cut == FSVC_SUB_HEAD + 5 ? 0 : -EBADMSG);
	}
	/* A length far beyond the payload. */
	uint8_t big[FSVC_SUB_HEAD] = { FSVC_DATA, 0xff, 0xff, 0xff, 0xff };
	size_t off = 0, n;
	const uint8_t *data;
	uint8_t kind;
	CHECK_EQ(fsvc_batch_next(big, sizeof(big), &off, &kind, &data, &n), -EBADMSG);
}

TEST(batch_span_whole_frames)
{
	static uint8_t buf[3 * FSVC_CHUNK], junk[FSVC_CHUNK];
	size_t len = 0, one = 1000;

	/* Frames of 1000 + 5: as many as fit in max, never a part of one. */
	for (int i = 0; i < 10; i++)
		fsvc_batch_put(buf, &len, FSVC_DATA, junk, one, NULL, 0);
	CHECK_EQ(fsvc_batch_span(buf, len, 3 * (one + FSVC_SUB_HEAD)), 3 * (one + FSVC_SUB_HEAD));
	CHECK_EQ(fsvc_batch_span(buf, len, 3 * (one + FSVC_SUB_HEAD) + 1004), 3 * (one + FSVC_SUB_HEAD));
	CHECK_EQ(fsvc_batch_span(buf, len, SIZE_MAX), len);
	/* The first frame always, even above max. */
	CHECK_EQ(fsvc_batch_span(buf, len, 10), one + FSVC_SUB_HEAD);
	len = 0;
	fsvc_batch_put(buf, &len, FSVC_DATA, junk, FSVC_CHUNK - FSVC_SUB_HEAD, NULL, 0);
	fsvc_batch_put(buf, &len, FSVC_ENTRY, junk, 1, NULL, 0);
	CHECK_EQ(fsvc_batch_span(buf, len, FSVC_CHUNK), FSVC_CHUNK);
	CHECK_EQ(fsvc_batch_span(buf, 0, FSVC_CHUNK), 0);
}
