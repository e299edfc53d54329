/* A gRPC server for the streaming tests: the streamtest.Stream service
 * (stream-service.c) on the real rpc server and event loop, for clients
 * that are not ours (tests/integration/test_streaming.py drives it with
 * grpcio). Not a test program itself: its name does not start with
 * "test-".
 *
 *     rpc-stream-server ADDRESS     (unix:PATH or tcp:HOST:PORT)
 *
 * Prints "listening" once it serves, "cancelled N" whenever a handler
 * hears of a cancel; SIGTERM stops it gracefully (exit 0). */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "loop/loop.h"
#include "net/addr.h"
#include "rpc/server.h"
#include "stream-service.h"

static struct rpc_server *server;

static void print_cancel(void)
{
	printf("cancelled %d\n", stream_stats.cancelled);
	fflush(stdout);
}

static void on_stopped(void *userdata)
{
	loop_exit(userdata, 0);
}

static void on_term(struct loop *l, int signo, void *userdata)
{
	rpc_server_stop(server, on_stopped, l);
}

int main(int argc, char **argv)
{
	_cleanup_(loop_freep) struct loop *l = NULL;
	struct rpc_server_config cfg;
	struct addr a;
	int r;

	if (argc != 2 || addr_parse(argv[1], &a) < 0) {
		fprintf(stderr, "usage: rpc-stream-server unix:PATH|tcp:HOST:PORT\n");
		return 2;
	}
	stream_cancel_hook = print_cancel;
	r = loop_new(&l);
	if (r >= 0)
		r = loop_add_signal(l, SIGTERM, on_term, NULL);
	if (r >= 0) {
		rpc_server_config_init(&cfg, &stream_service);
		r = rpc_server_new(l, &cfg, &server);
	}
	if (r >= 0)
		r = rpc_server_listen(server, &a);
	if (r < 0) {
		fprintf(stderr, "rpc-stream-server: %s\n", strerror(-r));
		return 1;
	}
	printf("listening\n");
	fflush(stdout);
	r = loop_run(l);
	rpc_server_free(server);
	return r < 0 ? 1 : 0;
}
