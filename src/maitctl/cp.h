/* maitctl cp: what its files share. cmd-cp.c parses the command line and
 * resolves the destination; cp-file.c moves one file (Write, Read),
 * cp-tree.c a directory tree (WriteTree, ReadTree). */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>

#include "files.h"

/* Bytes per data message. maitred raises the window of a stream whose
 * message is larger than it to 1 MiB (docs/architecture.md, "How a
 * streaming call flows"), takes a message that is data alone in place,
 * and passes it to its worker in frames of FSVC_CHUNK (63 KiB): two full
 * frames per message. Just under 16 KiB (the initial window) cost
 * maitred 0.06-0.1 CPU s/GiB more; 252 KiB measured alike. */
#define CP_CHUNK (126 * 1024)

struct cp_opts {
	bool recursive;
	bool no_replace;
	bool sha256;
	bool parents;
	bool has_mode;
	uint32_t mode;
	const char *user;
	uint64_t timeout_usec;
};

/* The result, printed by cmd-cp.c. */
struct cp_result {
	const char *path; /* the destination */
	uint64_t bytes;
	bool has_sha256;
	uint8_t sha256[SHA256_DIGEST_SIZE];
	bool tree;
	uint64_t files, directories, symlinks;
};

/* fd: the open local file (or stdin), st its stat, name for messages.
 * The exit code; errors are printed. */
int cp_upload_file(struct maitctl *ctl, const struct cp_opts *o, int fd, const struct stat *st, const char *name,
		   const char *guest, struct cp_result *ret);
/* dirfd/name: the local destination's parent (checked writable) and
 * name; dirfd < 0: standard output. */
int cp_download_file(struct maitctl *ctl, const struct cp_opts *o, const char *guest, int dirfd, const char *name,
		     const char *local, struct cp_result *ret);
/* rootfd: the local directory, open. */
int cp_upload_tree(struct maitctl *ctl, const struct cp_opts *o, int rootfd, const char *local, const char *guest,
		   struct cp_result *ret);
/* local: an absolute, normalised path, created (as the tree's root) once
 * the guest answers. */
int cp_download_tree(struct maitctl *ctl, const struct cp_opts *o, const char *guest, const char *local,
		     struct cp_result *ret);
