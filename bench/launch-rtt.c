/* Round trips of "run /bin/true and wait for it" from a C client, the same
 * for every peer: maitred (LaunchProcess over our gRPC client core),
 * qemu-ga (guest-exec + guest-exec-status over its JSON protocol) and the
 * floor (posix_spawn + waitpid here). Calls are interleaved round by round
 * so that load drift hits all three alike. Prints "NAME p50 p99" in µs. */
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "guest.pb-c.h"
#include "rpc/client-session.h"

extern char **environ;
static char *true_argv[] = { "/bin/true", NULL };

static uint64_t now_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		perror(path);
		exit(1);
	}
	return fd;
}

static void write_all(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w <= 0) {
			perror("write");
			exit(1);
		}
		p = (const char *)p + w;
		n -= (size_t)w;
	}
}

/* --- maitred ----------------------------------------------------------- */

static int m_fd;
static struct rpc_client_session *m_session;
static bool m_done;

static void m_reply(int code, const char *message, const uint8_t *data, size_t len, void *ud)
{
	(void)ud;
	VmTools__LaunchProcessResponse *r = code ? NULL : vm_tools__launch_process_response__unpack(NULL, len, data);
	if (!r || r->status != VM_TOOLS__PROCESS_STATUS__EXITED || r->code != 0) {
		fprintf(stderr, "maitred: unexpected answer %d %s\n", code, message);
		exit(1);
	}
	vm_tools__launch_process_response__free_unpacked(r, NULL);
	m_done = true;
}

static void maitred_call(void)
{
	VmTools__LaunchProcessRequest req = VM_TOOLS__LAUNCH_PROCESS_REQUEST__INIT;
	uint8_t buf[16384];

	req.n_argv = 1;
	req.argv = true_argv;
	req.wait_for_exit = true;
	m_done = false;
	if (rpc_client_session_call(m_session, "/vm_tools.Maitred/LaunchProcess", &req.base, 0, m_reply, NULL) < 0)
		exit(1);
	while (!m_done) {
		const uint8_t *d;
		ssize_t n;
		while ((n = rpc_client_session_pull(m_session, &d)) > 0)
			write_all(m_fd, d, (size_t)n);
		if (m_done)
			break;
		n = read(m_fd, buf, sizeof(buf));
		if (n <= 0 || rpc_client_session_feed(m_session, buf, (size_t)n) < 0) {
			fprintf(stderr, "maitred: connection lost\n");
			exit(1);
		}
	}
	/* Flush the WINDOW_UPDATEs etc. now rather than inside the next call. */
	const uint8_t *d;
	ssize_t n;
	while ((n = rpc_client_session_pull(m_session, &d)) > 0)
		write_all(m_fd, d, (size_t)n);
}

/* --- qemu-ga ----------------------------------------------------------- */

static int q_fd;
static char q_buf[4096];
static size_t q_len;

static void q_line(char *out, size_t size)
{
	for (;;) {
		char *nl = memchr(q_buf, '\n', q_len);
		if (nl) {
			size_t l = (size_t)(nl - q_buf);
			snprintf(out, size, "%.*s", (int)l, q_buf);
			memmove(q_buf, nl + 1, q_len - l - 1);
			q_len -= l + 1;
			return;
		}
		ssize_t n = read(q_fd, q_buf + q_len, sizeof(q_buf) - q_len);
		if (n <= 0) {
			fprintf(stderr, "qemu-ga: connection lost\n");
			exit(1);
		}
		q_len += (size_t)n;
	}
}

static void qga_call(void)
{
	char line[1024], req[256];
	const char *exec = "{\"execute\":\"guest-exec\",\"arguments\":{\"path\":\"/bin/true\"}}\n";
	write_all(q_fd, exec, strlen(exec));
	q_line(line, sizeof(line));
	char *p = strstr(line, "\"pid\":");
	if (!p) {
		fprintf(stderr, "qemu-ga: %s\n", line);
		exit(1);
	}
	int pid = atoi(p + 6);
	for (;;) {
		int n = snprintf(req, sizeof(req), "{\"execute\":\"guest-exec-status\",\"arguments\":{\"pid\":%d}}\n",
				 pid);
		write_all(q_fd, req, (size_t)n);
		q_line(line, sizeof(line));
		if (strstr(line, "\"exited\": true")) {
			if (!strstr(line, "\"exitcode\": 0")) {
				fprintf(stderr, "qemu-ga: %s\n", line);
				exit(1);
			}
			return;
		}
	}
}

/* --- floor ------------------------------------------------------------- */

static void floor_call(void)
{
	pid_t pid;
	int st;
	if (posix_spawn(&pid, "/bin/true", NULL, NULL, true_argv, environ) != 0 || waitpid(pid, &st, 0) != pid ||
	    st != 0)
		exit(1);
}

static int cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: launch-rtt MAITRED_SOCKET QGA_SOCKET N\n");
		return 2;
	}
	int n = atoi(argv[3]);
	m_fd = connect_unix(argv[1]);
	q_fd = connect_unix(argv[2]);
	if (rpc_client_session_new(&m_session) < 0)
		return 1;
	struct {
		const char *name;
		void (*call)(void);
		uint64_t *lat;
	} peers[] = { { "floor", floor_call, NULL }, { "maitred", maitred_call, NULL }, { "qemu-ga", qga_call, NULL } };
	for (int k = 0; k < 3; k++) {
		peers[k].lat = calloc((size_t)n, sizeof(uint64_t));
		for (int i = 0; i < 50; i++)
			peers[k].call();
	}
	for (int i = 0; i < n; i++)
		for (int k = 0; k < 3; k++) {
			uint64_t t = now_ns();
			peers[k].call();
			peers[k].lat[i] = now_ns() - t;
		}
	for (int k = 0; k < 3; k++) {
		qsort(peers[k].lat, (size_t)n, sizeof(uint64_t), cmp);
		printf("%s %.0f %.0f\n", peers[k].name, peers[k].lat[n / 2] / 1000.0,
		       peers[k].lat[(size_t)n * 99 / 100] / 1000.0);
		free(peers[k].lat);
	}
	rpc_client_session_free(m_session);
	close(m_fd);
	close(q_fd);
	return 0;
}
