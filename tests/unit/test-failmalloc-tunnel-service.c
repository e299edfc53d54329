/* Allocation-failure sweep over valet.v1.Tunnel in maitred's process: the
 * real server and the service (src/tunnel-service/), driven by
 * rpc/stream.c clients in the same loop, the guest's service an echo on a
 * unix socket in the same loop too. For every N the N-th allocation
 * fails: a tunnel that sends bytes and half-closes, and a tunnel to a socket
 * nobody listens on, must each end with a status, never hang; a tunnel
 * that ends OK has echoed every byte, in order, and its end; nothing may
 * leak, no tunnel or echo connection is left open; and right after,
 * without failures, the same calls give the whole echo and UNAVAILABLE
 * (the refused connect).
 * Each call's deadline (5 s) is the hang detector. */
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "agent/agent.h"
#include "base/time-util.h"
#include "failmalloc-service.h"
#include "failmalloc.h"
#include "rpc/server.h"
#include "rpc/stream.h"
#include "test.h"
#include "tunnel-service/service.h"
#include "tunnel.pb-c.h"

#define GUARD_USEC (10 * USEC_PER_SEC)
#define PAYLOAD "through the tunnel and back"

static struct loop *L;
static char dir[64], spec[128], echo_path[96], nobody_path[96];
static unsigned echo_open; /* echo connections not yet closed */

/* The guest's service: echoes what it reads, half-closes at the end of
 * its input, then closes. Test bookkeeping: its allocations are held. */
static void on_echo(struct loop_io *io, int fd, uint32_t events, void *ud)
{
	char b[4096];
	ssize_t n = read(fd, b, sizeof(b));

	/* The tunnel may have gone (a failed allocation): its reset ends
	 * this connection as an end of input would. */
	if (n > 0 && send(fd, b, (size_t)n, MSG_NOSIGNAL) == n)
		return;
	if (n < 0 && errno == EAGAIN)
		return;
	(void)shutdown(fd, SHUT_WR);
	loop_io_free(io);
	close(fd);
	echo_open--;
}

static void on_accept(struct loop_io *io, int lfd, uint32_t events, void *ud)
{
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	struct loop_io *c;

	if (fd < 0)
		return;
	failmalloc_hold(true);
	CHECK_EQ(loop_add_io(L, fd, EPOLLIN, on_echo, NULL, &c), 0);
	failmalloc_hold(false);
	echo_open++;
}

