/* Frame boundaries are followed from the 9-byte headers alone (length,
 * type, stream id): payloads are skipped, never read, so this costs a few
 * instructions per frame, not per byte, and bytes go on in long runs. */
#include "rpc/reset-filter.h"

#include <string.h>

#include "base/macro.h"

#define PREFACE_LEN 24
#define FRAME_HEAD 9
#define TYPE_HEADERS 0x1
#define TYPE_RST_STREAM 0x3
#define RST_STREAM_LEN 4

void reset_filter_init(struct reset_filter *f)
{
	*f = (struct reset_filter){ .preface_left = PREFACE_LEN };
}

/* Notes what the header opens; true if its frame is to be dropped. */
static bool frame_begins(struct reset_filter *f, const uint8_t *h)
{
	size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
	uint8_t type = h[3];
	uint32_t stream = ((uint32_t)h[5] << 24 | (uint32_t)h[6] << 16 | (uint32_t)h[7] << 8 | h[8]) & 0x7fffffffu;
	bool client_stream = stream & 1;

	f->payload_left = len;
	if (type == TYPE_HEADERS && client_stream && stream > f->highest_opened)
		f->highest_opened = stream;
	f->dropping = type == TYPE_RST_STREAM && len == RST_STREAM_LEN && client_stream && stream > f->highest_opened;
	if (f->dropping)
		f->dropped++;
	return f->dropping;
}

/* Passes data[*run..at), if any, and skips the next skip bytes: the run
 * then starts after them. */
static int pass_then_skip(const uint8_t *data, size_t *run, size_t at, size_t skip, reset_filter_pass_fn pass,
			  void *arg)
{
	size_t from = *run;

	*run = at + skip;
	return at > from ? pass(data + from, at - from, arg) : 0;
}

int reset_filter_feed(struct reset_filter *f, const uint8_t *data, size_t len, reset_filter_pass_fn pass, void *arg)
{
	size_t i = 0, run = 0; /* data[run..i) is still to be passed */
	int r;

	while (i < len) {
		size_t n;
		if (f->preface_left) {
			n = MIN(f->preface_left, len - i);
			f->preface_left -= n;
		} else if (f->payload_left) {
			n = MIN(f->payload_left, len - i);
			f->payload_left -= n;
			if (f->dropping && (r = pass_then_skip(data, &run, i, n, pass, arg)) < 0)
				return r;
		} else if (f->head_len == 0 && len - i >= FRAME_HEAD) {
			n = FRAME_HEAD;
			if (frame_begins(f, data + i) && (r = pass_then_skip(data, &run, i, n, pass, arg)) < 0)
				return r;
		} else {
			/* A header cut by the end of a read: kept, and passed
			 * from the copy once it is whole (unless dropped). */
			n = MIN(FRAME_HEAD - f->head_len, len - i);
			if ((r = pass_then_skip(data, &run, i, n, pass, arg)) < 0)
				return r;
			memcpy(f->head + f->head_len, data + i, n);
			f->head_len += n;
			if (f->head_len == FRAME_HEAD) {
				f->head_len = 0;
				if (!frame_begins(f, f->head) && (r = pass(f->head, FRAME_HEAD, arg)) < 0)
					return r;
			}
		}
		i += n;
	}
	return pass_then_skip(data, &run, len, 0, pass, arg);
}
