/* vshd: the vsock shell server. Accepts host connections (peer policy as
 * maitred's), holds them until their SetupConnectionRequest has arrived
 * (pending.c), then runs each session in a forked process of its own, so a
 * crash ends one session only. Reaps its children; caps concurrent
 * sessions. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/wait-status.h"
#include "base/notify.h"
#include "base/parse.h"
#include "loop/loop.h"
#include "net/sock.h"
#include "vsh/frame.h"
#include "vsh/session.h"
#include "vsh/users.h"
#include "vshd/pending.h"

#define VSHD_MAX_LISTEN 8

struct vshd {
	struct loop *loop;
	struct peer_policy peers;
	struct vsh_policy policy;
	unsigned max_sessions, sessions;
	struct pending_set *pending;
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
	      "  --no-allow-user-switch   serve the default user only; others get FAILED\n"
	      "  --max-sessions N         concurrent sessions (default 64)\n"
	      "  --max-pending N          connections still to send their request (default 64;\n"
	      "                           at the cap the oldest is dropped)\n"
	      "  --setup-timeout SECS     time a client has to send its request (default 10)\n"
	      "  --log-kmsg               log to /dev/kmsg instead of stderr (when started by init)\n"
	      "  -h, --help               show this help\n",
	      f);
}

/* Every child of vshd is a session, so the loop's hook for reaped pids
 * nobody registered releases the slot: nothing is registered per session,
 * so there is nothing that could fail and leak a slot. */
static void on_reaped(struct loop *l _unused_, pid_t pid, int status, void *userdata)
{
	struct vshd *d = userdata;
	if (d->sessions > 0)
		d->sessions--;
	if (WIFSIGNALED(status))
		log_warning("session %d crashed: %s", (int)pid, wait_status_str(status, (char[WAIT_STATUS_STR_MAX]){ 0 }));
}

static void run_session(struct vshd *d, int fd, const uint8_t *data, size_t len, const char *peer_desc)
{
	char summary[512] = "", peer[80], request[VSH_FRAME_MAX];

	/* Both live in the pending connection, freed below with the rest. */
	snprintf(peer, sizeof(peer), "%s", peer_desc);
	len = MIN(len, sizeof(request));
	memcpy(request, data, len);
	data = (const uint8_t *)request;
	/* Nothing of the listener's process is ours to use any more. */
	for (unsigned i = 0; i < d->n_listen; i++)
		safe_close(d->listen_fds[i]);
	pending_set_free_after_fork(d->pending);
	loop_free_after_fork(d->loop);
	(void)vsh_session_run(fd, data, len, &d->policy, summary, sizeof(summary));
	log_info("session from %s: %s", peer, summary);
	_exit(0);
}

/* A whole request has arrived: a session, if there is room for one. */
static void on_request(int fd, const uint8_t *data, size_t len, const char *peer, void *userdata)
{
	struct vshd *d = userdata;
	char why[64];

	if (d->sessions >= d->max_sessions) {
		log_warning("refused connection from %s: %u sessions already", peer, d->sessions);
		snprintf(why, sizeof(why), "too many sessions (%u running)", d->sessions);
		vshd_refuse(fd, why);
		safe_close(fd);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_warning_errno(errno, "fork failed");
		vshd_refuse(fd, "could not start a session");
		safe_close(fd);
		return;
	}
	if (pid == 0)
		run_session(d, fd, data, len, peer);
	safe_close(fd);
	d->sessions++;
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
		pending_add(d->pending, fd, peer.desc);
	}
}

/* --no-allow-user-switch serves the default user only: it must be one vshd
 * can serve, or nothing could ever be. Fills in vshd's own name when no
 * --default-user was given. Returns false after printing why. */
