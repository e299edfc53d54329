/* maitctl forward [LOCAL=]GUEST...: listens on the host, and each
 * accepted connection becomes one valet.v1.Tunnel/Connect stream on one
 * HTTP/2 connection to maitred (docs/tunnel.md, "maitctl forward").
 * Everything that can be wrong with the specs or the local addresses is
 * said before maitred is contacted; the listening addresses are printed
 * then, one line each; the command runs until SIGINT or SIGTERM (exit 0)
 * or until the connection to maitred is lost (exit 1). */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "base/escape.h"
#include "base/parse.h"
#include "forward.h"
#include "net/sock.h"
#include "rpc/status.h"

static const char help[] =
	"Usage: maitctl forward [LOCAL=]GUEST...\n"
	"\n"
	"Forwards connections made on the host to a TCP port or a unix socket in the\n"
	"guest (valet.v1.Tunnel), each one a stream on one connection to maitred,\n"
	"until interrupted. Prints \"LOCAL -> GUEST\" once listening, a line per spec.\n"
	"\n"
	"  GUEST   a port (on the guest's 127.0.0.1), HOST:PORT (a numeric address\n"
	"          in the guest) or /PATH (a unix socket in the guest)\n"
	"  LOCAL   a port (on 127.0.0.1; 0 picks a free one), tcp:HOST:PORT or\n"
	"          unix:PATH; default: the guest's port on 127.0.0.1\n"
	"\n"
	"  maitctl forward 8080                  127.0.0.1:8080 to the guest's 8080\n"
	"  maitctl forward 9000=8080             127.0.0.1:9000 to the guest's 8080\n"
	"  maitctl forward unix:/tmp/db.sock=/run/db.sock\n";

static int bad_spec(const char *spec, const char *why)
{
	fprintf(stderr, "maitctl forward: invalid '%s': %s\n", ESCAPED(spec), why);
	return MAITCTL_EXIT_USAGE;
}

/* GUEST: PORT, HOST:PORT or /PATH. The host is checked by maitred (it
 * knows which it accepts); here only its shape. */
static int parse_guest(const char *spec, const char *g, struct fwd_spec *sp)
{
	const char *colon = strrchr(g, ':');
	uint32_t port;

	if (g[0] == '/') {
		if (strlen(g) >= sizeof(sp->guest_path))
			return bad_spec(spec, "the guest's unix path is too long");
		snprintf(sp->guest_path, sizeof(sp->guest_path), "%s", g);
	} else {
		const char *p = colon ? colon + 1 : g;
		if (colon && ((size_t)(colon - g) >= sizeof(sp->guest_host) || colon == g))
			return bad_spec(spec, "expected GUEST as PORT, HOST:PORT or /PATH");
		if (parse_u32(p, &port) < 0 || port == 0 || port > 65535)
			return bad_spec(spec, "the guest's port must be 1-65535 (or GUEST a /PATH)");
		if (colon)
			snprintf(sp->guest_host, sizeof(sp->guest_host), "%.*s", (int)(colon - g), g);
		sp->guest_port = port;
	}
	snprintf(sp->guest, sizeof(sp->guest), "%s", g);
	return 0;
}

/* LOCAL: PORT (on 127.0.0.1, 0 for any), or an address of addr.h that
 * can be listened on. */
static int parse_local(const char *spec, const char *l, struct addr *ret)
{
	char buf[64];
	uint32_t port;

	if (parse_u32(l, &port) == 0) {
		if (port > 65535)
			return bad_spec(spec, "the local port must be 0-65535");
		snprintf(buf, sizeof(buf), "tcp:127.0.0.1:%u", port);
		l = buf;
	}
	if (addr_parse(l, ret) < 0 || ret->family == ADDR_HVSOCK)
		return bad_spec(spec, "expected LOCAL as a port, tcp:HOST:PORT or unix:PATH");
	return 0;
}

static int parse_spec(const char *spec, struct fwd_spec *sp, struct addr *local)
{
	/* The first '=' splits: a guest path may hold one, a local one not. */
	const char *eq = strchr(spec, '=');
	_cleanup_free_ char *l = NULL;
	char buf[64];
	int r;

	r = parse_guest(spec, eq ? eq + 1 : spec, sp);
	if (r)
		return r;
	if (eq) {
		l = strndup(spec, (size_t)(eq - spec));
		if (!l)
			return bad_spec(spec, strerror(ENOMEM));
		return parse_local(spec, l, local);
	}
	if (!sp->guest_port)
		return bad_spec(spec, "a guest unix path has no port to listen on: give LOCAL= as well");
	snprintf(buf, sizeof(buf), "%u", sp->guest_port);
	return parse_local(spec, buf, local);
}

/* The address a listener is bound to (a port 0 resolved). */
static void bound_address(const struct addr *want, int fd, char *buf, size_t size)
{
	struct addr a = *want;

	a.sa_len = sizeof(a.sa);
	if (want->family != ADDR_TCP || getsockname(fd, (struct sockaddr *)&a.sa, &a.sa_len) < 0)
		a = *want;
	addr_format(&a, buf, size);
}

static void on_accepted(int fd, const struct peer *peer, void *userdata)
{
	fwd_conn_start(userdata, fd);
}

