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

#include "base/escape.h"
#include "base/log.h"
#include "base/wait-status.h"
#include "base/notify.h"
#include "base/parse.h"
#include "loop/loop.h"
#include "net/listener.h"
#include "vsh/frame.h"
#include "vsh/session.h"
#include "base/users.h"
#include "vshd/pending.h"

struct options {
	struct addr listen[NET_LISTENER_MAX];
	const char *listen_str[NET_LISTENER_MAX];
	unsigned n_listen;
	struct peer_policy peers;
	struct vsh_policy policy;
	unsigned max_sessions, max_pending, setup_timeout;
	bool kmsg;
};

struct vshd {
	struct loop *loop;
	struct vsh_policy policy;
	unsigned max_sessions, sessions;
	struct pending_set *pending;
	struct net_listener *listener;
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
static void on_reaped(struct loop *l, pid_t pid, int status, void *userdata)
{
	struct vshd *d = userdata;
	if (d->sessions > 0)
		d->sessions--;
	if (WIFSIGNALED(status))
		log_warning("session %d crashed: %s", (int)pid, wait_status_str(status, (char[WAIT_STATUS_STR_MAX]){ 0 }));
}

static void run_session(struct vshd *d, int fd, const uint8_t *data, size_t len, const char *peer_desc)
{
	char summary[512] = "", escaped[1024], peer[80], request[VSH_FRAME_MAX];

	/* Both live in the pending connection, freed below with the rest. */
	snprintf(peer, sizeof(peer), "%s", peer_desc);
	len = MIN(len, sizeof(request));
	memcpy(request, data, len);
	data = (const uint8_t *)request;
	/* Nothing of the listener's process is ours to use any more. */
	net_listener_free_after_fork(d->listener);
	pending_set_free_after_fork(d->pending);
	loop_free_after_fork(d->loop);
	(void)vsh_session_run(fd, data, len, &d->policy, summary, sizeof(summary));
	/* The user, the command and setup errors are the client's words. */
	log_info("session from %s: %s", peer, escape_mem(summary, strlen(summary), escaped, sizeof(escaped)));
	_exit(0);
}

/* A whole request has arrived: a session, if there is room for one. */
static void on_request(int take_fd, const uint8_t *data, size_t len, const char *peer, void *userdata)
{
	_cleanup_close_ int fd = take_fd;
	struct vshd *d = userdata;
	char why[64];

	if (d->sessions >= d->max_sessions) {
		log_warning("refused connection from %s: %u sessions already", peer, d->sessions);
		snprintf(why, sizeof(why), "too many sessions (%u running)", d->sessions);
		vshd_refuse(fd, why);
		return;
	}
	pid_t pid = fork();
	if (pid < 0) {
		log_warning_errno(errno, "fork failed");
		vshd_refuse(fd, "could not start a session");
		return;
	}
	if (pid == 0)
		run_session(d, TAKE_FD(fd), data, len, peer); /* does not return */
	d->sessions++;
}

static void on_accepted(int fd, const struct peer *peer, void *userdata)
{
	struct vshd *d = userdata;
	pending_add(d->pending, fd, peer->desc);
}

static void on_refused(const struct peer *peer, void *userdata)
{
	log_warning("refused connection from %s: not allowed by the peer policy", peer->desc);
}

static void on_accept_failed(int error, void *userdata)
{
	log_warning_errno(error, "accept failed");
}

static const struct net_listener_ops listener_ops = {
	.accepted = on_accepted,
	.refused = on_refused,
	.failed = on_accept_failed,
};

/* --no-allow-user-switch serves the default user only: it must be one vshd
 * can serve, or nothing could ever be. Fills in vshd's own name when no
 * --default-user was given. Returns false after printing why. */
static bool check_user_policy(struct vsh_policy *policy, char **ret_own_name)
{
	_cleanup_(user_entry_clear) struct user_entry u = { 0 };
	int r;

	if (policy->allow_user_switch)
		return true;
	r = policy->default_user ? user_by_name(policy->default_user, &u) : user_by_uid(geteuid(), &u);
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
		return false;
	}
	if (!policy->default_user) {
		*ret_own_name = TAKE_PTR(u.name);
		policy->default_user = *ret_own_name;
	}
	return true;
}

static void on_stop(struct loop *l, int signo, void *userdata)
{
	log_info("received %s, stopping (sessions go on)", strsignal(signo));
	loop_exit(l, 0);
}

/* A number from 1 to max for --name; -EINVAL after printing why. */
static int parse_count(const char *name, const char *arg, uint32_t max, const char *unit, unsigned *ret)
{
	uint32_t v;

	if (parse_u32(arg, &v) < 0 || v == 0 || v > max) {
		fprintf(stderr, "vshd: invalid --%s '%s': expected 1-%u%s\n", name, arg, (unsigned)max, unit);
		return -EINVAL;
	}
	*ret = v;
	return 0;
}

