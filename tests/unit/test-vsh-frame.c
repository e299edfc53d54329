/* vsh framing against the worked examples of the original's wire format. */
#include "test.h"
#include "vsh.pb-c.h"
#include "vsh/frame.h"

static int hexcmp(const uint8_t *got, int len, const char *hex)
{
	char buf[2 * VSH_FRAME_MAX + 1];
	for (int i = 0; i < len; i++)
		sprintf(buf + 2 * i, "%02x", got[i]);
	buf[2 * len] = 0;
	return strcmp(buf, hex);
}

TEST(guest_stdin_data)
{
	uint8_t out[VSH_FRAME_MAX];
	VmTools__Vsh__DataMessage d = VM_TOOLS__VSH__DATA_MESSAGE__INIT;
	VmTools__Vsh__GuestMessage g = VM_TOOLS__VSH__GUEST_MESSAGE__INIT;
	d.stream = VM_TOOLS__VSH__STDIO_STREAM__STDIN_STREAM;
	d.data.data = (uint8_t *)"ls\n";
	d.data.len = 3;
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_DATA_MESSAGE;
	g.data_message = &d;
	int n = vsh_frame_encode(&g.base, out, sizeof(out));
	CHECK_EQ(n, 13);
	CHECK(hexcmp(out, n, "090000000a07080112036c730a") == 0);
	/* EOF is empty data. */
	d.data.len = 0;
	n = vsh_frame_encode(&g.base, out, sizeof(out));
	CHECK(hexcmp(out, n, "040000000a020801") == 0);
}

TEST(guest_resize_and_signal)
{
	uint8_t out[VSH_FRAME_MAX];
	VmTools__Vsh__WindowResizeMessage r = VM_TOOLS__VSH__WINDOW_RESIZE_MESSAGE__INIT;
	VmTools__Vsh__GuestMessage g = VM_TOOLS__VSH__GUEST_MESSAGE__INIT;
	r.rows = 24;
	r.cols = 80;
	g.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_RESIZE_MESSAGE;
	g.resize_message = &r;
	int n = vsh_frame_encode(&g.base, out, sizeof(out));
	CHECK(hexcmp(out, n, "060000001a0408181050") == 0);
	VmTools__Vsh__GuestMessage s = VM_TOOLS__VSH__GUEST_MESSAGE__INIT;
	s.msg_case = VM_TOOLS__VSH__GUEST_MESSAGE__MSG_SIGNAL;
	s.signal = VM_TOOLS__VSH__SIGNAL__SIGNAL_INT;
	n = vsh_frame_encode(&s.base, out, sizeof(out));
	CHECK(hexcmp(out, n, "020000002002") == 0);
}

TEST(host_exited_and_ready)
{
	uint8_t out[VSH_FRAME_MAX];
	VmTools__Vsh__ConnectionStatusMessage st = VM_TOOLS__VSH__CONNECTION_STATUS_MESSAGE__INIT;
	VmTools__Vsh__HostMessage h = VM_TOOLS__VSH__HOST_MESSAGE__INIT;
	st.status = VM_TOOLS__VSH__CONNECTION_STATUS__EXITED;
	st.description = "target process has exited";
	st.code = 3;
	h.msg_case = VM_TOOLS__VSH__HOST_MESSAGE__MSG_STATUS_MESSAGE;
	h.status_message = &st;
	int n = vsh_frame_encode(&h.base, out, sizeof(out));
	CHECK(hexcmp(out, n,
		     "21000000121f080212197461726765742070726f636573732068617320657869746564"
		     "1806") == 0);
	VmTools__Vsh__SetupConnectionResponse resp = VM_TOOLS__VSH__SETUP_CONNECTION_RESPONSE__INIT;
	resp.status = VM_TOOLS__VSH__CONNECTION_STATUS__READY;
	resp.description = "vsh ready";
	resp.pid = 1234;
	n = vsh_frame_encode(&resp.base, out, sizeof(out));
	CHECK(hexcmp(out, n,
		     "1000000008011209767368207265616479"
		     "18d209") == 0);
}

TEST(oversized_message_refused_on_send)
{
	static uint8_t big[4100];
	uint8_t out[VSH_FRAME_MAX + 100];
	VmTools__Vsh__DataMessage d = VM_TOOLS__VSH__DATA_MESSAGE__INIT;
	VmTools__Vsh__HostMessage h = VM_TOOLS__VSH__HOST_MESSAGE__INIT;
	h.msg_case = VM_TOOLS__VSH__HOST_MESSAGE__MSG_DATA_MESSAGE;
	h.data_message = &d;
	d.stream = VM_TOOLS__VSH__STDIO_STREAM__STDOUT_STREAM;
	d.data.data = big;
	d.data.len = VSH_MAX_DATA;
	CHECK(vsh_frame_encode(&h.base, out, sizeof(out)) <= VSH_FRAME_MAX);
	d.data.len = 4090;
	CHECK_EQ(vsh_frame_encode(&h.base, out, sizeof(out)), -EMSGSIZE);
}

TEST(reader_whole_partial_and_oversized)
{
	const uint8_t *msg;
	size_t mlen, flen;
	const uint8_t two[] = { 2, 0, 0, 0, 0x20, 0x02, 0, 0, 0, 0 };
	CHECK_EQ(vsh_frame_next(two, 3, &msg, &mlen, &flen), 0);
	CHECK_EQ(vsh_frame_next(two, 5, &msg, &mlen, &flen), 0);
	CHECK_EQ(vsh_frame_next(two, sizeof(two), &msg, &mlen, &flen), 1);
	CHECK_EQ(mlen, 2);
	CHECK_EQ(flen, 6);
	CHECK(msg == two + 4);
	/* A zero-length frame is legal: the empty message. */
	CHECK_EQ(vsh_frame_next(two + 6, 4, &msg, &mlen, &flen), 1);
	CHECK_EQ(mlen, 0);
	const uint8_t at_limit[4] = { 0x00, 0x10, 0, 0 }; /* 4096 */
	const uint8_t over[4] = { 0x01, 0x10, 0, 0 };	  /* 4097 */
	const uint8_t huge[4] = { 0xff, 0xff, 0xff, 0xff };
	CHECK_EQ(vsh_frame_next(at_limit, 4, &msg, &mlen, &flen), 0);
	CHECK_EQ(vsh_frame_next(over, 4, &msg, &mlen, &flen), -EMSGSIZE);
	CHECK_EQ(vsh_frame_next(huge, 4, &msg, &mlen, &flen), -EMSGSIZE);
}
