/* Allocation-failure sweep over valet.v1.Files in maitred's process: the
 * real server and the service (src/files-service/) with its worker
 * processes, driven by rpc/stream.c clients in the same loop. For every N
 * the N-th allocation of maitred's side fails (the workers are forked
 * disarmed: an idle worker kept for the next call would otherwise carry
 * the armed count into it; a Stat is answered in maitred itself, see
 * files-service/stat-here.h): a Write, a Stat and a Read must each end with
 * a status, never hang, the target must be either the old file or the
 * whole new one, nothing may leak, and the service must serve the same
 * calls correctly right after. The same for a WriteTree (its entries and
 * data gathered in batches, one file larger than a batch) and a ReadTree
 * of it: each file of the tree absent or whole. Each call's deadline
 * (5 s) is the hang detector: a call must end before it. */
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>

#include "agent/agent.h"
#include "base/time-util.h"
#include "failmalloc-service.h"
#include "failmalloc.h"
#include "files-service/service.h"
#include "files/names.h"
#include "files.pb-c.h"
#include "rpc/server.h"
#include "rpc/stream.h"
#include "test.h"

#define GUARD_USEC (10 * USEC_PER_SEC)
#define DATA_SIZE (200 * 1024)

static struct loop *L;
static char dir[64], spec[128], target[128], tree[128];
static uint8_t data[DATA_SIZE];

struct call {
	struct fm_end end; /* first: fm_on_done */
	bool tree;	   /* a ReadTree: its messages are TreeResponses */
	size_t bytes;	   /* Read's or ReadTree's data */
	int messages;
};

static void on_message(struct rpc_stream_call *sc, const uint8_t *d, size_t len, void *ud)
{
	struct call *c = ud;
	Valet__V1__ReadResponse *m;
	Valet__V1__TreeResponse *t;

	c->messages++;
	failmalloc_hold(true);
	if (c->tree) {
		t = valet__v1__tree_response__unpack(NULL, len, d);
		if (t && t->part_case == VALET__V1__TREE_RESPONSE__PART_DATA)
			c->bytes += t->data.len;
		if (t)
			valet__v1__tree_response__free_unpacked(t, NULL);
	} else {
		m = valet__v1__read_response__unpack(NULL, len, d);
		if (m && m->part_case == VALET__V1__READ_RESPONSE__PART_DATA)
			c->bytes += m->data.len;
		if (m)
			valet__v1__read_response__free_unpacked(m, NULL);
	}
	failmalloc_hold(false);
}

static const struct rpc_stream_call_ops ops = { .on_message = on_message, .on_done = fm_on_done };

static struct files_service *FS;

static void on_tick(struct loop_timer *t, void *ud)
{
	loop_exit(L, 0);
}

/* Runs the loop until no worker is busy (at most the guard's time). A
 * Write that failed on maitred's side after its COMMIT was sent still has
 * its worker renaming the file: what a later Read sees is settled once
 * that worker is done (under load it could come after the Read). */
static void settle_workers(void)
{
	uint64_t end = now_usec() + GUARD_USEC;
	struct loop_timer *tick;

	while (FS->busy > 0 && now_usec() < end) {
		failmalloc_hold(true);
		CHECK_EQ(loop_add_timer(L, now_usec() + 5 * USEC_PER_MSEC, on_tick, NULL, &tick), 0);
		failmalloc_hold(false);
		(void)loop_run(L);
		loop_timer_free(tick);
	}
	CHECK_EQ(FS->busy, 0u);
}

/* One call; c->end.done stays 0 when it could not even start (no memory). */
static void call(const char *method, const ProtobufCMessage *const *msgs, size_t n, struct call *c)
{
	struct rpc_stream_call *sc;
	struct addr a;
	int r;

	*c = (struct call){ .end.loop = L, .tree = strstr(method, "ReadTree") != NULL };
	CHECK_EQ(addr_parse(spec, &a), 0);
	r = rpc_stream_call_start(L, &a, method, 5 * USEC_PER_SEC, &ops, c, &sc);
	if (r < 0) {
		CHECK_EQ(r, -ENOMEM);
		return;
	}
	for (size_t i = 0; i < n; i++)
		if (rpc_stream_call_send(sc, msgs[i]) < 0) {
			rpc_stream_call_cancel(sc);
			break;
		}
	(void)rpc_stream_call_close_send(sc);
	fm_run_until(&c->end, GUARD_USEC);
	/* Ended by a status of its own, never by waiting for its deadline
	 * (a window never given back once kept a Write waiting for it). */
	CHECK(c->end.code != RPC_DEADLINE_EXCEEDED);
}

static bool path_is(const char *path, const uint8_t *want, size_t len)
{
	uint8_t buf[DATA_SIZE + 1];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf));
	close(fd);
	return n == (ssize_t)len && memcmp(buf, want, len) == 0;
}

