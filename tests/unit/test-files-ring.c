/* files-service/ring.c and a Read's worker (work-read.c) around it: the
 * SLOT and FREE frames parsed and refused, a worker taking slots and
 * waiting for FREE frames, and a real worker process reading a file
 * with its ring and without one: the same bytes, in order, and no more
 * than the ring's slots in flight while maitred gives none back. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "files-service/frame.h"
#include "files-service/job.h"
#include "files-service/pool.h"
#include "files-service/ring.h"
#include "files.pb-c.h"
#include "test.h"

TEST(slot_and_free_frames_parsed_and_refused)
{
	uint8_t b[32];
	struct fsvc_slot_head h = { .slot = 3, .len = FSVC_CHUNK };
	const uint8_t *head;
	size_t len, hlen;
	unsigned slot;

	memcpy(b, &h, sizeof(h));
	memcpy(b + sizeof(h), "\x12\x05", 2);
	CHECK_EQ(fsvc_slot_parse(b, sizeof(h) + 2, &slot, &len, &head, &hlen), 0);
	CHECK(slot == 3 && len == FSVC_CHUNK && hlen == 2 && head[0] == 0x12);
	/* A slot past the ring, a length past a slot, cut short, a head
	 * longer than a field's. */
	h.slot = FSVC_RING_SLOTS;
	memcpy(b, &h, sizeof(h));
	CHECK_EQ(fsvc_slot_parse(b, sizeof(h), &slot, &len, &head, &hlen), -EBADMSG);
	h = (struct fsvc_slot_head){ .slot = 0, .len = FSVC_CHUNK + 1 };
	memcpy(b, &h, sizeof(h));
	CHECK_EQ(fsvc_slot_parse(b, sizeof(h), &slot, &len, &head, &hlen), -EBADMSG);
	h.len = 1;
	memcpy(b, &h, sizeof(h));
	CHECK_EQ(fsvc_slot_parse(b, sizeof(h) - 1, &slot, &len, &head, &hlen), -EBADMSG);
	CHECK_EQ(fsvc_slot_parse(b, sizeof(h) + FSVC_FIELD_HEAD_MAX + 1, &slot, &len, &head, &hlen), -EBADMSG);
	CHECK_EQ(fsvc_free_parse((const uint8_t *)"\x02", 1), 2);
	CHECK_EQ(fsvc_free_parse((const uint8_t *)"\x04", 1), -EBADMSG);
	CHECK_EQ(fsvc_free_parse((const uint8_t *)"\x01\x01", 2), -EBADMSG);
	CHECK_EQ(fsvc_free_parse(NULL, 0), -EBADMSG);
}

TEST(take_waits_for_free_frames)
{
	struct fsvc_ring ring = { .map = (uint8_t *)1 };
	int fds[2];

	CHECK_EQ(fsvc_socketpair(fds), 0);
	fsvc_ring_reset(&ring);
	for (int i = 0; i < FSVC_RING_SLOTS; i++)
		CHECK_EQ(fsvc_ring_take(&ring, fds[1]), i);
	fsvc_ring_put(&ring, 1);
	CHECK_EQ(fsvc_ring_take(&ring, fds[1]), 1);
	/* None free: the next FREE frame is the slot taken. */
	CHECK_EQ(fsvc_send_free(fds[0], 2), 0);
	CHECK_EQ(fsvc_ring_take(&ring, fds[1]), 2);
	CHECK_EQ(fsvc_send(fds[0], FSVC_COMMIT, NULL, 0, NULL, 0), 0);
	CHECK_EQ(fsvc_ring_take(&ring, fds[1]), -EBADMSG);
	CHECK_EQ(fsvc_send(fds[0], FSVC_FREE, "\x09", 1, NULL, 0), 0);
	CHECK_EQ(fsvc_ring_take(&ring, fds[1]), -EBADMSG);
	close(fds[0]);
	CHECK_EQ(fsvc_ring_take(&ring, fds[1]), -ECANCELED);
	close(fds[1]);
}

/* A file of size bytes that are not all alike. */
static void make_file(const char *path, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	uint8_t b[4096];

	CHECK(fd >= 0);
	for (size_t off = 0; off < size; off += sizeof(b)) {
		for (size_t i = 0; i < sizeof(b); i++)
			b[i] = (uint8_t)((off + i) * 2654435761u >> 13);
		size_t k = size - off < sizeof(b) ? size - off : sizeof(b);
		CHECK_EQ(write(fd, b, k), (ssize_t)k);
	}
	close(fd);
}

/* A worker process, as pool.c starts one: its socket's end, and its
 * ring mapped when ring_fd >= 0. The JOB of a Read of path is sent. */
static void start_reader(const char *path, int ring_fd, int *ret_fd, pid_t *ret_pid)
{
	Valet__V1__ReadRequest req = VALET__V1__READ_REQUEST__INIT;
	uint8_t job[512];
	uint8_t *map = ring_fd >= 0 ? fsvc_ring_map(ring_fd) : NULL;
	int fds[2];
	pid_t pid;

	CHECK(ring_fd < 0 || map);
	CHECK_EQ(fsvc_socketpair(fds), 0);
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		_exit(fsvc_worker_main(fds[1], map) < 0 ? 1 : 0);
	}
	fsvc_ring_unmap(map);
	close(fds[1]);
	req.path = (char *)path;
	job[0] = FSVC_READ;
	size_t n = valet__v1__read_request__pack(&req, job + 1);
	*ret_fd = fds[0];
	*ret_pid = pid;
	CHECK_EQ(fsvc_send(fds[0], FSVC_JOB, job, n + 1, NULL, 0), 0);
}

