/* Fault injection for vshd, linked into the test-only program vshd-faults
 * with -Wl,--wrap: the event loop's registrations fail on demand, so the
 * integration tests (tests/integration/test_vsh_faults.py) can check that
 * every such failure ends in a clear answer, never a silent hang.
 *
 * VALET_FAIL is a comma-separated list of NAME[:child][:N]: the N-th call
 * of NAME and every later one fails (every call without N); with "child",
 * only calls in forked processes (the sessions) count and fail. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "loop/loop.h"

static pid_t first_pid;
static pid_t counted_pid;

enum { F_ADD_IO, F_SET_EVENTS, F_ADD_TIMER, F_WATCH_CHILD, F_N };
static const char *const names[F_N] = { "loop_add_io", "loop_io_set_events", "loop_add_timer", "loop_watch_child" };
static unsigned calls[F_N];

__attribute__((constructor)) static void faults_init(void)
{
	first_pid = counted_pid = getpid();
}

static bool fault(int which)
{
	const char *spec = getenv("VALET_FAIL");
	pid_t me = getpid();
	bool child = me != first_pid;

	if (me != counted_pid) {
		/* A new process counts its own calls. */
		memset(calls, 0, sizeof(calls));
		counted_pid = me;
	}
	calls[which]++;
	if (!spec)
		return false;
	size_t nlen = strlen(names[which]);
	for (const char *p = spec; *p;) {
		const char *end = strchrnul(p, ',');
		if ((size_t)(end - p) >= nlen && strncmp(p, names[which], nlen) == 0 &&
		    (p[nlen] == ',' || p[nlen] == ':' || p[nlen] == 0)) {
			const char *q = p + nlen;
			bool only_child = false;
			unsigned from = 1;
			if (strncmp(q, ":child", 6) == 0) {
				only_child = true;
				q += 6;
			}
			if (*q == ':')
				from = (unsigned)strtoul(q + 1, NULL, 10);
			if ((!only_child || child) && calls[which] >= from)
				return true;
		}
		p = *end ? end + 1 : end;
	}
	return false;
}

int __real_loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *userdata, struct loop_io **ret);
int __wrap_loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *userdata, struct loop_io **ret);
int __wrap_loop_add_io(struct loop *l, int fd, uint32_t events, loop_io_fn fn, void *userdata, struct loop_io **ret)
{
	return fault(F_ADD_IO) ? -ENOMEM : __real_loop_add_io(l, fd, events, fn, userdata, ret);
}

int __real_loop_io_set_events(struct loop_io *io, uint32_t events);
int __wrap_loop_io_set_events(struct loop_io *io, uint32_t events);
int __wrap_loop_io_set_events(struct loop_io *io, uint32_t events)
{
	return fault(F_SET_EVENTS) ? -ENOMEM : __real_loop_io_set_events(io, events);
}

int __real_loop_add_timer(struct loop *l, uint64_t deadline, loop_timer_fn fn, void *userdata, struct loop_timer **ret);
int __wrap_loop_add_timer(struct loop *l, uint64_t deadline, loop_timer_fn fn, void *userdata, struct loop_timer **ret);
int __wrap_loop_add_timer(struct loop *l, uint64_t deadline, loop_timer_fn fn, void *userdata, struct loop_timer **ret)
{
	return fault(F_ADD_TIMER) ? -ENOMEM : __real_loop_add_timer(l, deadline, fn, userdata, ret);
}

int __real_loop_watch_child(struct loop *l, pid_t pid, loop_child_fn fn, void *userdata, struct loop_child **ret);
int __wrap_loop_watch_child(struct loop *l, pid_t pid, loop_child_fn fn, void *userdata, struct loop_child **ret);
int __wrap_loop_watch_child(struct loop *l, pid_t pid, loop_child_fn fn, void *userdata, struct loop_child **ret)
{
	return fault(F_WATCH_CHILD) ? -ENOMEM : __real_loop_watch_child(l, pid, fn, userdata, ret);
}
