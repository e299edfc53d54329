/* A small file read whole into memory: /proc files, the kernel command
 * line, boot job files, maitred's config file. */
#pragma once

#include <stddef.h>

/* The first max bytes of path (all of it when shorter) in a malloc'd
 * buffer, NUL-terminated after *ret_len bytes (ret_len may be NULL). 0
 * when that is the whole file; 1 when the file holds more and was cut at
 * max (whether that is an error is the caller's to say); -errno. The
 * buffer grows with what is read: a large max costs a small file
 * nothing. max < SIZE_MAX. */
int read_file_head(const char *path, size_t max, char **ret, size_t *ret_len);
