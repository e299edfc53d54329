/* The metadata calls of valet.v1.Files: Stat, List, MakeDirectory,
 * Remove, Move. Absolute, checked paths (files_path_check()); the last
 * component is never followed unless a call says so. Every call blocks. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "files/names.h"
#include "files/status.h"

/* FileInfo.Type's numbers. */
enum files_type {
	FILES_TYPE_UNSPECIFIED = 0,
	FILES_TYPE_FILE = 1,
	FILES_TYPE_DIRECTORY = 2,
	FILES_TYPE_SYMLINK = 3,
	FILES_TYPE_OTHER = 4,
};

/* FileInfo. owner and group are names, "" when /etc/passwd or /etc/group
 * has none. */
struct files_info {
	char *path;
	enum files_type type;
	uint64_t size;
	uint32_t mode; /* & 07777 */
	uint32_t uid;
	uint32_t gid;
	struct timespec mtime;
	char *symlink_target; /* "" unless a symlink */
	char *owner;
	char *group;
};

void files_info_clear(struct files_info *i);
enum files_type files_type_of(mode_t m);
/* From a stat of path (a symlink's target read at dirfd/name). */
int files_info_from_stat(int dirfd, const char *name, const char *path, const struct stat *st, struct files_info *ret);

int files_stat(const char *path, bool follow_symlinks, struct files_info *ret, struct files_err *err);
/* The same answer without ever waiting for a disk (files/cached.h), for
 * maitred's loop: -EAGAIN (err untouched) when it would have to, and
 * for a symlink not followed. */
int files_stat_cached(const char *path, bool follow_symlinks, struct files_info *ret, struct files_err *err);

/* Called for every entry, a directory's before its contents; a negative
 * return stops the listing and is returned. info is valid during the
 * call only. */
typedef int (*files_list_fn)(const struct files_info *info, void *userdata);
#define FILES_LIST_DEPTH_MAX 64
/* depth 0 or 1: one level; deeper levels come after their directory.
 * Above FILES_LIST_DEPTH_MAX: -EINVAL. Symlinks are listed, not entered. */
int files_list(const char *path, unsigned depth, files_list_fn fn, void *userdata, struct files_err *err);

/* mode < 0: 0755. parents: missing parents created (0755) and an
 * existing directory at path is fine. The umask does not apply. */
int files_mkdir(const char *path, int mode, bool parents, struct files_err *err);

/* A file, a symlink (never followed), an empty directory or, with
 * recursive, a tree, never leaving the mount of path (a mount point
 * inside it: -EBUSY, what was removed before stays removed). "/" is
 * refused (-EBUSY). *ret_removed: the entries removed. */
#define FILES_REMOVE_DEPTH_MAX 256
int files_remove(const char *path, bool recursive, uint64_t *ret_removed, struct files_err *err);

/* rename(2); no_replace: -EEXIST when the destination exists. */
int files_move(const char *source, const char *destination, bool no_replace, struct files_err *err);
