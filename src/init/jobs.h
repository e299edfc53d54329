/* Boot jobs: every file below a directory (default /etc/maitred), sorted by
 * full path in byte order, each a LaunchProcessRequest in text format. */
#pragma once

#include <stddef.h>

/* All regular files below dir (recursively, following symlinks to files),
 * sorted. *ret is NULL-terminated; free it with jobs_list_free(). A missing
 * directory is an empty list. */
int jobs_list(const char *dir, char ***ret, size_t *ret_n);
void jobs_list_free(char **list);
