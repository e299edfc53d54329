/* Paths of valet.v1.Files: validation, and opening without following
 * symlinks where the spec says so.
 *
 * Single-file calls take absolute paths; the directories on the way are
 * resolved as any program of the acting user would (symlinks in them
 * followed: /lib on a merged-/usr guest), the last component never is
 * (unless a call asks, as Stat's follow_symlinks). Everything after the
 * parent is opened is done relative to its fd, so a directory renamed or
 * replaced by a symlink afterwards does not redirect the call.
 *
 * Trees are relative paths below a root fd, every component opened with
 * openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS (or, where openat2 is
 * missing, one component at a time with O_NOFOLLOW), so nothing of a tree
 * is ever reached outside its root. */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

#include "files/status.h"

#define FILES_PATH_MAX 4096

/* An absolute path: starts with '/', no NUL (len is the length the peer
 * sent), shorter than FILES_PATH_MAX, no empty, "." or ".." component, no
 * component longer than NAME_MAX. "/" alone is valid. -EINVAL with a
 * message naming what is wrong. */
int files_path_check(const char *path, size_t len, struct files_err *err);
/* A path relative to a tree's root ("a/b/c"): not empty, not absolute,
 * no empty, "." or ".." component. */
int files_relpath_check(const char *path, size_t len, struct files_err *err);

/* Opens the directory holding the last component of a checked absolute
 * path (O_PATH, symlinks followed on the way; with make_parents, missing
 * directories are created with mode 0755 first) and points *ret_name at
 * that component inside path. "/" has no parent: -EINVAL. */
int files_open_parent(const char *path, bool make_parents, int *ret_dirfd, const char **ret_name,
		      struct files_err *err);

/* openat() of a checked relative path beneath rootfd, never following a
 * symlink in any component and never leaving rootfd: -ELOOP for a
 * symlink on the way, -EXDEV for an escape. flags as for openat()
 * (O_CLOEXEC is added). */
int files_open_beneath(int rootfd, const char *relpath, int flags, mode_t mode);
/* The parent directory of relpath beneath rootfd (rootfd itself, dup'ed,
 * for a one-component path) as an O_PATH|O_DIRECTORY fd, and the last
 * component in *ret_name (inside relpath). */
int files_open_parent_beneath(int rootfd, const char *relpath, int *ret_dirfd, const char **ret_name);

/* For tests: true makes files_open_beneath() walk component by component
 * as it does where openat2 is missing. */
void files_path_force_fallback(bool on);
