#include "inode-set.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct files_inode_slot {
	dev_t dev;
	ino_t ino;
	char *path;
	int used;
};

static size_t hash(dev_t dev, ino_t ino)
{
	uint64_t x = (uint64_t)ino * 0x9e3779b97f4a7c15ULL ^ (uint64_t)dev * 0xc2b2ae3d27d4eb4fULL;
	return (size_t)(x ^ (x >> 29));
}

static struct files_inode_slot *slot_of(struct files_inode_slot *slots, size_t cap, dev_t dev, ino_t ino)
{
	for (size_t i = hash(dev, ino) & (cap - 1);; i = (i + 1) & (cap - 1))
		if (!slots[i].used || (slots[i].dev == dev && slots[i].ino == ino))
			return &slots[i];
}

int files_inode_set_find(const struct files_inode_set *s, dev_t dev, ino_t ino, const char **ret_path)
{
	if (s->cap == 0)
		return 0;
	struct files_inode_slot *x = slot_of(s->slots, s->cap, dev, ino);
	if (!x->used)
		return 0;
	if (ret_path)
		*ret_path = x->path;
	return 1;
}

static int grow(struct files_inode_set *s)
{
	size_t cap = s->cap ? s->cap * 2 : 64;
	struct files_inode_slot *slots = calloc(cap, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < s->cap; i++)
		if (s->slots[i].used)
			*slot_of(slots, cap, s->slots[i].dev, s->slots[i].ino) = s->slots[i];
	free(s->slots);
	s->slots = slots;
	s->cap = cap;
	return 0;
}

int files_inode_set_add(struct files_inode_set *s, dev_t dev, ino_t ino, const char *path)
{
	if (files_inode_set_find(s, dev, ino, NULL))
		return 0;
	if (s->n >= FILES_INODE_SET_MAX)
		return -E2BIG;
	/* At most half full. */
	if ((s->n + 1) * 2 > s->cap) {
		int r = grow(s);
		if (r < 0)
			return r;
	}
	char *p = NULL;
	if (path && !(p = strdup(path)))
		return -ENOMEM;
	struct files_inode_slot *x = slot_of(s->slots, s->cap, dev, ino);
	*x = (struct files_inode_slot){ .dev = dev, .ino = ino, .path = p, .used = 1 };
	s->n++;
	return 0;
}

void files_inode_set_clear(struct files_inode_set *s)
{
	for (size_t i = 0; i < s->cap; i++)
		free(s->slots[i].path);
	free(s->slots);
	*s = (struct files_inode_set){ 0 };
}
