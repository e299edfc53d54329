/* A set of (dev, ino), each with an optional path: the files a tree
 * writer created (a hard link may name only those) and the files with
 * several links a tree reader has sent (the later ones come back as
 * hardlink_to the first). Bounded: FILES_INODE_SET_MAX entries, then
 * -E2BIG. */
#pragma once

#include <stddef.h>
#include <sys/types.h>

#define FILES_INODE_SET_MAX (1u << 20)

struct files_inode_set {
	struct files_inode_slot *slots;
	size_t cap; /* a power of two, or 0 */
	size_t n;
};

/* path may be NULL; it is copied. */
int files_inode_set_add(struct files_inode_set *s, dev_t dev, ino_t ino, const char *path);
/* 1 and *ret_path (owned by the set; NULL when added without one) when
 * present, 0 when not. */
int files_inode_set_find(const struct files_inode_set *s, dev_t dev, ino_t ino, const char **ret_path);
void files_inode_set_clear(struct files_inode_set *s);
