/* Reading one regular file, or a byte range of it (valet.v1.Files.Read),
 * with a running SHA-256 of the bytes read. The last component is never
 * followed: a symlink there, a directory or anything but a regular file
 * is refused (-ELOOP, -EISDIR, -EINVAL). Every call blocks. */
#pragma once

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "base/sha256.h"
#include "files/status.h"

struct files_reader;

/* length 0: to the end of the file. */
int files_reader_open(const char *path, uint64_t offset, uint64_t length, struct files_reader **ret,
		      struct stat *ret_st, struct files_err *err);
int files_reader_open_at(int dirfd, const char *name, const char *path, uint64_t offset, uint64_t length,
			 struct files_reader **ret, struct stat *ret_st, struct files_err *err);
/* Reads into buf, at most size bytes: the count, 0 at the end of the
 * range (or of the file, when it shrank), -errno. */
ssize_t files_reader_read(struct files_reader *r, void *buf, size_t size, struct files_err *err);
/* Read without hashing (a Read that did not ask for the digest: at about
 * 0.8 ns a byte, hashing is the largest CPU cost of a read). Before the
 * first read. */
void files_reader_skip_digest(struct files_reader *r);
/* The SHA-256 of everything read so far; ends the hashing. -EINVAL after
 * files_reader_skip_digest(). */
int files_reader_digest(struct files_reader *r, uint8_t out[SHA256_DIGEST_SIZE]);
/* The file's fd, for a caller that sends it without copying (splice). */
int files_reader_fd(const struct files_reader *r);
void files_reader_free(struct files_reader *r);
static inline void files_reader_freep(struct files_reader **r)
{
	files_reader_free(*r);
}
