/* maitctl wait-ready: the host's end of VmReady. Serves
 * vm_tools.StartupListener on an address and returns once a guest calls
 * VmReady: what a script runs between starting a VM and using it. */
#include <getopt.h>
#include <linux/vm_sockets.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "base/parse.h"
#include "base/time-util.h"
#include "common.pb-c.h"
#include "loop/loop.h"
#include "maitctl.h"
#include "rpc/server.h"

#define DEFAULT_ADDR "vsock:-1:7777"
/* After VmReady is answered: time for its caller to read the answer and
 * close; other connections are not waited for at all. */
#define READY_GRACE_USEC (200 * USEC_PER_MSEC)

struct wait_ready {
	struct loop *loop;
	struct rpc_server *server;
	/* Armed once VmReady is answered (allocated before serving, so that
	 * arming cannot fail). */
	struct loop_timer *grace;
	uint64_t started;
	bool ready;
	double waited;
	char peer[96];
};

static void on_stopped(void *userdata)
{
	struct wait_ready *w = userdata;
	loop_exit(w->loop, 0);
}

static void vm_ready(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	struct wait_ready *w = userdata;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;

	if (!w->ready) {
		w->ready = true;
		w->waited = (double)(now_usec() - w->started) / 1e6;
		snprintf(w->peer, sizeof(w->peer), "%s", rpc_call_peer(call));
	}
	rpc_call_reply(call, &resp.base);
	/* The answer is written at the end of this loop round. The stop is
	 * over when every connection has closed, or at the grace deadline:
	 * another peer holding a stream open or flooding PINGs must not keep
	 * wait-ready running once its guest is ready (the connections left
	 * are closed when the server is freed). */
	rpc_server_stop(w->server, on_stopped, w);
	loop_timer_set(w->grace, now_usec() + READY_GRACE_USEC);
}

static void on_grace(struct loop_timer *t, void *userdata)
{
	struct wait_ready *w = userdata;
	loop_exit(w->loop, 0);
}

static void on_timeout(struct loop_timer *t, void *userdata)
{
	struct wait_ready *w = userdata;
	loop_exit(w->loop, 1);
}

static void on_signal(struct loop *l, int signo, void *userdata)
{
	loop_exit(l, 2);
}

static const char help[] = "Usage: maitctl wait-ready [--timeout SECONDS] [--cid N] [ADDR]\n"
			   "\n"
			   "Serves vm_tools.StartupListener on ADDR (default " DEFAULT_ADDR ") and exits\n"
			   "0 when a guest's maitred calls VmReady, printing how long it waited.\n"
			   "Firecracker and Cloud Hypervisor deliver the guest's call to the unix\n"
			   "socket <vsock uds path>_7777: use unix:PATH_7777 there.\n"
			   "\n"
			   "  --timeout SECONDS  give up after this long, exit 1 (default: the global\n"
			   "                     --timeout, 30 s; 0 waits for ever)\n"
			   "  --cid N            over vsock, accept only the guest with this CID\n"
			   "                     (default: any guest)\n";