static bool file_is(const uint8_t *want, size_t len)
{
	return path_is(target, want, len);
}

/* Write, Stat, Read; *ok: how many answered OK. */
static void three_calls(int *ok)
{
	Valet__V1__WriteHeader hdr = VALET__V1__WRITE_HEADER__INIT;
	Valet__V1__WriteRequest h = VALET__V1__WRITE_REQUEST__INIT, d1 = VALET__V1__WRITE_REQUEST__INIT;
	Valet__V1__StatRequest st = VALET__V1__STAT_REQUEST__INIT;
	Valet__V1__ReadRequest rd = VALET__V1__READ_REQUEST__INIT;
	const ProtobufCMessage *w[] = { &h.base, &d1.base }, *s[] = { &st.base }, *r[] = { &rd.base };
	struct call c;

	hdr.path = target;
	h.part_case = VALET__V1__WRITE_REQUEST__PART_HEADER;
	h.header = &hdr;
	d1.part_case = VALET__V1__WRITE_REQUEST__PART_DATA;
	d1.data.data = data;
	d1.data.len = sizeof(data);
	st.path = target;
	rd.path = target;

	*ok = 0;
	call("/valet.v1.Files/Write", w, 2, &c);
	if (c.end.done) {
		*ok += c.end.code == RPC_OK;
		/* Atomic: the old (empty) file or all of the new one. */
		CHECK(file_is(data, sizeof(data)) || file_is(data, 0));
		if (c.end.code == RPC_OK)
			CHECK(file_is(data, sizeof(data)));
	}
	settle_workers();
	call("/valet.v1.Files/Stat", s, 1, &c);
	*ok += c.end.done && c.end.code == RPC_OK;
	call("/valet.v1.Files/Read", r, 1, &c);
	if (c.end.done && c.end.code == RPC_OK) {
		if (file_is(data, sizeof(data)))
			CHECK_EQ(c.bytes, sizeof(data));
		*ok += 1;
	}
}

/* The file rel of the tree: absent, or whole (the tree's files are each
 * written atomically); present once the WriteTree answered OK. */
static void check_tree_file(const char *rel, const uint8_t *want, size_t len, bool ok)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", tree, rel);
	if (ok || stat(p, &st) == 0)
		CHECK(path_is(p, want, len));
}

/* WriteTree: a directory, two small files, a hard link, one file of
 * DATA_SIZE in four messages (larger than a batch: split in several
 * frames); the second round writes over the first's names. Then
 * ReadTree. *ok: how many answered OK. */
static void tree_calls(int *ok)
{
	Valet__V1__TreeHeader hdr = VALET__V1__TREE_HEADER__INIT;
	Valet__V1__TreeEntry e[5];
	Valet__V1__TreeRequest q[11];
	Valet__V1__ReadTreeRequest rt = VALET__V1__READ_TREE_REQUEST__INIT;
	const ProtobufCMessage *w[11], *r[] = { &rt.base };
	const size_t quarter = DATA_SIZE / 4;
	size_t n = 0;
	struct call c;

	for (size_t i = 0; i < 5; i++) {
		valet__v1__tree_entry__init(&e[i]);
		e[i].mode = 0644;
	}
	for (size_t i = 0; i < 11; i++) {
		valet__v1__tree_request__init(&q[i]);
		w[i] = &q[i].base;
	}
	hdr.root = tree;
	q[n].part_case = VALET__V1__TREE_REQUEST__PART_HEADER;
	q[n++].header = &hdr;
	e[0].path = "d";
	e[0].type = VALET__V1__FILE_INFO__TYPE__DIRECTORY;
	e[0].mode = 0755;
	e[1].path = "d/a";
	e[1].type = VALET__V1__FILE_INFO__TYPE__FILE;
	e[1].size = 5;
	e[2].path = "d/empty";
	e[2].type = VALET__V1__FILE_INFO__TYPE__FILE;
	e[3].path = "d/link";
	e[3].type = VALET__V1__FILE_INFO__TYPE__FILE;
	e[3].hardlink_to = "d/a";
	e[4].path = "big";
	e[4].type = VALET__V1__FILE_INFO__TYPE__FILE;
	e[4].size = DATA_SIZE;
	for (size_t i = 0; i < 5; i++) {
		q[n].part_case = VALET__V1__TREE_REQUEST__PART_ENTRY;
		q[n++].entry = &e[i];
		if (i == 1) {
			q[n].part_case = VALET__V1__TREE_REQUEST__PART_DATA;
			q[n].data.data = (uint8_t *)"hello";
			q[n++].data.len = 5;
		}
	}
	for (size_t i = 0; i < 4; i++) {
		q[n].part_case = VALET__V1__TREE_REQUEST__PART_DATA;
		q[n].data.data = data + i * quarter;
		q[n++].data.len = quarter;
	}
	rt.root = tree;

	*ok = 0;
	call("/valet.v1.Files/WriteTree", w, n, &c);
	settle_workers();
	if (c.end.done) {
		*ok += c.end.code == RPC_OK;
		check_tree_file("d/a", (const uint8_t *)"hello", 5, c.end.code == RPC_OK);
		check_tree_file("d/empty", (const uint8_t *)"", 0, c.end.code == RPC_OK);
		check_tree_file("d/link", (const uint8_t *)"hello", 5, c.end.code == RPC_OK);
		check_tree_file("big", data, DATA_SIZE, c.end.code == RPC_OK);
	}
	call("/valet.v1.Files/ReadTree", r, 1, &c);
	if (c.end.done && c.end.code == RPC_OK) {
		/* An entry, or an entry and its data, for each: at least. */
		CHECK(c.messages >= 5);
		*ok += 1;
	}
}

