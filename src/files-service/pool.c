#include "pool.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "agent/worker.h"
#include "base/list.h"
#include "base/time-util.h"
#include "frame.h"
#include "ring.h"

struct fsvc_proc {
	struct files_service *svc;
	struct fsvc_proc *prev, *next; /* svc->procs */
	struct fsvc_proc *next_idle;
	struct worker *worker; /* NULL once exited */
	int fd;		       /* maitred's end; -1 once given up */
	struct loop_io *io;    /* fd's watch, for the worker's life */
	uint32_t events;       /* what io asks for (0: io is NULL) */
	int child_fd;	       /* the worker's end, during the fork */
	bool counted;	       /* in svc->busy */
	bool idle;
	uint64_t idle_since;
	fsvc_proc_io_fn on_io; /* its call's; NULL when it has none */
	fsvc_proc_exit_fn on_exit;
	void *userdata;
	/* One frame from the worker (FSVC_FRAME_MAX), mapped apart: freed
	 * with the worker, it goes back to the kernel at once, where a heap
	 * block left among others would stay in maitred's RSS. */
	uint8_t *frame;
	/* Its ring's memfd (ring.h), -1 without; mapped only during the
	 * fork, for the worker to inherit. */
	int ring_fd;
	uint8_t *ring_map;
};

/* Stops watching and closes maitred's end: the worker exits once it has
 * read everything (or once its stuck disk lets it). */
static void proc_close(struct fsvc_proc *p)
{
	loop_io_free(p->io);
	p->io = NULL;
	p->events = 0;
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
}

static void proc_release(struct fsvc_proc *p)
{
	if (p->ring_fd >= 0)
		close(p->ring_fd);
	fsvc_ring_unmap(p->ring_map);
	if (p->frame)
		(void)munmap(p->frame, FSVC_FRAME_MAX);
	free(p);
}

static void proc_free(struct fsvc_proc *p)
{
	struct files_service *s = p->svc;

	worker_free(p->worker);
	proc_close(p);
	LIST_REMOVE(s->procs, p);
	proc_release(p);
}

static void idle_remove(struct fsvc_proc *p)
{
	struct files_service *s = p->svc;

	for (struct fsvc_proc **i = &s->idle; *i; i = &(*i)->next_idle)
		if (*i == p) {
			*i = p->next_idle;
			s->n_idle--;
			break;
		}
	p->idle = false;
	p->next_idle = NULL;
}

static void uncount(struct fsvc_proc *p)
{
	if (!p->counted)
		return;
	p->counted = false;
	p->svc->busy--;
	p->svc->worker_free(p->svc);
}

static void on_worker_exit(int result, void *userdata)
{
	struct fsvc_proc *p = userdata;
	fsvc_proc_exit_fn fn = p->on_exit;

	worker_free(p->worker);
	p->worker = NULL;
	if (fn) {
		/* Its call goes on reading the frames it left, then puts it. */
		p->on_exit = NULL;
		fn(p->userdata);
		return;
	}
	if (p->idle)
		idle_remove(p);
	uncount(p);
	proc_free(p);
}

static void retire(struct fsvc_proc *p);

static void on_proc_io(struct loop_io *io, int fd, uint32_t events, void *userdata)
{
	struct fsvc_proc *p = userdata;

	if (p->on_io)
		return p->on_io(events, p->userdata);
	/* Idle: a worker waiting for its next JOB says nothing. This is its
	 * end (it died) or a frame it had no business sending. */
	retire(p);
}

int fsvc_proc_watch(struct fsvc_proc *p, uint32_t events)
{
	int r;

	if (events == p->events)
		return 0;
	if (!events) {
		loop_io_free(p->io);
		p->io = NULL;
	} else if (p->io) {
		r = loop_io_set_events(p->io, events);
		if (r < 0)
			return r;
	} else {
		r = loop_add_io(p->svc->core->loop, p->fd, events, on_proc_io, p, &p->io);
		if (r < 0)
			return r;
	}
	p->events = events;
	return 0;
}

static int run_worker(void *arg)
{
	struct fsvc_proc *p = arg;

	return fsvc_worker_main(p->child_fd, p->ring_map);
}