static bool check_user_policy(struct vsh_policy *policy, char **ret_own_name)
{
	struct vsh_user u = { 0 };
	int r;

	if (policy->allow_user_switch)
		return true;
	r = policy->default_user ? vsh_user_by_name(policy->default_user, &u) : vsh_user_by_uid(geteuid(), &u);
	if (r < 0) {
		if (policy->default_user)
			fprintf(stderr,
				"vshd: --no-allow-user-switch serves only the default user, but --default-user '%s' "
				"is not in /etc/passwd%s%s\n",
				policy->default_user, r == -ENOENT ? "" : ": ", r == -ENOENT ? "" : strerror(-r));
		else
			fprintf(stderr,
				"vshd: --no-allow-user-switch serves only the default user, vshd's own (uid %u), "
				"which is not in /etc/passwd%s%s; give --default-user\n",
				(unsigned)geteuid(), r == -ENOENT ? "" : ": ", r == -ENOENT ? "" : strerror(-r));
		return false;
	}
	if (u.uid != geteuid() && geteuid() != 0) {
		fprintf(stderr,
			"vshd: --no-allow-user-switch with --default-user '%s' (uid %u): vshd runs as uid %u and "
			"cannot become that user without root\n",
			u.name, (unsigned)u.uid, (unsigned)geteuid());
		vsh_user_clear(&u);
		return false;
	}
	if (!policy->default_user) {
		*ret_own_name = TAKE_PTR(u.name);
		policy->default_user = *ret_own_name;
	}
	vsh_user_clear(&u);
	return true;
}

static void on_stop(struct loop *l, int signo, void *userdata _unused_)
{
	log_info("received %s, stopping (sessions go on)", strsignal(signo));
	loop_exit(l, 0);
}

int main(int argc, char **argv)
{
	enum {
		OPT_LISTEN = 0x100,
		OPT_ALLOW_CID,
		OPT_DEFAULT_USER,
		OPT_NO_SWITCH,
		OPT_MAX,
		OPT_KMSG,
		OPT_PENDING,
		OPT_SETUP
	};
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "allow-cid", required_argument, NULL, OPT_ALLOW_CID },
		{ "default-user", required_argument, NULL, OPT_DEFAULT_USER },
		{ "no-allow-user-switch", no_argument, NULL, OPT_NO_SWITCH },
		{ "max-sessions", required_argument, NULL, OPT_MAX },
		{ "max-pending", required_argument, NULL, OPT_PENDING },
		{ "setup-timeout", required_argument, NULL, OPT_SETUP },
		{ "log-kmsg", no_argument, NULL, OPT_KMSG },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	struct vshd d = { .max_sessions = 64, .policy = { .allow_user_switch = true } };
	const char *listen[VSHD_MAX_LISTEN];
	unsigned n_listen = 0, max_pending = 64, setup_timeout = VSH_SETUP_TIMEOUT_MSEC / 1000;
	_cleanup_free_ char *own_name = NULL;
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
		case OPT_PENDING:
			if (parse_u32(optarg, &v) < 0 || v == 0 || v > 65536) {
				fprintf(stderr, "vshd: invalid --max-pending '%s': expected 1-65536\n", optarg);
				return 2;
			}
			max_pending = v;
			break;
		case OPT_SETUP:
			if (parse_u32(optarg, &v) < 0 || v == 0 || v > 3600) {
				fprintf(stderr, "vshd: invalid --setup-timeout '%s': expected 1-3600 seconds\n",
					optarg);
				return 2;
			}
			setup_timeout = v;
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
	if (!check_user_policy(&d.policy, &own_name))
		return 2;

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
	loop_set_orphan_handler(d.loop, on_reaped, &d);
	r = pending_set_new(d.loop, max_pending, setup_timeout * 1000000ull, on_request, &d, &d.pending);
	if (r < 0)
		return log_error_errno(r, "could not set up"), 1;
	/* Unread, a blocked SIGTERM would leave vshd unstoppable: fail now. */
	r = loop_add_signal(d.loop, SIGTERM, on_stop, &d);
	if (r >= 0)
		r = loop_add_signal(d.loop, SIGINT, on_stop, &d);
	if (r < 0)
		return log_error_errno(r, "could not watch SIGTERM and SIGINT"), 1;
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
	pending_set_free(d.pending);
	loop_free(d.loop);
	return r < 0 ? 1 : 0;
}
