/* Whether /etc/passwd and /etc/group may have changed since the names
 * (names.h) were last checked against them, without looking at the files:
 * the check costs two path walks and six system calls, a Stat answered in
 * maitred's loop about as much again as the rest of it.
 *
 * An inotify instance watches /etc (a file renamed over either, created
 * or removed) and the two files (rewritten in place, also through another
 * path when a bind mount put them there). What inotify cannot see, a
 * mount put over either file later, is seen by the check made at least
 * once a second anyway.
 *
 * One process's: a worker forked from maitred drops what it inherited
 * (files_names_watch_stop()), or its reads would take maitred's events. */
#pragma once

#include <stdbool.h>

/* Starts watching (a path walk each: call it where waiting is fine, as
 * maitred starts). -errno: then every lookup checks the files. */
int files_names_watch_start(void);
void files_names_watch_stop(void);

/* True when watching, no event came since files_names_watch_checked(),
 * and that was less than a second ago: one read(2) that does not wait.
 * False otherwise, the caller to check the files next: the events so far
 * are consumed, and the files as they are now are watched (one may have
 * been renamed in), so that any change after the check is an event. */
bool files_names_watch_quiet(void);

/* The files were just checked (after files_names_watch_quiet() said
 * false): trusts them for a second. */
void files_names_watch_checked(void);
