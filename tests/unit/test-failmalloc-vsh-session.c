/* Allocation-failure sweep over one vsh session, set-up to teardown (the
 * request, the target's preparation, pipes or a PTY, forwarding, EXITED):
 * for every N, the N-th allocation fails. The client must always learn how
 * the session ended: FAILED at set-up, or READY followed by an end status
 * (EXITED with the target's code and all its output, or a FAILED status
 * when the session could not go on). Never a hang, never a leak, never a
 * READY with no end. */
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "base/buf.h"
#include "base/log.h"
#include "failmalloc.h"
#include "test.h"
#include "vsh.pb-c.h"
#include "vsh/frame.h"
#include "vsh/session.h"

enum outcome { SETUP_FAILED, EXITED_OK, ENDED_FAILED, NO_END };

/* Reads the client's side to EOF and classifies what it was told. */
static enum outcome client_saw(int fd, const char *expected, bool *ret_output_ok)
{
	struct buf in = { 0 };
	uint8_t chunk[65536];
	ssize_t n;
	enum outcome o = NO_END;
	bool first = true;
	size_t off = 0;
	char out[64] = { 0 };
	size_t out_len = 0;

	while ((n = recv(fd, chunk, sizeof(chunk), 0)) > 0)
		(void)buf_append(&in, chunk, (size_t)n, SIZE_MAX);
	for (;;) {
		const uint8_t *msg;
		size_t mlen, flen;
		if (vsh_frame_next(in.data + off, in.len - off, &msg, &mlen, &flen) <= 0)
			break;
		off += flen;
		if (first) {
			first = false;
			VmTools__Vsh__SetupConnectionResponse *r =
				vm_tools__vsh__setup_connection_response__unpack(NULL, mlen, msg);
			bool ready = r && r->status == VM_TOOLS__VSH__CONNECTION_STATUS__READY;
			vm_tools__vsh__setup_connection_response__free_unpacked(r, NULL);
			if (!ready) {
				o = SETUP_FAILED;
				break;
			}
			continue;
		}
		VmTools__Vsh__HostMessage *h = vm_tools__vsh__host_message__unpack(NULL, mlen, msg);
		if (!h)
			break;
		if (h->msg_case == VM_TOOLS__VSH__HOST_MESSAGE__MSG_DATA_MESSAGE &&
		    h->data_message->stream == VM_TOOLS__VSH__STDIO_STREAM__STDOUT_STREAM &&
		    h->data_message->data.len && out_len + h->data_message->data.len < sizeof(out)) {
			memcpy(out + out_len, h->data_message->data.data, h->data_message->data.len);
			out_len += h->data_message->data.len;
		} else if (h->msg_case == VM_TOOLS__VSH__HOST_MESSAGE__MSG_STATUS_MESSAGE) {
			if (h->status_message->status == VM_TOOLS__VSH__CONNECTION_STATUS__EXITED &&
			    h->status_message->code == 3)
				o = EXITED_OK;
			else if (h->status_message->status != VM_TOOLS__VSH__CONNECTION_STATUS__READY)
				o = ENDED_FAILED;
		}
		vm_tools__vsh__host_message__free_unpacked(h, NULL);
	}
	*ret_output_ok = strcmp(out, expected) == 0;
	buf_clear(&in);
	return o;
}

static enum outcome scenario(bool pty, unsigned long n, unsigned long *ret_count, bool *ret_output_ok)
{
	VmTools__Vsh__SetupConnectionRequest req = VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__INIT;
	VmTools__Vsh__SetupConnectionRequest__EnvEntry e = VM_TOOLS__VSH__SETUP_CONNECTION_REQUEST__ENV_ENTRY__INIT;
	VmTools__Vsh__SetupConnectionRequest__EnvEntry *envs[] = { &e };
	char *argv[] = { "/bin/sh", "-c", "echo $GREETING; exit 3" };
	struct vsh_policy policy = { .allow_user_switch = true };
	uint8_t frame[VSH_FRAME_MAX];
	char summary[512];
	int sv[2];

	e.key = "GREETING";
	e.value = "hi";
	req.argv = argv;
	req.n_argv = 3;
	req.env = envs;
	req.n_env = 1;
	req.nopty = !pty;
	req.window_rows = 24;
	req.window_cols = 80;
	int len = vsh_frame_encode(&req.base, frame, sizeof(frame));
	if (len < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return NO_END;
	/* A large buffer: the test reads only once the session is over. */
	(void)setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &(int){ 1 << 20 }, sizeof(int));
	failmalloc_arm(n);
	(void)vsh_session_run(sv[0], frame, (size_t)len, &policy, summary, sizeof(summary));
	*ret_count = failmalloc_disarm();
	/* A terminal's line discipline ends lines with CR LF. */
	enum outcome o = client_saw(sv[1], pty ? "hi\r\n" : "hi\n", ret_output_ok);
	close(sv[1]);
	/* The target is gone or going (hung up): reap it. */
	while (waitpid(-1, NULL, 0) > 0)
		;
	return o;
}

static void sweep(bool pty)
{
	unsigned long total, count;
	bool output_ok;

	log_set_max_level(LOG_CRIT);
	/* A hang ends the test program (and fails it) instead of the suite. */
	alarm(120);
	CHECK_EQ(scenario(pty, 0, &total, &output_ok), EXITED_OK);
	CHECK(output_ok);
	CHECK(total > 10);
	for (unsigned long n = 1; n <= total && !test_failed_flag; n++) {
		enum outcome o = scenario(pty, n, &count, &output_ok);
		if (o == NO_END || (o == EXITED_OK && !output_ok)) {
			snprintf(test_failure, sizeof(test_failure), "allocation %lu of %lu failed: %s", n, total,
				 o == NO_END ? "the client was never told how the session ended" : "output lost");
			test_failed_flag = true;
		}
		CHECK(failmalloc_injected());
	}
	alarm(0);
	if (!test_failed_flag)
		printf("# %s: %lu allocations, each failed once\n", pty ? "pty" : "pipes", total);
}

TEST(sweep_vsh_session_pipes)
{
	sweep(false);
}

TEST(sweep_vsh_session_pty)
{
	sweep(true);
}