static void on_accept_failed(int error, void *userdata)
{
	struct fwd_spec *sp = userdata;

	/* EMFILE and the like: the connection waits in the backlog. */
	fprintf(stderr, "maitctl forward: %s: accept: %s\n", sp->local, strerror(-error));
}

static const struct net_listener_ops listener_ops = { .accepted = on_accepted, .failed = on_accept_failed };

static void stop(struct fwd *f, int code)
{
	for (unsigned i = 0; i < f->n_specs; i++)
		net_listener_close(f->specs[i].listener);
	fwd_conn_close_all(f);
	f->exit_code = code;
	loop_exit(f->loop, 0);
}

static void on_signal(struct loop *l, int signo, void *userdata)
{
	stop(userdata, 0);
}

/* The connection to maitred is gone: the streams ended first (each
 * reported); new connections could not be forwarded. */
static void on_closed(int code, const char *message, void *userdata)
{
	struct fwd *f = userdata;

	f->ch = NULL;
	fprintf(stderr, "maitctl forward: the connection to maitred ended: %s: %s\n", rpc_code_name(code), message);
	stop(f, MAITCTL_EXIT_RPC_ERROR);
}

static void print_listening(const struct fwd *f)
{
	for (unsigned i = 0; i < f->n_specs; i++) {
		const struct fwd_spec *sp = &f->specs[i];
		if (f->ctl->json) {
			fputs("{\"listen\":", stdout);
			maitctl_json_string(sp->local);
			fputs(",\"guest\":", stdout);
			maitctl_json_string(sp->guest);
			fputs("}\n", stdout);
		} else
			printf("%s -> %s\n", sp->local, sp->guest);
	}
	/* Scripts wait for these lines. */
	fflush(stdout);
}

static int forward(struct fwd *f, int n, char **specs)
{
	struct addr local[FWD_MAX_SPECS];
	struct peer_policy policy;
	int r;

	if (n > FWD_MAX_SPECS) {
		fprintf(stderr, "maitctl forward: at most %d specs\n", FWD_MAX_SPECS);
		return MAITCTL_EXIT_USAGE;
	}
	for (int i = 0; i < n; i++) {
		f->specs[i].f = f;
		r = parse_spec(specs[i], &f->specs[i], &local[i]);
		if (r)
			return r;
	}
	r = loop_new(&f->loop);
	if (r < 0)
		goto fail;
	/* Local unix peers: ours or root's (the gRPC server's default). */
	peer_policy_init(&policy);
	for (int i = 0; i < n; i++, f->n_specs++) {
		struct fwd_spec *sp = &f->specs[i];
		char want[128];
		r = net_listener_new(f->loop, &policy, 128, &listener_ops, sp, &sp->listener);
		if (r < 0)
			goto fail;
		r = net_listener_add(sp->listener, &local[i]);
		if (r < 0) {
			fprintf(stderr, "maitctl forward: cannot listen on %s: %s\n",
				addr_format(&local[i], want, sizeof(want)), strerror(-r));
			f->n_specs++;
			return MAITCTL_EXIT_RPC_ERROR;
		}
		bound_address(&local[i], net_listener_fd(sp->listener, 0), sp->local, sizeof(sp->local));
	}
	r = loop_add_signal(f->loop, SIGINT, on_signal, f);
	if (r >= 0)
		r = loop_add_signal(f->loop, SIGTERM, on_signal, f);
	if (r < 0)
		goto fail;
	r = rpc_channel_open(f->loop, &f->ctl->addr, f->ctl->timeout_usec, on_closed, f, &f->ch);
	if (r < 0) {
		char a[128];
		fprintf(stderr, "maitctl forward: cannot connect to %s: %s\n",
			addr_format(&f->ctl->addr, a, sizeof(a)), sock_connect_strerror(&f->ctl->addr, r));
		return MAITCTL_EXIT_RPC_ERROR;
	}
	print_listening(f);
	(void)loop_run(f->loop);
	return f->exit_code;
fail:
	fprintf(stderr, "maitctl forward: %s\n", strerror(-r));
	return MAITCTL_EXIT_RPC_ERROR;
}

static int run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, {} };
	struct fwd *f;
	int c, r;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0)
		return maitctl_help(help, c);
	if (optind >= argc) {
		fputs(help, stderr);
		return MAITCTL_EXIT_USAGE;
	}
	/* A local client that goes away must not end us mid-write. */
	signal(SIGPIPE, SIG_IGN);
	f = calloc(1, sizeof(*f));
	if (!f) {
		fprintf(stderr, "maitctl forward: %s\n", strerror(ENOMEM));
		return MAITCTL_EXIT_RPC_ERROR;
	}
	f->ctl = ctl;
	r = forward(f, argc - optind, argv + optind);
	fwd_conn_close_all(f);
	rpc_channel_free(f->ch);
	for (unsigned i = 0; i < f->n_specs; i++)
		net_listener_free(f->specs[i].listener);
	loop_free(f->loop);
	free(f);
	return r;
}

const struct maitctl_command maitctl_cmd_forward = {
	"forward",
	"forward host connections to a guest port or unix socket",
	run,
};
