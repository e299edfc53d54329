#include "ring.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/macro.h"

int fsvc_ring_create(int *ret_fd)
{
	int fd = memfd_create("valet-files-ring", MFD_CLOEXEC);

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)FSVC_RING_SIZE) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	*ret_fd = fd;
	return 0;
}

uint8_t *fsvc_ring_map(int fd)
{
	void *p = mmap(NULL, FSVC_RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);

	return p == MAP_FAILED ? NULL : p;
}

void fsvc_ring_unmap(uint8_t *map)
{
	if (map)
		(void)munmap(map, FSVC_RING_SIZE);
}

void fsvc_ring_release(int fd)
{
	(void)fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, (off_t)FSVC_RING_SIZE);
}

int fsvc_send_slot(int fd, unsigned slot, size_t len, const void *head, size_t hlen)
{
	struct fsvc_slot_head h = { .slot = (uint8_t)slot, .len = (uint32_t)len };

	if (hlen > FSVC_FIELD_HEAD_MAX)
		return -E2BIG;
	return fsvc_send(fd, FSVC_SLOT, &h, sizeof(h), head, hlen);
}

int fsvc_send_free(int fd, unsigned slot)
{
	uint8_t s = (uint8_t)slot;

	return fsvc_send(fd, FSVC_FREE, &s, 1, NULL, 0);
}

int fsvc_slot_parse(const uint8_t *p, size_t n, unsigned *ret_slot, size_t *ret_len, const uint8_t **ret_head,
		    size_t *ret_hlen)
{
	struct fsvc_slot_head h;

	if (n < sizeof(h) || n > sizeof(h) + FSVC_FIELD_HEAD_MAX)
		return -EBADMSG;
	memcpy(&h, p, sizeof(h));
	if (h.slot >= FSVC_RING_SLOTS || h.len > FSVC_CHUNK)
		return -EBADMSG;
	*ret_slot = h.slot;
	*ret_len = h.len;
	*ret_head = p + sizeof(h);
	*ret_hlen = n - sizeof(h);
	return 0;
}

int fsvc_free_parse(const uint8_t *p, size_t n)
{
	return n == 1 && p[0] < FSVC_RING_SLOTS ? p[0] : -EBADMSG;
}

void fsvc_ring_reset(struct fsvc_ring *r)
{
	r->free = (1u << FSVC_RING_SLOTS) - 1;
}

void fsvc_ring_put(struct fsvc_ring *r, unsigned slot)
{
	r->free |= 1u << slot;
}

int fsvc_ring_take(struct fsvc_ring *r, int fd)
{
	uint8_t f[8];

	while (!r->free) {
		ssize_t n = recv(fd, f, sizeof(f), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -ECANCELED;
		int slot = f[0] == FSVC_FREE ? fsvc_free_parse(f + 1, (size_t)n - 1) : -EBADMSG;
		if (slot < 0)
			return slot;
		fsvc_ring_put(r, (unsigned)slot);
	}
	int slot = __builtin_ctz(r->free);
	r->free &= ~(1u << slot);
	return slot;
}