static int proc_new(struct files_service *s, struct fsvc_proc **ret)
{
	struct fsvc_proc *p = calloc(1, sizeof(*p));
	int fds[2], r;

	if (!p)
		return -ENOMEM;
	p->ring_fd = -1;
	/* Without a ring, the data goes through the socket, slower. */
	if (fsvc_ring_create(&p->ring_fd) == 0 && !(p->ring_map = fsvc_ring_map(p->ring_fd))) {
		close(p->ring_fd);
		p->ring_fd = -1;
	}
	p->frame = mmap(NULL, FSVC_FRAME_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p->frame == MAP_FAILED) {
		p->frame = NULL;
		proc_release(p);
		return -ENOMEM;
	}
	r = fsvc_socketpair(fds);
	if (r < 0) {
		proc_release(p);
		return r;
	}
	p->svc = s;
	p->fd = fds[0];
	p->child_fd = fds[1];
	r = fsvc_proc_watch(p, EPOLLIN);
	if (r >= 0)
		r = worker_start(s->core->loop, run_worker, p, fds[1], on_worker_exit, p, &p->worker);
	close(fds[1]);
	fsvc_ring_unmap(p->ring_map);
	p->ring_map = NULL;
	if (r < 0) {
		proc_close(p);
		proc_release(p);
		return r;
	}
	(void)fcntl(p->fd, F_SETFL, O_NONBLOCK);
	LIST_PREPEND(s->procs, p);
	*ret = p;
	return 0;
}

int fsvc_proc_get(struct files_service *s, fsvc_proc_io_fn on_io, fsvc_proc_exit_fn on_exit, void *userdata,
		  struct fsvc_proc **ret)
{
	struct fsvc_proc *p = s->idle;
	int r;

	if (p)
		idle_remove(p);
	else {
		r = proc_new(s, &p);
		if (r < 0)
			return r;
	}
	p->counted = true;
	s->busy++;
	p->on_io = on_io;
	p->on_exit = on_exit;
	p->userdata = userdata;
	*ret = p;
	return 0;
}

int fsvc_proc_fd(const struct fsvc_proc *p)
{
	return p->fd;
}

int fsvc_proc_ring_fd(const struct fsvc_proc *p)
{
	return p->ring_fd;
}

uint8_t *fsvc_proc_frame_buf(struct fsvc_proc *p)
{
	return p->frame;
}

static void idle_expire(struct loop_timer *t, void *userdata);

static void arm_idle_timer(struct files_service *s)
{
	uint64_t oldest = UINT64_MAX;

	for (struct fsvc_proc *p = s->idle; p; p = p->next_idle)
		if (p->idle_since < oldest)
			oldest = p->idle_since;
	if (oldest == UINT64_MAX)
		return;
	if (!s->idle_timer) {
		if (loop_add_timer(s->core->loop, oldest + FSVC_IDLE_USEC, idle_expire, s, &s->idle_timer) < 0)
			s->idle_timer = NULL; /* the workers stay until used */
		return;
	}
	loop_timer_set(s->idle_timer, oldest + FSVC_IDLE_USEC);
}

/* An idle worker given up: its socket's end makes it exit. */
static void retire(struct fsvc_proc *p)
{
	idle_remove(p);
	proc_close(p);
	if (!p->worker)
		proc_free(p);
}

static void idle_expire(struct loop_timer *t, void *userdata)
{
	struct files_service *s = userdata;
	uint64_t now = now_usec();
	struct fsvc_proc *p = s->idle;

	while (p) {
		struct fsvc_proc *next = p->next_idle;
		if (p->idle_since + FSVC_IDLE_USEC <= now)
			retire(p);
		p = next;
	}
	arm_idle_timer(s);
}

void fsvc_proc_put(struct fsvc_proc *p, bool reuse)
{
	struct files_service *s = p->svc;

	p->on_io = NULL;
	p->on_exit = NULL;
	if (!p->worker) {
		uncount(p);
		proc_free(p);
		return;
	}
	/* Idle, it is watched for its end (on_proc_io). */
	if (reuse && s->n_idle < FSVC_IDLE_MAX && fsvc_proc_watch(p, EPOLLIN) == 0) {
		p->idle = true;
		p->idle_since = now_usec();
		p->next_idle = s->idle;
		s->idle = p;
		s->n_idle++;
		arm_idle_timer(s);
		uncount(p);
		return;
	}
	/* It exits at the end of its socket (or once its stuck disk lets it);
	 * it counts as busy until then. */
	proc_close(p);
}

void fsvc_pool_free(struct files_service *s)
{
	loop_timer_free(s->idle_timer);
	s->idle_timer = NULL;
	while (s->procs) {
		struct fsvc_proc *p = s->procs;
		p->on_io = NULL;
		p->on_exit = NULL;
		p->idle = false;
		proc_free(p);
	}
	s->idle = NULL;
	s->n_idle = 0;
	s->busy = 0;
}
