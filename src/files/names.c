#include "names.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/macro.h"
#include "base/users.h"
#include "files/cached.h"
#include "files/names-watch.h"

/* Larger files are read by a worker. */
#define NAMES_FILE_MAX (16 * 1024 * 1024)

void files_names_clear(struct files_names *c)
{
	free(c->owner);
	free(c->group);
	*c = (struct files_names){ 0 };
}

/* The lookup fn(f, id, userdata) in file, opened the blocking way or read
 * from the page cache into memory. Its -errno; -EAGAIN (cached only) when
 * the file is not all in the caches. */
typedef int (*lookup_fn)(FILE *f, unsigned id, void *ret);

static int lookup_in(const char *file, bool cached, lookup_fn fn, unsigned id, void *ret)
{
	_cleanup_free_ char *buf = NULL;
	_cleanup_fclose_ FILE *f = NULL;
	size_t len;
	int r;

	if (!cached) {
		if (!(f = fopen(file, "re")))
			return -errno;
		return fn(f, id, ret);
	}
	r = files_read_cached(file, NAMES_FILE_MAX, &buf, &len);
	if (r < 0)
		return r;
	if (len == 0)
		return -ENOENT; /* no entries (and fmemopen wants a size) */
	if (!(f = fmemopen(buf, len, "r")))
		return -ENOMEM; /* its only failure with a size and a mode */
	return fn(f, id, ret);
}

static int owner_in(FILE *f, unsigned uid, void *ret)
{
	struct user_entry u = { 0 };
	int r = user_by_uid_in(f, (uid_t)uid, &u);
	if (r == 0)
		*(char **)ret = TAKE_PTR(u.name);
	user_entry_clear(&u);
	return r;
}

static int group_in(FILE *f, unsigned gid, void *ret)
{
	return group_name_by_gid_in(f, (gid_t)gid, ret);
}

/* A name, or "" when the file has none or cannot be read (the file
 * missing, unreadable, a line too long): -ENOMEM, and -EAGAIN from the
 * caches, are the only failures. */
static int name_of(const char *file, bool cached, lookup_fn fn, unsigned id, char **ret)
{
	int r = lookup_in(file, cached, fn, id, ret);

	if (r == -ENOMEM || (cached && r == -EAGAIN))
		return r;
	if (r < 0 && !(*ret = strdup("")))
		return -ENOMEM;
	return 0;
}

/* The process's names, and the files they were read from. */
static struct files_names kept;
static struct stat kept_passwd, kept_group;

static bool same_file(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
	       a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec &&
	       a->st_ctim.tv_sec == b->st_ctim.tv_sec && a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

/* stat(file), or from the caches: 0, -EAGAIN (cached), or another -errno
 * for a file that cannot be seen. */
static int identity(const char *file, bool cached, struct stat *ret)
{
	_cleanup_close_ int fd = -1;

	if (!cached)
		return stat(file, ret) < 0 ? -errno : 0;
	fd = files_open_cached(file, O_PATH);
	if (fd < 0)
		return fd;
	/* An O_PATH fd's inode is in memory: fstat reads no disk. */
	return fstat(fd, ret) < 0 ? -EAGAIN : 0;
}

static int kept_names(bool cached, struct files_names **ret)
{
	struct stat p = { 0 }, g = { 0 };
	int rp, rg;

	/* maitred's loop: nothing changed since the last check. */
	if (cached && files_names_watch_quiet()) {
		*ret = &kept;
		return 0;
	}
	rp = identity(USERS_PASSWD_FILE, cached, &p);
	rg = identity(USERS_GROUP_FILE, cached, &g);
	if (cached && (rp == -EAGAIN || rg == -EAGAIN))
		return -EAGAIN;
	if (cached && rp == 0 && rg == 0)
		files_names_watch_checked();
	/* A file that cannot be seen is looked up (and fails) every time. */
	if (rp < 0 || rg < 0 || !same_file(&p, &kept_passwd) || !same_file(&g, &kept_group))
		files_names_clear(&kept);
	kept_passwd = p;
	kept_group = g;
	*ret = &kept;
	return 0;
}

void files_forget_names(void)
{
	files_names_clear(&kept);
}

int files_names_get(struct files_names *c, bool cached, uid_t uid, gid_t gid, char **ret_owner, char **ret_group)
{
	_cleanup_free_ char *owner = NULL, *group = NULL;
	int r;

	if (!c && (r = kept_names(cached, &c)) < 0)
		return r;
	if (!c->has_uid || c->uid != uid) {
		free(c->owner);
		c->owner = NULL;
		c->has_uid = false;
		if ((r = name_of(USERS_PASSWD_FILE, cached, owner_in, uid, &c->owner)) < 0)
			return r;
		c->has_uid = true;
		c->uid = uid;
	}
	if (!c->has_gid || c->gid != gid) {
		free(c->group);
		c->group = NULL;
		c->has_gid = false;
		if ((r = name_of(USERS_GROUP_FILE, cached, group_in, gid, &c->group)) < 0)
			return r;
		c->has_gid = true;
		c->gid = gid;
	}
	if (!(owner = strdup(c->owner)) || !(group = strdup(c->group)))
		return -ENOMEM;
	*ret_owner = TAKE_PTR(owner);
	*ret_group = TAKE_PTR(group);
	return 0;
}