static void bind_unix(const char *path, int *ret_fd)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	CHECK(fd >= 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	(void)unlink(path);
	CHECK_EQ(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	*ret_fd = fd;
}

static void echo_listen(int *ret_fd, struct loop_io **ret)
{
	int fd;

	bind_unix(echo_path, &fd);
	CHECK_EQ(listen(fd, 16), 0);
	CHECK_EQ(loop_add_io(L, fd, EPOLLIN, on_accept, NULL, ret), 0);
	*ret_fd = fd;
}

struct call {
	struct fm_end end; /* first: fm_on_done */
	bool connected, eof;
	char got[sizeof(PAYLOAD)];
	size_t n_got;
	bool overflow;
};

static void on_message(struct rpc_stream_call *sc, const uint8_t *d, size_t len, void *ud)
{
	struct call *c = ud;

	failmalloc_hold(true);
	Valet__V1__TunnelResponse *m = valet__v1__tunnel_response__unpack(NULL, len, d);
	if (m) {
		switch (m->part_case) {
		case VALET__V1__TUNNEL_RESPONSE__PART_CONNECTED: c->connected = true; break;
		case VALET__V1__TUNNEL_RESPONSE__PART_EOF: c->eof = true; break;
		case VALET__V1__TUNNEL_RESPONSE__PART_DATA:
			if (c->n_got + m->data.len > sizeof(c->got)) {
				c->overflow = true;
				break;
			}
			memcpy(c->got + c->n_got, m->data.data, m->data.len);
			c->n_got += m->data.len;
			break;
		default: break;
		}
		valet__v1__tunnel_response__free_unpacked(m, NULL);
	}
	failmalloc_hold(false);
}

static const struct rpc_stream_call_ops ops = { .on_message = on_message, .on_done = fm_on_done };

/* One Connect to unix_path: the target, PAYLOAD, the half-close. */
static void tunnel(const char *unix_path, struct call *c)
{
	Valet__V1__TunnelTarget target = VALET__V1__TUNNEL_TARGET__INIT;
	Valet__V1__TunnelRequest m[3] = { VALET__V1__TUNNEL_REQUEST__INIT, VALET__V1__TUNNEL_REQUEST__INIT,
					  VALET__V1__TUNNEL_REQUEST__INIT };
	struct rpc_stream_call *sc;
	struct addr a;
	int r;

	target.unix_path = (char *)unix_path;
	m[0].part_case = VALET__V1__TUNNEL_REQUEST__PART_TARGET;
	m[0].target = &target;
	m[1].part_case = VALET__V1__TUNNEL_REQUEST__PART_DATA;
	m[1].data.data = (uint8_t *)PAYLOAD;
	m[1].data.len = strlen(PAYLOAD);
	m[2].part_case = VALET__V1__TUNNEL_REQUEST__PART_EOF;
	m[2].eof = true;

	*c = (struct call){ .end.loop = L };
	CHECK_EQ(addr_parse(spec, &a), 0);
	r = rpc_stream_call_start(L, &a, "/valet.v1.Tunnel/Connect", 5 * USEC_PER_SEC, &ops, c, &sc);
	if (r < 0) {
		CHECK_EQ(r, -ENOMEM);
		return;
	}
	for (size_t i = 0; i < 3; i++)
		if (rpc_stream_call_send(sc, &m[i].base) < 0) {
			rpc_stream_call_cancel(sc);
			break;
		}
	(void)rpc_stream_call_close_send(sc);
	fm_run_until(&c->end, GUARD_USEC);
	CHECK(c->end.code != RPC_DEADLINE_EXCEEDED);
	CHECK(!c->overflow);
}

/* The echo, then the path nobody listens on; *ok: how many ended as
 * they must without failures. An echo that ends OK has every byte. */
static void two_calls(int *ok)
{
	struct call c;

	*ok = 0;
	tunnel(echo_path, &c);
	if (c.end.done && c.end.code == RPC_OK) {
		CHECK(c.connected && c.eof);
		CHECK_EQ(c.n_got, strlen(PAYLOAD));
		CHECK(memcmp(c.got, PAYLOAD, c.n_got) == 0);
		*ok += 1;
	} else {
		/* What arrived before the failure is a prefix of it. */
		CHECK(memcmp(c.got, PAYLOAD, c.n_got) == 0);
	}
	tunnel(nobody_path, &c);
	CHECK(!c.connected);
	CHECK(c.n_got == 0);
	*ok += c.end.done && c.end.code == RPC_UNAVAILABLE;
}

static void on_tick(struct loop_timer *t, void *ud)
{
	loop_exit(L, 0);
}

/* Runs the loop until no tunnel and no echo connection is open (at most
 * GUARD_USEC). */
static void settle(struct tunnel_service *ts)
{
	uint64_t until = now_usec() + GUARD_USEC;
	struct loop_timer *t;

	CHECK_EQ(loop_add_timer(L, USEC_INFINITY, on_tick, NULL, &t), 0);
	while ((ts->n_tunnels || echo_open) && now_usec() < until) {
		loop_timer_set(t, now_usec() + 5 * 1000);
		(void)loop_run(L);
	}
	loop_timer_free(t);
	CHECK_EQ(ts->n_tunnels, 0);
	CHECK_EQ(echo_open, 0);
}

static void scenario(unsigned long n, unsigned long *ret_count)
{
	struct agent a = { 0 };
	struct tunnel_service ts;
	struct rpc_server *srv;
	struct loop_io *echo_io;

	CHECK_EQ(loop_new(&L), 0);
	a.core.loop = L;
	int echo_fd = -1, nobody_fd = -1;
	echo_listen(&echo_fd, &echo_io);
	/* Bound, never listening: a connect to it is refused. */
	bind_unix(nobody_path, &nobody_fd);
	CHECK_EQ(tunnel_service_register(&a, &ts), 0);
	CHECK_EQ(fm_serve(L, &a, spec, &srv), 0);

	int ok;
	failmalloc_arm(n);
	two_calls(&ok);
	*ret_count = failmalloc_disarm();
	settle(&ts);
	/* And right after, without failures: both end as they must. */
	two_calls(&ok);
	CHECK_EQ(ok, 2);
	settle(&ts);

	rpc_server_free(srv);
	tunnel_service_free(&ts);
	loop_io_free(echo_io);
	close(echo_fd);
	close(nobody_fd);
	loop_free(L);
}

TEST(sweep_tunnel_service_echo_and_refused)
{
	snprintf(dir, sizeof(dir), "/tmp/valet-fm-tunnel-XXXXXX");
	CHECK(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "unix:%s/s", dir);
	snprintf(echo_path, sizeof(echo_path), "%s/echo", dir);
	snprintf(nobody_path, sizeof(nobody_path), "%s/nobody", dir);
	unsigned long total = failmalloc_sweep(NULL, scenario, 0);
	CHECK(total > 20);
	char sock[96];
	snprintf(sock, sizeof(sock), "%s/s", dir);
	(void)unlink(sock);
	(void)unlink(echo_path);
	(void)unlink(nobody_path);
	(void)rmdir(dir);
}