static int serve(struct maitctl *ctl, const struct addr *a, uint64_t timeout_usec, const uint32_t *cid)
{
	static const struct rpc_method methods[] = {
		{ "/vm_tools.StartupListener/VmReady", &vm_tools__empty_message__descriptor, vm_ready },
	};
	struct wait_ready w = { 0 };
	struct rpc_service svc = { .methods = methods, .n_methods = ARRAY_SIZE(methods), .userdata = &w };
	_cleanup_(loop_freep) struct loop *loop = NULL;
	_cleanup_(rpc_server_freep) struct rpc_server *srv = NULL;
	struct rpc_server_config cfg;
	struct loop_timer *timer = NULL;
	char addrbuf[128];
	int r;

	addr_format(a, addrbuf, sizeof(addrbuf));
	r = loop_new(&loop);
	if (r < 0) {
		fprintf(stderr, "maitctl wait-ready: %s\n", strerror(-r));
		return MAITCTL_EXIT_RPC_ERROR;
	}
	w.loop = loop;
	rpc_server_config_init(&cfg, &svc);
	/* The callers are guests, not the host: any CID unless one is named. */
	cfg.policy.n_cids = 0;
	(void)peer_policy_allow_cid(&cfg.policy, cid ? *cid : VMADDR_CID_ANY);
	r = rpc_server_new(loop, &cfg, &srv);
	if (r >= 0)
		r = rpc_server_listen(srv, a);
	if (r < 0) {
		fprintf(stderr, "maitctl wait-ready: cannot listen on %s: %s\n", addrbuf, strerror(-r));
		return MAITCTL_EXIT_RPC_ERROR;
	}
	w.server = srv;
	w.started = now_usec();
	if (timeout_usec)
		r = loop_add_timer(loop, w.started + timeout_usec, on_timeout, &w, &timer);
	if (r >= 0)
		r = loop_add_timer(loop, USEC_INFINITY, on_grace, &w, &w.grace);
	if (r >= 0)
		r = loop_add_signal(loop, SIGINT, on_signal, NULL);
	if (r >= 0)
		r = loop_add_signal(loop, SIGTERM, on_signal, NULL);
	if (r < 0) {
		fprintf(stderr, "maitctl wait-ready: %s\n", strerror(-r));
		return MAITCTL_EXIT_RPC_ERROR;
	}
	r = loop_run(loop);
	loop_timer_free(timer);
	loop_timer_free(w.grace);
	if (w.ready) {
		if (ctl->json) {
			printf("{\"ready\":true,\"waited_seconds\":%.3f,\"peer\":", w.waited);
			maitctl_json_string(w.peer);
			printf("}\n");
		} else
			printf("VmReady from %s after %.3f s\n", w.peer, w.waited);
		return 0;
	}
	if (ctl->json)
		printf("{\"ready\":false}\n");
	if (r == 1)
		fprintf(stderr, "maitctl wait-ready: no VmReady on %s within %.3f s\n", addrbuf,
			(double)timeout_usec / 1e6);
	else
		fprintf(stderr, "maitctl wait-ready: interrupted before VmReady arrived on %s\n", addrbuf);
	return MAITCTL_EXIT_RPC_ERROR;
}

static int run(struct maitctl *ctl, int argc, char **argv)
{
	enum { OPT_TIMEOUT = 0x100, OPT_CID };
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, OPT_TIMEOUT },
		{ "cid", required_argument, NULL, OPT_CID },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	uint64_t timeout_usec = ctl->timeout_usec;
	uint32_t cid;
	bool have_cid = false;
	struct addr a;
	int c;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		switch (c) {
		case OPT_TIMEOUT:
			if (maitctl_parse_seconds(optarg, &timeout_usec) < 0) {
				fprintf(stderr, "maitctl wait-ready: invalid --timeout '%s': expected seconds\n",
					optarg);
				return MAITCTL_EXIT_USAGE;
			}
			break;
		case OPT_CID:
			if (parse_u32(optarg, &cid) < 0) {
				fprintf(stderr, "maitctl wait-ready: invalid --cid '%s': expected a number\n", optarg);
				return MAITCTL_EXIT_USAGE;
			}
			have_cid = true;
			break;
		default: return maitctl_help(help, c);
		}
	}
	if (argc - optind > 1) {
		fprintf(stderr, "maitctl wait-ready: unexpected argument '%s'\n", argv[optind + 1]);
		return MAITCTL_EXIT_USAGE;
	}
	const char *s = optind < argc ? argv[optind] : DEFAULT_ADDR;
	if (addr_parse(s, &a) < 0 || a.family == ADDR_HVSOCK) {
		fprintf(stderr,
			"maitctl wait-ready: invalid address '%s': expected vsock:CID:PORT, unix:PATH or "
			"tcp:HOST:PORT\n",
			s);
		return MAITCTL_EXIT_USAGE;
	}
	return serve(ctl, &a, timeout_usec, have_cid ? &cid : NULL);
}

const struct maitctl_command maitctl_cmd_wait_ready = {
	.name = "wait-ready", .summary = "wait for a guest's VmReady (host side)", .run = run, .local = true
};
