/* rpc/conn.c: a connection binding a scripted session to one end of a
 * socketpair in a real loop. Backpressure, the deadline timer, the kick's
 * place in the round, a peer that closes, a peer that breaks the protocol. */
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "base/time-util.h"
#include "rpc/conn.h"
#include "test.h"

#define CHUNK (64 * 1024)
#define TOTAL (4 * 1024 * 1024)
/* conn.c's CONN_OUT_HIGH: it stops pulling while this much is unsent. */
#define OUT_HIGH (256 * 1024)

/* A scripted session: output to send, a deadline, an answer to feed(). */
struct fake {
	struct loop *loop;
	size_t to_send, pulled;
	uint8_t chunk[CHUNK];
	size_t fed;
	int feed_result;
	uint64_t deadline;
	uint64_t expired_at;
	bool alive;
};

static int fake_feed(void *s, const uint8_t *data, size_t len, uint64_t now)
{
	struct fake *f = s;
	f->fed += len;
	return f->feed_result;
}

static ssize_t fake_pull(void *s, const uint8_t **ret)
{
	struct fake *f = s;
	size_t n = MIN(f->to_send, sizeof(f->chunk));
	f->to_send -= n;
	f->pulled += n;
	*ret = f->chunk;
	return (ssize_t)n;
}

static bool fake_alive(void *s)
{
	return ((struct fake *)s)->alive;
}

static uint64_t fake_next_deadline(void *s)
{
	return ((struct fake *)s)->deadline;
}

static void fake_expire(void *s, uint64_t now)
{
	struct fake *f = s;
	if (now < f->deadline)
		return;
	f->expired_at = now;
	f->deadline = USEC_INFINITY;
	loop_exit(f->loop, 0);
}

static const struct rpc_session_ops fake_ops = {
	.feed = fake_feed,
	.pull = fake_pull,
	.alive = fake_alive,
	.next_deadline = fake_next_deadline,
	.expire = fake_expire,
};

struct closed {
	bool called;
	int reason;
	struct loop *loop;
};

/* The close callback is called once the connection is freed: it is given
 * no pointer to it (an indeterminate value by then), only the reason. */
_Static_assert(__builtin_types_compatible_p(rpc_conn_close_fn, void (*)(int, void *)),
	       "on_close must not be handed the freed connection");

static void on_close(int reason, void *ud)
{
	struct closed *cl = ud;
	cl->called = true;
	cl->reason = reason;
	loop_exit(cl->loop, 0);
}

/* A loop, a socketpair (sv[0] the connection's, sv[1] the peer's) and a
 * connection on it. */
struct fixture {
	struct loop *loop;
	int peer;
	struct rpc_conn *conn;
	struct fake fake;
	struct closed closed;
};

static int fixture_init(struct fixture *fx)
{
	int sv[2];

	*fx = (struct fixture){ .peer = -1 };
	if (loop_new(&fx->loop) < 0)
		return -1;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) < 0)
		return -1;
	fx->peer = sv[1];
	fx->fake = (struct fake){ .loop = fx->loop, .alive = true, .deadline = USEC_INFINITY };
	fx->closed.loop = fx->loop;
	return rpc_conn_new(fx->loop, sv[0], &fake_ops, &fx->fake, on_close, &fx->closed, &fx->conn);
}

static void fixture_done(struct fixture *fx)
{
	if (!fx->closed.called)
		rpc_conn_free(fx->conn);
	safe_close(fx->peer);
	loop_free(fx->loop);
}

/* Runs the loop for n rounds exactly (a deferred source that schedules
 * itself: each round runs it once, and the loop never blocks). */
static unsigned rounds_left;

static void count_round(struct loop_defer *d, void *ud)
{
	if (--rounds_left == 0) {
		loop_defer_free(d);
		loop_exit(ud, 0);
		return;
	}
	loop_defer_schedule(d);
}

static int run_rounds(struct loop *l, unsigned n)
{
	struct loop_defer *d;
	int r = loop_add_defer(l, count_round, l, &d);
	if (r < 0)
		return r;
	rounds_left = n;
	loop_defer_schedule(d);
	return loop_run(l);
}

static size_t queued_at_peer(int fd)
{
	int n = 0;
	(void)ioctl(fd, FIONREAD, &n);
	return (size_t)n;
}

/* The peer reads everything; exits the loop once it has it all. */
static size_t peer_received;

static void peer_drain(struct loop_io *io, int fd, uint32_t ev, void *ud)
{
	static uint8_t buf[CHUNK];
	ssize_t n;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		peer_received += (size_t)n;
	if (peer_received == TOTAL)
		loop_exit(ud, 0);
}

