/* Between the files layer's structs and valet.v1's messages. */
#pragma once

#include "files.pb-c.h"
#include "files/ops.h"
#include "files/tree.h"
#include "files/writer.h"

/* A FileInfo that points into info (and into ts, for the mtime): valid
 * while both are. */
void fsvc_info_to_pb(const struct files_info *info, Valet__V1__FileInfo *ret, Google__Protobuf__Timestamp *ts);

/* A TreeEntry message as the files layer's entry, pointing into it;
 * -EINVAL for an mtime out of range (the files layer checks the rest). */
int fsvc_entry_from_pb(const Valet__V1__TreeEntry *m, struct files_tree_entry *ret);
/* And back, pointing into e (and ts). */
void fsvc_entry_to_pb(const struct files_tree_entry *e, Valet__V1__TreeEntry *ret, Google__Protobuf__Timestamp *ts);

/* A Timestamp as a timespec: -EINVAL when out of range (nanos outside
 * 0..999999999). */
int fsvc_timespec_from_pb(const Google__Protobuf__Timestamp *t, struct timespec *ret);

/* A WriteHeader as the writer's options (pointing into hdr): mode at most
 * 07777, a sha256 of 32 bytes or none, an mtime in range. -EINVAL with a
 * message in err otherwise. Pure: what the files-request fuzz target
 * drives. */
int fsvc_write_opts_from_pb(const Valet__V1__WriteHeader *hdr, struct files_write_opts *ret, struct files_err *err);

/* The message of a files-layer failure r: err's, or strerror (written
 * into buf) when err has none. The same words whether a worker or
 * maitred's loop answers. */
const char *fsvc_err_message(int r, const struct files_err *err, char *buf, size_t size);
