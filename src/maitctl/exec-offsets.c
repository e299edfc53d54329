/* Where this host's maitctl got to in a process's output: two offsets in a
 * file mapped shared, stored as each piece is written out, so that they
 * are right even when maitctl is killed (the kernel keeps the page), and
 * `maitctl attach` prints every byte once. docs/process-cli.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "exec.h"

#define RECORD_MAGIC 0x76616c65u /* "vale" */

struct record {
	uint32_t magic;
	int32_t pid;
	uint64_t next[2];
};

/* $XDG_RUNTIME_DIR/maitctl/ADDRESS-ID, the address with '/' made '_'.
 * False without XDG_RUNTIME_DIR (or when the name does not fit). */
static bool record_path(const struct addr *addr, uint64_t id, char *buf, size_t size)
{
	const char *dir = getenv("XDG_RUNTIME_DIR");
	char a[256];

	if (!dir || dir[0] != '/')
		return false;
	(void)addr_format(addr, a, sizeof(a));
	for (char *c = a; *c; c++)
		if (*c == '/')
			*c = '_';
	int n = snprintf(buf, size, "%s/maitctl", dir);
	if (n < 0 || (size_t)n >= size)
		return false;
	/* The runtime directory is the user's own (0700): no other user can
	 * plant anything here. */
	if (mkdir(buf, 0700) < 0 && errno != EEXIST)
		return false;
	n = snprintf(buf, size, "%s/maitctl/%s-%llu", dir, a, (unsigned long long)id);
	return n > 0 && (size_t)n < size;
}

void exec_offsets_open(struct exec_offsets *o, const struct addr *addr, uint64_t id, int32_t pid, bool reset)
{
	struct record *rec;
	struct stat st;
	int fd;

	*o = (struct exec_offsets){ .next = o->local };
	if (!record_path(addr, id, o->path, sizeof(o->path)))
		goto memory;
	fd = open(o->path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		goto memory;
	if (fstat(fd, &st) < 0 || (st.st_size < (off_t)sizeof(*rec) && ftruncate(fd, sizeof(*rec)) < 0)) {
		close(fd);
		goto memory;
	}
	rec = mmap(NULL, sizeof(*rec), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (rec == MAP_FAILED)
		goto memory;
	/* A record of another process: maitred restarted and the id was
	 * given again. */
	if (reset || rec->magic != RECORD_MAGIC || rec->pid != pid)
		*rec = (struct record){ .magic = RECORD_MAGIC, .pid = pid };
	o->map = rec;
	o->next = rec->next;
	return;
memory:
	o->path[0] = 0;
}

void exec_offsets_close(struct exec_offsets *o)
{
	if (o->map)
		(void)munmap(o->map, sizeof(struct record));
	o->map = NULL;
	o->next = o->local;
}

void exec_offsets_remove(struct exec_offsets *o)
{
	if (o->path[0])
		(void)unlink(o->path);
	o->path[0] = 0;
}
