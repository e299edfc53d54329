/* vshd: the vsock shell server. Accepts host connections (peer policy as
 * maitred's) and runs each session in a forked process of its own, so a
 * crash ends one session only. Reaps its children; caps concurrent
 * sessions. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/notify.h"
#include "base/parse.h"
#include "loop/loop.h"
#include "net/sock.h"
#include "vsh/frame.h"
#include "vsh/session.h"
#include "vsh.pb-c.h"

#define VSHD_MAX_LISTEN 8

struct vshd {
	struct loop *loop;
	struct peer_policy peers;
	struct vsh_policy policy;
	unsigned max_sessions, sessions;
	int listen_fds[VSHD_MAX_LISTEN];
	struct loop_io *listen_ios[VSHD_MAX_LISTEN];
	unsigned n_listen;
};

static void usage(FILE *f)
{
	fputs("Usage: vshd [OPTIONS]\n"
	      "\n"
	      "Serves vsh sessions: a shell or a command in this VM, for the host.\n"
	      "\n"
	      "  --listen ADDR            listen on ADDR (repeatable; default vsock:-1:9001)\n"
	      "                           ADDR is " ADDR_LISTEN_SYNTAX "\n"
	      "  --allow-cid CID          also accept vsock peers with this CID (default: only 2)\n"
	      "  --default-user NAME      user for requests that name none (default: vshd's own)\n"
	      "  --no-allow-user-switch   refuse requests for other users\n"
	      "  --max-sessions N         concurrent sessions (default 64)\n"
	      "  --log-kmsg               log to /dev/kmsg instead of stderr (when started by init)\n"
	      "  -h, --help               show this help\n",
	      f);
}

/* Answers FAILED to a client we will not serve, without waiting for its
 * request (it reads the reply after sending). */