/* Fills o from the command line. Returns -1 to go on, else the exit
 * status (0 for --help, 2 after printing what is wrong). */
static int parse_options(int argc, char **argv, struct options *o)
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
	uint32_t v;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
		switch (c) {
		case OPT_LISTEN:
			if (o->n_listen == NET_LISTENER_MAX || addr_parse(optarg, &o->listen[o->n_listen]) < 0 ||
			    o->listen[o->n_listen].family == ADDR_HVSOCK) {
				fprintf(stderr, "vshd: invalid --listen address '%s': expected %s\n", optarg,
					ADDR_LISTEN_SYNTAX);
				return 2;
			}
			o->listen_str[o->n_listen++] = optarg;
			break;
		case OPT_ALLOW_CID:
			if (parse_u32(optarg, &v) < 0 || peer_policy_allow_cid(&o->peers, v) < 0) {
				fprintf(stderr, "vshd: invalid --allow-cid '%s': expected a CID number\n", optarg);
				return 2;
			}
			break;
		case OPT_DEFAULT_USER: o->policy.default_user = optarg; break;
		case OPT_NO_SWITCH: o->policy.allow_user_switch = false; break;
		case OPT_MAX:
			if (parse_count("max-sessions", optarg, 65536, "", &o->max_sessions) < 0)
				return 2;
			break;
		case OPT_PENDING:
			if (parse_count("max-pending", optarg, 65536, "", &o->max_pending) < 0)
				return 2;
			break;
		case OPT_SETUP:
			if (parse_count("setup-timeout", optarg, 3600, " seconds", &o->setup_timeout) < 0)
				return 2;
			break;
		case OPT_KMSG: o->kmsg = true; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vshd: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (o->n_listen == 0) {
		o->listen_str[0] = "vsock:-1:9001";
		(void)addr_parse(o->listen_str[0], &o->listen[0]);
		o->n_listen = 1;
	}
	return -1;
}

/* The loop, the pending set, the stop signals and the listening sockets.
 * Logs what failed. */
static int setup(struct vshd *d, const struct options *o)
{
	int r = loop_new(&d->loop);
	if (r < 0)
		return log_error_errno(r, "could not create the event loop");
	loop_set_orphan_handler(d->loop, on_reaped, d);
	r = pending_set_new(d->loop, o->max_pending, o->setup_timeout * 1000000ull, on_request, d, &d->pending);
	if (r >= 0)
		r = net_listener_new(d->loop, &o->peers, 32, &listener_ops, d, &d->listener);
	if (r < 0)
		return log_error_errno(r, "could not set up");
	/* Unread, a blocked SIGTERM would leave vshd unstoppable: fail now. */
	r = loop_add_signal(d->loop, SIGTERM, on_stop, d);
	if (r >= 0)
		r = loop_add_signal(d->loop, SIGINT, on_stop, d);
	if (r < 0)
		return log_error_errno(r, "could not watch SIGTERM and SIGINT");
	for (unsigned i = 0; i < o->n_listen; i++) {
		r = net_listener_add(d->listener, &o->listen[i]);
		if (r < 0)
			return log_error_errno(r, "could not listen on %s", o->listen_str[i]);
		log_info("listening on %s", o->listen_str[i]);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { .max_sessions = 64,
			     .max_pending = 64,
			     .setup_timeout = VSH_SETUP_TIMEOUT_MSEC / 1000,
			     .policy = { .allow_user_switch = true } };
	struct vshd d = { 0 };
	_cleanup_free_ char *own_name = NULL;
	struct notify notify;
	int r;

	peer_policy_init(&o.peers);
	r = parse_options(argc, argv, &o);
	if (r >= 0)
		return r;
	if (!check_user_policy(&o.policy, &own_name))
		return 2;
	d.policy = o.policy;
	d.max_sessions = o.max_sessions;

	log_setup("vshd", LOG_SINK_STDERR);
	if (o.kmsg && log_open_kmsg() < 0)
		log_warning_errno(errno, "cannot open /dev/kmsg, logging to stderr");
	/* Writing to a vanished client must fail with EPIPE, not kill the
	 * session; targets still start with SIGPIPE at its default. */
	signal(SIGPIPE, SIG_IGN);
	/* The service manager's socket is ours alone: taken out of the
	 * environment before any session starts. */
	if (notify_init(&notify) < 0)
		log_warning("ignoring an unusable $NOTIFY_SOCKET");

	r = setup(&d, &o);
	if (r >= 0) {
		(void)notify_send(&notify, "READY=1");
		r = loop_run(d.loop);
		(void)notify_send(&notify, "STOPPING=1");
	}
	net_listener_free(d.listener);
	pending_set_free(d.pending);
	loop_free(d.loop);
	return r < 0 ? 1 : 0;
}
