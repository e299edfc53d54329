/* Pure pieces of the guest-configuration RPCs (SetTimezone, SetResolvConfig,
 * ConfigureNetwork's resolv_config): input validation, resolv.conf text, and
 * the atomic file replacement they share. No logging, no RPC types, so that
 * unit tests can link this file alone. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* resolv.conf(5)'s limits: glibc reads at most 3 nameservers (MAXNS); the
 * search list is 6 domains (MAXDNSRCH) and 256 characters. Exceeding them
 * is an error, never a silent truncation. */
#define RESOLV_MAX_NAMESERVERS 3
#define RESOLV_MAX_SEARCH 6
#define RESOLV_MAX_SEARCH_CHARS 256

/* Each check returns 0 or -EINVAL and, on error, writes why into why
 * (without the input: the caller quotes it). */
int guest_check_zone_name(const char *name, char *why, size_t len);
/* Opens the zone file name (already checked by guest_check_zone_name) in
 * the zoneinfo directory dirfd, read-only. It must be a regular file that
 * starts with "TZif" and is reached without leaving the directory: links
 * inside it (US/Pacific -> ../America/Los_Angeles) are followed, links out
 * of it (Debian's localtime -> /etc/localtime) and absolute links are
 * refused. Returns the fd, -EINVAL with why for a name that is no zone, or
 * another -errno (-ENOSYS before Linux 5.6, which lacks openat2). */
int guest_open_zone(int dirfd, const char *name, char *why, size_t len);
int guest_check_nameserver(const char *s, char *why, size_t len);
int guest_check_hostname(const char *s, char *why, size_t len);

/* Validates a whole configuration; on error, err names the bad entry and
 * the reason ("nameserver \"1.2.3\": not an IPv4 or IPv6 address"). */
int guest_check_resolv(char *const *nameservers, size_t n_ns, char *const *search, size_t n_search, char *err,
		       size_t errlen);

/* The text of resolv.conf for an already validated configuration, in a
 * malloc'd string. */
int guest_render_resolv(char *const *nameservers, size_t n_ns, char *const *search, size_t n_search, char **ret);

/* Replaces path by a file with data: a temporary file in the same directory,
 * written, fsync'd, renamed over path, then the directory fsync'd; readers see
 * the old file or the new one, never a part. */
int guest_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode);
/* The same for a symlink to target. */
int guest_symlink_atomic(const char *target, const char *path);
