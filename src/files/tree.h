/* Directory trees (valet.v1.Files.WriteTree and ReadTree), under a root
 * directory fd. Every call blocks; none uses an event loop.
 *
 * Writing: entries arrive in order. `dir`; `file` followed by exactly
 * `size` bytes of data (each file written atomically, writer.h);
 * `symlink` with any target, which is never written through; a `file`
 * with `hardlink_to`, an earlier file entry of the same tree (no data).
 * Every component is opened beneath the root without following symlinks
 * (path.h), so `../x`, `/etc/x`, a file entry through a symlink entry, a
 * hard link to anything the tree did not write are all refused with an
 * error naming the entry, and nothing is written outside the root. A
 * directory's mode and mtime are applied once the entries below it are
 * done (it is created 0700, so that a read-only directory can be filled):
 * when an entry outside it arrives, or at the end; the directories
 * waiting for it are a stack as deep as the path (at most
 * FILES_TREE_DEPTH_MAX). An entry of a directory finished that way (the
 * client's order need not be depth-first) opens it again: 0700 until it
 * is left, then its mode and mtime once more. keep_owners (acting as root only) gives entries
 * their uid/gid; otherwise everything belongs to the acting user.
 *
 * Reading walks a root and yields its entries, a directory before its
 * contents; a regular file with several links comes once as data, then as
 * hardlink_to its first path. Sockets, FIFOs and devices are skipped. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "files/ops.h"
#include "files/status.h"

#define FILES_TREE_DEPTH_MAX 256

/* TreeEntry. The strings are what the peer sent: their lengths let a NUL
 * inside them be refused (a length of 0 with a NULL pointer: absent). */
struct files_tree_entry {
	const char *path;
	size_t path_len;
	enum files_type type;
	uint32_t mode;
	uint64_t size;
	bool has_mtime;
	struct timespec mtime;
	const char *symlink_target;
	size_t symlink_target_len;
	const char *hardlink_to;
	size_t hardlink_to_len;
	uint32_t uid;
	uint32_t gid;
};

/* TreeSummary. */
struct files_tree_summary {
	uint64_t files;
	uint64_t directories;
	uint64_t symlinks;
	uint64_t bytes;
};

struct files_tree_opts {
	bool keep_owners;
	bool acting_as_root; /* keep_owners is refused otherwise (-EPERM) */
	bool no_sync;	     /* skip the final syncfs() (tests) */
};

/* An entry alone: path, type, mode, the fields its type allows. -EINVAL
 * with a message naming the entry. Pure: what the fuzz target drives. */
int files_tree_entry_check(const struct files_tree_entry *e, struct files_err *err);

/* The root directory of a tree (absolute, checked path; symlinks on the
 * way followed, as the caller named it), created when missing if create
 * (with its parents if make_parents). An O_PATH fd. */
int files_tree_root_open(const char *root, bool create, bool make_parents, int *ret_fd, struct files_err *err);

struct files_tree_writer;
/* rootfd is borrowed. */
int files_tree_writer_new(int rootfd, const struct files_tree_opts *o, struct files_tree_writer **ret,
			  struct files_err *err);
int files_tree_writer_entry(struct files_tree_writer *w, const struct files_tree_entry *e, struct files_err *err);
int files_tree_writer_data(struct files_tree_writer *w, const void *buf, size_t len, struct files_err *err);
/* The pending directory modes and mtimes, a syncfs(): the summary. */
int files_tree_writer_finish(struct files_tree_writer *w, struct files_tree_summary *ret, struct files_err *err);
/* An unfinished file is discarded (no partial file); directories waiting
 * for their mode get it. NULL is fine. */
void files_tree_writer_free(struct files_tree_writer *w);
static inline void files_tree_writer_freep(struct files_tree_writer **w)
{
	files_tree_writer_free(*w);
}

struct files_tree_reader;
int files_tree_reader_new(int rootfd, struct files_tree_reader **ret, struct files_err *err);
/* 1 and the next entry (valid until the next call), 0 at the end. A file
 * entry with size > 0 and no hardlink_to is followed by its data:
 * files_tree_reader_read() until it returns 0, before the next entry. */
int files_tree_reader_next(struct files_tree_reader *r, const struct files_tree_entry **ret, struct files_err *err);
/* The current file's data: the count, 0 once `size` bytes were read; a
 * file that shrank meanwhile is -EIO. */
ssize_t files_tree_reader_read(struct files_tree_reader *r, void *buf, size_t size, struct files_err *err);
/* Told of each entry skipped (a socket, FIFO or device), by its path
 * relative to the root: a client warns of them. */
typedef void (*files_tree_skip_fn)(const char *path, void *userdata);
void files_tree_reader_on_skip(struct files_tree_reader *r, files_tree_skip_fn fn, void *userdata);
void files_tree_reader_free(struct files_tree_reader *r);
static inline void files_tree_reader_freep(struct files_tree_reader **r)
{
	files_tree_reader_free(*r);
}