TEST(backpressure_bounds_the_buffer_and_stops_reading_at_the_mark)
{
	struct fixture fx;
	struct loop_io *io;

	CHECK_EQ(fixture_init(&fx), 0);
	fx.fake.to_send = TOTAL;
	/* The peer reads nothing: the socket fills, and the connection holds
	 * no more than its mark (and one chunk) of the session's output. */
	CHECK_EQ(run_rounds(fx.loop, 20), 0);
	CHECK(fx.fake.pulled < TOTAL);
	CHECK(fx.fake.pulled - queued_at_peer(fx.peer) < OUT_HIGH + CHUNK);
	/* Blocked on writing, it still reads (both peers writing must not
	 * deadlock); after that read it pulls up to the mark again... */
	CHECK_EQ(write(fx.peer, "hello", 5), 5);
	CHECK_EQ(run_rounds(fx.loop, 20), 0);
	CHECK_EQ(fx.fake.fed, 5);
	size_t unsent = fx.fake.pulled - queued_at_peer(fx.peer);
	CHECK(unsent >= OUT_HIGH);
	CHECK(unsent < OUT_HIGH + CHUNK);
	/* ...and at the mark it stops reading the peer. */
	CHECK_EQ(write(fx.peer, "world", 5), 5);
	CHECK_EQ(run_rounds(fx.loop, 20), 0);
	CHECK_EQ(fx.fake.fed, 5);
	/* The peer reads: everything arrives, and the rest is fed. */
	peer_received = 0;
	CHECK_EQ(loop_add_io(fx.loop, fx.peer, EPOLLIN, peer_drain, fx.loop, &io), 0);
	CHECK_EQ(loop_run(fx.loop), 0);
	CHECK_EQ(peer_received, TOTAL);
	CHECK_EQ(fx.fake.pulled, TOTAL);
	CHECK_EQ(run_rounds(fx.loop, 2), 0);
	CHECK_EQ(fx.fake.fed, 10);
	CHECK(!fx.closed.called);
	loop_io_free(io);
	fixture_done(&fx);
}

TEST(deadline_timer_calls_expire_at_the_session_deadline)
{
	struct fixture fx;

	CHECK_EQ(fixture_init(&fx), 0);
	uint64_t deadline = now_usec() + 20 * USEC_PER_MSEC;
	fx.fake.deadline = deadline;
	/* The deadline is read after the first event (here: writable). */
	CHECK_EQ(loop_run(fx.loop), 0);
	CHECK(fx.fake.expired_at >= deadline);
	CHECK(!fx.closed.called);
	fixture_done(&fx);
}

TEST(peer_close_closes_with_reason_zero)
{
	struct fixture fx;

	CHECK_EQ(fixture_init(&fx), 0);
	fx.peer = safe_close(fx.peer);
	CHECK_EQ(loop_run(fx.loop), 0);
	CHECK(fx.closed.called);
	CHECK_EQ(fx.closed.reason, 0);
	fixture_done(&fx);
}

TEST(session_done_closes_once_its_output_is_out)
{
	struct fixture fx;
	uint8_t buf[CHUNK];

	CHECK_EQ(fixture_init(&fx), 0);
	fx.fake.to_send = 1000;
	fx.fake.alive = false;
	CHECK_EQ(loop_run(fx.loop), 0);
	CHECK(fx.closed.called);
	CHECK_EQ(fx.closed.reason, 0);
	CHECK_EQ(read(fx.peer, buf, sizeof(buf)), 1000);
	CHECK_EQ(read(fx.peer, buf, sizeof(buf)), 0);
	fixture_done(&fx);
}

TEST(protocol_error_sends_what_is_queued_then_closes)
{
	struct fixture fx;
	uint8_t buf[CHUNK];

	CHECK_EQ(fixture_init(&fx), 0);
	/* Nothing to say until the peer's bytes are refused; then a GOAWAY's
	 * worth (17 bytes) is queued. */
	fx.fake.feed_result = -EPROTO;
	CHECK_EQ(run_rounds(fx.loop, 2), 0);
	fx.fake.to_send = 17;
	CHECK_EQ(write(fx.peer, "junk", 4), 4);
	CHECK_EQ(loop_run(fx.loop), 0);
	CHECK(fx.closed.called);
	CHECK_EQ(fx.closed.reason, -EPROTO);
	CHECK_EQ(fx.fake.fed, 4);
	CHECK_EQ(read(fx.peer, buf, sizeof(buf)), 17);
	CHECK_EQ(read(fx.peer, buf, sizeof(buf)), 0);
	fixture_done(&fx);
}

/* Output that appears outside the connection's I/O (a child's exit, here
 * a timer) goes out in the same round: the kick runs at step 5, after
 * which a deferred source scheduled later already sees the bytes. */
struct kick_test {
	struct fixture *fx;
	struct loop_defer *check;
	size_t seen;
};

static void kick_check(struct loop_defer *d, void *ud)
{
	struct kick_test *kt = ud;
	kt->seen = queued_at_peer(kt->fx->peer);
	loop_exit(kt->fx->loop, 0);
}

static void kick_timer(struct loop_timer *t, void *ud)
{
	struct kick_test *kt = ud;
	loop_timer_free(t);
	kt->fx->fake.to_send = 100;
	rpc_conn_kick(kt->fx->conn);
	loop_defer_schedule(kt->check);
}

TEST(kick_writes_in_the_same_round)
{
	struct fixture fx;
	struct kick_test kt = { .fx = &fx };
	struct loop_timer *t;

	CHECK_EQ(fixture_init(&fx), 0);
	CHECK_EQ(run_rounds(fx.loop, 2), 0); /* settled: nothing to send */
	CHECK_EQ(loop_add_defer(fx.loop, kick_check, &kt, &kt.check), 0);
	CHECK_EQ(loop_add_timer(fx.loop, now_usec() + USEC_PER_MSEC, kick_timer, &kt, &t), 0);
	CHECK_EQ(loop_run(fx.loop), 0);
	CHECK_EQ(kt.seen, 100);
	loop_defer_free(kt.check);
	fixture_done(&fx);
}