static void tree_scenario(unsigned long n, unsigned long *ret_count)
{
	struct agent a = { 0 };
	struct files_service fs;
	struct rpc_server *srv;

	CHECK_EQ(loop_new(&L), 0);
	a.core.loop = L;
	CHECK_EQ(files_service_register(&a, &fs), 0);
	FS = &fs;
	CHECK_EQ(fm_serve(L, &a, spec, &srv), 0);

	int ok;
	failmalloc_arm(n);
	tree_calls(&ok);
	*ret_count = failmalloc_disarm();
	/* And right after, without failures: both answer, the tree whole
	 * (the link too: written over the first round's names). */
	tree_calls(&ok);
	CHECK_EQ(ok, 2);

	rpc_server_free(srv);
	files_service_free(&fs);
	loop_free(L);
}

static void scenario(unsigned long n, unsigned long *ret_count)
{
	struct agent a = { 0 };
	struct files_service fs;
	struct rpc_server *srv;
	int fd;

	CHECK_EQ(loop_new(&L), 0);
	a.core.loop = L;
	CHECK_EQ(files_service_register(&a, &fs), 0);
	FS = &fs;
	CHECK_EQ(fm_serve(L, &a, spec, &srv), 0);
	fd = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	CHECK(fd >= 0);
	close(fd);

	int ok;
	/* A Stat answered in maitred's loop looks the names up here, in
	 * this process: from nothing every run, its allocations swept too. */
	files_forget_names();
	failmalloc_arm(n);
	three_calls(&ok);
	*ret_count = failmalloc_disarm();
	/* And right after, without failures: all three answer. */
	three_calls(&ok);
	CHECK_EQ(ok, 3);

	rpc_server_free(srv);
	files_service_free(&fs);
	loop_free(L);
}

static void disarm_in_child(void)
{
	(void)failmalloc_disarm();
}

/* What both sweeps start from: a directory of their own (from
 * template), the server's address in it, the data to send. */
static void sweep_setup(const char *template)
{
	CHECK_EQ(pthread_atfork(NULL, NULL, disarm_in_child), 0);
	snprintf(dir, sizeof(dir), "%s", template);
	CHECK(mkdtemp(dir));
	snprintf(spec, sizeof(spec), "unix:%s/s", dir);
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)(i * 7 + 3);
}

TEST(sweep_files_service_write_stat_read)
{
	sweep_setup("/tmp/valet-fm-files-XXXXXX");
	snprintf(target, sizeof(target), "%s/target", dir);
	/* The calls' connections, sessions, messages and the service's jobs:
	 * hundreds. */
	unsigned long total = failmalloc_sweep(NULL, scenario, 0);
	CHECK(total > 100);
	(void)unlink(target);
	char sock[96];
	snprintf(sock, sizeof(sock), "%s/s", dir);
	(void)unlink(sock);
	(void)rmdir(dir);
}

TEST(sweep_files_service_write_tree_read_tree)
{
	sweep_setup("/tmp/valet-fm-tree-XXXXXX");
	snprintf(tree, sizeof(tree), "%s/tree", dir);
	unsigned long total = failmalloc_sweep(NULL, tree_scenario, 0);
	CHECK(total > 100);
	char p[192];
	const char *names[] = { "d/a", "d/empty", "d/link", "big" };
	for (size_t i = 0; i < 4; i++) {
		snprintf(p, sizeof(p), "%s/%s", tree, names[i]);
		(void)unlink(p);
	}
	snprintf(p, sizeof(p), "%s/d", tree);
	(void)rmdir(p);
	(void)rmdir(tree);
	snprintf(p, sizeof(p), "%s/s", dir);
	(void)unlink(p);
	(void)rmdir(dir);
}
