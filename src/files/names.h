/* The owner and group names of a FileInfo, from /etc/passwd and
 * /etc/group (base/users.h: no NSS), "" for an id neither names.
 *
 * Lookups go through a cache: a listing keeps one of its own (its
 * entries mostly share their owners), and the process keeps one while
 * /etc/passwd and /etc/group stay the same files, unchanged (device,
 * inode, size, mtime, ctime; checked at every lookup, or in maitred's
 * loop only when names-watch.h says they may have changed), since a
 * worker answers many Stats in its life and maitred's loop answers
 * Stats too.
 *
 * Two ways to see the files: blocking (stat, fopen: a worker), or cached
 * (files/cached.h: the dentry and page caches only, for maitred's loop),
 * where anything that would have to wait for a disk is -EAGAIN instead. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

struct files_names {
	bool has_uid, has_gid;
	uid_t uid;
	gid_t gid;
	char *owner; /* "" when unknown */
	char *group;
};

void files_names_clear(struct files_names *c);

/* Copies of the names of uid and gid, through cache c (NULL: the one this
 * process keeps, checked against the files first). cached: the files are
 * seen and read through the kernel's caches only (-EAGAIN as above; with
 * c NULL only). -ENOMEM. */
int files_names_get(struct files_names *c, bool cached, uid_t uid, gid_t gid, char **ret_owner, char **ret_group);

/* Forgets the names this process keeps (an allocation-failure sweep
 * starts each run from nothing). */
void files_forget_names(void);