static void refuse(int fd, const char *why)
{
	VmTools__Vsh__SetupConnectionResponse resp = VM_TOOLS__VSH__SETUP_CONNECTION_RESPONSE__INIT;
	uint8_t frame[VSH_FRAME_MAX];
	resp.status = VM_TOOLS__VSH__CONNECTION_STATUS__FAILED;
	resp.description = (char *)why;
	int n = vsh_frame_encode(&resp.base, frame, sizeof(frame));
	if (n > 0)
		(void)!send(fd, frame, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static void on_session_end(pid_t pid, int status, void *userdata)
{
	struct vshd *d = userdata;
	d->sessions--;
	if (WIFSIGNALED(status))
		log_warning("session %d crashed: signal %d", (int)pid, WTERMSIG(status));
}

static void run_session(struct vshd *d, int fd, const char *peer)
{
	char summary[512] = "";

	/* Nothing of the listener's process is ours to use any more. */
	for (unsigned i = 0; i < d->n_listen; i++)
		safe_close(d->listen_fds[i]);
	loop_free_after_fork(d->loop);
	(void)vsh_session_run(fd, &d->policy, summary, sizeof(summary));
	log_info("session from %s: %s", peer, summary);
	_exit(0);
}

static void on_listener(struct loop_io *io _unused_, int lfd, uint32_t events _unused_, void *userdata)
{
	struct vshd *d = userdata;

	for (int i = 0; i < 32; i++) {
		struct peer peer;
		int fd, r = sock_accept(lfd, &fd, &peer);
		if (r == -EAGAIN || r == -EINTR)
			return;
		if (r < 0) {
			log_warning_errno(r, "accept failed");
			return;
		}
		if (!peer_policy_check(&d->peers, &peer)) {
			log_warning("refused connection from %s: not allowed by the peer policy", peer.desc);
			safe_close(fd);
			continue;
		}
		if (d->sessions >= d->max_sessions) {
			log_warning("refused connection from %s: %u sessions already", peer.desc, d->sessions);
			refuse(fd, "too many sessions");
			safe_close(fd);
			continue;
		}
		pid_t pid = fork();
		if (pid < 0) {
			log_warning_errno(errno, "fork failed");
			refuse(fd, "could not start a session");
			safe_close(fd);
			continue;
		}
		if (pid == 0)
			run_session(d, fd, peer.desc);
		safe_close(fd);
		d->sessions++;
		(void)loop_watch_child(d->loop, pid, on_session_end, d, NULL);
	}
}

static void on_stop(struct loop *l, int signo, void *userdata _unused_)
{
	log_info("received %s, stopping (sessions go on)", strsignal(signo));
	loop_exit(l, 0);
}

static void on_orphan(struct loop *l _unused_, pid_t pid _unused_, int status _unused_, void *userdata _unused_) {}

int main(int argc, char **argv)
{
	enum { OPT_LISTEN = 0x100, OPT_ALLOW_CID, OPT_DEFAULT_USER, OPT_NO_SWITCH, OPT_MAX, OPT_KMSG };
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "allow-cid", required_argument, NULL, OPT_ALLOW_CID },
		{ "default-user", required_argument, NULL, OPT_DEFAULT_USER },
		{ "no-allow-user-switch", no_argument, NULL, OPT_NO_SWITCH },
		{ "max-sessions", required_argument, NULL, OPT_MAX },
		{ "log-kmsg", no_argument, NULL, OPT_KMSG },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct vshd d = { .max_sessions = 64, .policy = { .allow_user_switch = true } };
	const char *listen[VSHD_MAX_LISTEN];
	unsigned n_listen = 0;
	bool kmsg = false;
	uint32_t v;
	int c, r;

	peer_policy_init(&d.peers);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
		switch (c) {
		case OPT_LISTEN: {
			struct addr a;
			if (addr_parse(optarg, &a) < 0 || a.family == ADDR_HVSOCK || n_listen == VSHD_MAX_LISTEN) {
				fprintf(stderr, "vshd: invalid --listen address '%s': expected %s\n", optarg,
					ADDR_LISTEN_SYNTAX);
				return 2;
			}
			listen[n_listen++] = optarg;
			break;
		}
		case OPT_ALLOW_CID:
			if (parse_u32(optarg, &v) < 0 || peer_policy_allow_cid(&d.peers, v) < 0) {
				fprintf(stderr, "vshd: invalid --allow-cid '%s': expected a CID number\n", optarg);
				return 2;
			}
			break;
		case OPT_DEFAULT_USER: d.policy.default_user = optarg; break;
		case OPT_NO_SWITCH: d.policy.allow_user_switch = false; break;
		case OPT_MAX:
			if (parse_u32(optarg, &v) < 0 || v == 0 || v > 65536) {
				fprintf(stderr, "vshd: invalid --max-sessions '%s': expected 1-65536\n", optarg);
				return 2;
			}
			d.max_sessions = v;
			break;
		case OPT_KMSG: kmsg = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vshd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (n_listen == 0)
		listen[n_listen++] = "vsock:-1:9001";

	log_setup("vshd", LOG_SINK_STDERR);
	if (kmsg && log_open_kmsg() < 0)
		log_warning_errno(errno, "cannot open /dev/kmsg, logging to stderr");
	/* Writing to a vanished client must fail with EPIPE, not kill the
	 * session; targets still start with SIGPIPE at its default. */
	signal(SIGPIPE, SIG_IGN);
	/* The service manager's socket is ours alone: taken out of the
	 * environment before any session starts. */
	struct notify notify;
	if (notify_init(&notify) < 0)
		log_warning("ignoring an unusable $NOTIFY_SOCKET");

	r = loop_new(&d.loop);
	if (r < 0)
		return log_error_errno(r, "could not create the event loop"), 1;
	loop_set_orphan_handler(d.loop, on_orphan, &d);
	(void)loop_add_signal(d.loop, SIGTERM, on_stop, &d);
	(void)loop_add_signal(d.loop, SIGINT, on_stop, &d);
	for (unsigned i = 0; i < n_listen; i++) {
		struct addr a;
		(void)addr_parse(listen[i], &a);
		r = sock_listen(&a, 32, &d.listen_fds[d.n_listen]);
		if (r < 0)
			return log_error_errno(r, "could not listen on %s", listen[i]), 1;
		d.n_listen++;
		r = loop_add_io(d.loop, d.listen_fds[d.n_listen - 1], EPOLLIN, on_listener, &d,
				&d.listen_ios[d.n_listen - 1]);
		if (r < 0)
			return log_error_errno(r, "could not watch %s", listen[i]), 1;
		log_info("listening on %s", listen[i]);
	}
	(void)notify_send(&notify, "READY=1");
	r = loop_run(d.loop);
	(void)notify_send(&notify, "STOPPING=1");
	for (unsigned i = 0; i < d.n_listen; i++) {
		struct addr a;
		(void)addr_parse(listen[i], &a);
		if (addr_unix_path(&a))
			(void)unlink(addr_unix_path(&a));
		loop_io_free(d.listen_ios[i]);
		safe_close(d.listen_fds[i]);
	}
	loop_free(d.loop);
	return r < 0 ? 1 : 0;
}
