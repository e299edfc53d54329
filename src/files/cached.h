/* The file system as the kernel's caches know it, never waiting for a
 * disk or a server: what maitred's loop may do itself (docs/files.md,
 * "Stat in maitred's loop").
 *
 * Each function either answers from the dentry cache and the page cache,
 * or returns -EAGAIN: the answer needs a file system to be asked, which
 * may take as long as a stuck disk, and belongs in a worker process. A
 * caller with -EAGAIN asks a worker and never retries here. */
#pragma once

#include <stddef.h>
#include <sys/stat.h>

/* openat2(AT_FDCWD, path, flags | O_CLOEXEC, RESOLVE_CACHED): the fd, or
 * the lookup's own answer when the caches hold it (-ENOENT from a
 * negative dentry, -EACCES, -ELOOP, -ENAMETOOLONG), or -EAGAIN for
 * everything else: a lookup the caches cannot finish, a kernel without
 * RESOLVE_CACHED (before 5.12: probed once, remembered), and any other
 * error, which a blocking lookup will report in its own words. flags
 * must not create or truncate. */
int files_open_cached(const char *path, int flags);

/* A regular file's whole contents (NUL-terminated, *ret_len without it)
 * from the page cache (preadv2 RWF_NOWAIT), at most max bytes: -EAGAIN
 * when some of it is not there, when the file is not a regular file or
 * larger than max, or as files_open_cached() says; -ENOENT, -EACCES as
 * the lookup says; -ENOMEM. */
int files_read_cached(const char *path, size_t max, char **ret, size_t *ret_len);