/* Reads the worker's answer as job.c does, the slots' data through
 * pread: the data messages' bytes appended to out, the number of SLOT
 * frames in *slots. Gives no slot back before hold frames have come:
 * the worker must wait for them. */
static void read_answer(int fd, int ring_fd, uint8_t *out, size_t cap, size_t *ret_got, int *slots, int hold)
{
	static uint8_t f[FSVC_FRAME_MAX];
	size_t got = 0;
	int held[FSVC_RING_SLOTS], n_held = 0;

	*slots = 0;
	*ret_got = 0;
	for (;;) {
		ssize_t n = recv(fd, f, sizeof(f), 0);
		CHECK(n > 0);
		if (f[0] == FSVC_DONE) {
			*ret_got = got;
			return;
		}
		const uint8_t *data = NULL, *head;
		size_t len = 0, hlen;
		unsigned slot;
		uint8_t buf[FSVC_CHUNK];
		if (f[0] == FSVC_SLOT) {
			CHECK_EQ(fsvc_slot_parse(f + 1, (size_t)n - 1, &slot, &len, &head, &hlen), 0);
			CHECK(hlen >= 2 && head[0] == 0x12); /* ReadResponse.data */
			CHECK_EQ(pread(ring_fd, buf, len, (off_t)slot * FSVC_CHUNK), (ssize_t)len);
			data = buf;
			(*slots)++;
			if (n_held < hold) {
				held[n_held++] = (int)slot;
				if (n_held == hold) {
					/* The worker has no slot left: nothing comes. */
					struct pollfd p = { .fd = fd, .events = POLLIN };
					CHECK_EQ(poll(&p, 1, 200), 0);
					for (int i = 0; i < n_held; i++)
						CHECK_EQ(fsvc_send_free(fd, (unsigned)held[i]), 0);
				}
			} else
				CHECK_EQ(fsvc_send_free(fd, slot), 0);
		} else {
			CHECK_EQ(f[0], FSVC_MSG);
			Valet__V1__ReadResponse *m = valet__v1__read_response__unpack(NULL, (size_t)n - 1, f + 1);
			CHECK(m);
			if (m->part_case == VALET__V1__READ_RESPONSE__PART_DATA) {
				memcpy(buf, m->data.data, m->data.len);
				data = buf;
				len = m->data.len;
			} else
				CHECK_EQ(m->part_case, VALET__V1__READ_RESPONSE__PART_INFO);
			valet__v1__read_response__free_unpacked(m, NULL);
		}
		CHECK(got + len <= cap);
		if (len)
			memcpy(out + got, data, len);
		got += len;
	}
}

static void check_read(bool with_ring)
{
	char dir[] = "/tmp/test-files-ring-XXXXXX", path[64];
	size_t size = 5 * FSVC_CHUNK + 1234;
	_cleanup_free_ uint8_t *want = malloc(size), *got = malloc(size + FSVC_CHUNK);
	int ring_fd = -1, fd, slots, status;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	make_file(path, size);
	int in = open(path, O_RDONLY | O_CLOEXEC);
	CHECK_EQ(read(in, want, size), (ssize_t)size);
	close(in);
	if (with_ring)
		CHECK_EQ(fsvc_ring_create(&ring_fd), 0);
	pid_t pid = -1;
	start_reader(path, ring_fd, &fd, &pid);
	CHECK(!test_failed_flag);
	size_t n = 0;
	read_answer(fd, ring_fd, got, size + FSVC_CHUNK, &n, &slots, with_ring ? FSVC_RING_SLOTS : 0);
	CHECK(!test_failed_flag);
	CHECK_EQ(n, size);
	CHECK(memcmp(got, want, size) == 0);
	/* With the ring, every piece came through it: 6 of FSVC_CHUNK. */
	CHECK_EQ(slots, with_ring ? 6 : 0);
	/* The worker waits for its next JOB, FREE frames left unread before
	 * it; the socket's end lets it go. */
	close(fd);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	if (ring_fd >= 0)
		close(ring_fd);
	unlink(path);
	rmdir(dir);
}

TEST(read_through_the_ring_same_bytes_with_back_pressure)
{
	check_read(true);
}

TEST(read_through_the_socket_without_a_ring)
{
	check_read(false);
}

/* A call given up while the worker waits for a slot: it ends. */
TEST(worker_waiting_for_a_slot_ends_with_the_socket)
{
	char dir[] = "/tmp/test-files-ring-XXXXXX", path[64];
	uint8_t f[FSVC_FRAME_MAX];
	int ring_fd, fd, status, slots = 0;

	CHECK(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	make_file(path, 8 * FSVC_CHUNK);
	CHECK_EQ(fsvc_ring_create(&ring_fd), 0);
	pid_t pid = -1;
	start_reader(path, ring_fd, &fd, &pid);
	CHECK(!test_failed_flag);
	while (slots < FSVC_RING_SLOTS) {
		ssize_t n = recv(fd, f, sizeof(f), 0);
		CHECK(n > 0);
		slots += f[0] == FSVC_SLOT;
	}
	close(fd);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	CHECK(WIFEXITED(status));
	close(ring_fd);
	unlink(path);
	rmdir(dir);
}
