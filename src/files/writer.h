/* Atomic write of one regular file (valet.v1.Files.Write, and each file
 * of a tree).
 *
 * The bytes go to a temporary file in the target's directory: an unnamed
 * O_TMPFILE where the filesystem has it (nothing can be left behind,
 * whatever happens to the process), else a hidden unique name
 * (".valet-tmp-" and 16 hex digits) that abort and failure unlink. Commit
 * checks the SHA-256 of what was written against the expected one
 * (mismatch: -FILES_EDIGEST, target untouched), sets the mode, owner and
 * mtime, fsyncs the file, renames it over the target (no_replace: a link
 * or RENAME_NOREPLACE that fails with -EEXIST) and fsyncs the directory.
 * Data is written from the caller's buffer and hashed in place: no copy.
 *
 * Every call blocks; none uses an event loop. */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <time.h>

#include "base/sha256.h"
#include "files/status.h"

struct files_write_opts {
	bool has_mode;
	mode_t mode; /* with has_mode; else the replaced file's, else 0644 */
	bool make_parents;
	bool no_replace;
	bool has_mtime;
	struct timespec mtime;
	const uint8_t *sha256; /* NULL, or the expected digest */
	bool has_owner;	       /* the tree writer's keep_owners */
	uid_t uid;
	gid_t gid;
	bool no_fsync;	 /* trees: one syncfs() at the end instead */
	bool no_tmpfile; /* use a named temporary file (tests) */
	bool no_digest;	 /* no SHA-256 (a client that did not ask for one);
			    sha256 must be NULL, commit's digest is zeros */
	/* Trees, where the name is usually free (with has_mode, without
	 * no_replace): no look at the target before; commit links the
	 * finished temporary file straight to its name, and only when that
	 * name exists does it go through a hidden name and a rename. */
	bool link_new;
	/* mode is given at creation and not set again at commit: the caller
	 * made sure the umask clears none of its bits and it has no set-id
	 * or sticky bit (which creation may drop). */
	bool mode_at_create;
	/* dirfd stays open until files_writer_free(): not duplicated. */
	bool dirfd_borrowed;
};

struct files_writer;

/* A hidden, random name for a temporary entry beside its target
 * (".valet-tmp-" and 16 hex digits); the tree writer's links and symlinks
 * use it too. */
#define FILES_TMP_NAME_MAX 32
int files_tmp_name(char buf[FILES_TMP_NAME_MAX]);

/* path: a checked absolute path (files_path_check()). */
int files_writer_open(const char *path, const struct files_write_opts *o, struct files_writer **ret,
		      struct files_err *err);
/* name in directory dirfd (borrowed, duplicated unless dirfd_borrowed;
 * an O_PATH fd will do); path names it in messages. */
int files_writer_open_at(int dirfd, const char *name, const char *path, const struct files_write_opts *o,
			 struct files_writer **ret, struct files_err *err);
int files_writer_write(struct files_writer *w, const void *buf, size_t len, struct files_err *err);
uint64_t files_writer_written(const struct files_writer *w);
/* The expected digest when it is known only after the data (a client's
 * Read, whose digest comes last): commit compares as with opts.sha256.
 * Not with no_digest. */
void files_writer_expect(struct files_writer *w, const uint8_t digest[SHA256_DIGEST_SIZE]);
/* The digest of what was written, and the result's stat. After a failure
 * the temporary file is gone; either way files_writer_free() follows. */
int files_writer_commit(struct files_writer *w, uint8_t ret_digest[SHA256_DIGEST_SIZE], struct stat *ret_st,
			struct files_err *err);
/* Removes the temporary file when not committed, frees. NULL is fine. */
void files_writer_free(struct files_writer *w);
static inline void files_writer_freep(struct files_writer **w)
{
	files_writer_free(*w);
}
