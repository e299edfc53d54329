#include "failmalloc-service.h"

#include <stdio.h>
#include <stdlib.h>

#include "base/time-util.h"
#include "failmalloc.h"
#include "test.h"

int fm_serve(struct loop *l, struct agent *a, const char *spec, struct rpc_server **ret)
{
	struct rpc_server_config cfg;
	struct rpc_server *srv;
	struct addr addr;
	int r;

	rpc_server_config_init(&cfg, a->services);
	r = addr_parse(spec, &addr);
	if (r < 0)
		return r;
	r = rpc_server_new(l, &cfg, &srv);
	if (r < 0)
		return r;
	r = rpc_server_listen(srv, &addr);
	if (r < 0) {
		rpc_server_free(srv);
		return r;
	}
	*ret = srv;
	return 0;
}

struct guard {
	struct loop *l;
	bool fired;
};

static void on_guard(struct loop_timer *t, void *ud)
{
	struct guard *g = ud;

	g->fired = true;
	loop_exit(g->l, 0);
}

void fm_on_done(int code, const char *message, void *userdata)
{
	struct fm_end *end = userdata;

	end->done = 1;
	end->code = code;
	if (code != RPC_OK && getenv("FM_DEBUG"))
		fprintf(stderr, "# call ended %d: %s\n", code, message);
	loop_exit(end->loop, 0);
}

void fm_run_until(struct fm_end *end, uint64_t guard_usec)
{
	struct guard g = { .l = end->loop };
	struct loop_timer *t;

	failmalloc_hold(true);
	CHECK_EQ(loop_add_timer(end->loop, now_usec() + guard_usec, on_guard, &g, &t), 0);
	failmalloc_hold(false);
	while (!end->done && !g.fired)
		(void)loop_run(end->loop);
	loop_timer_free(t);
	CHECK(!g.fired);
}
