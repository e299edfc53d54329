/* maitred's idle footprint after a burst of calls: glibc's per-thread cache
 * (tcache) keeps up to 7 freed chunks per small size class, counted as in
 * use and scattered over the heap the burst grew, so malloc_trim() cannot
 * give their pages back (docs/benchmarks.md: 1.25-1.34x the idle RSS at
 * start with it, 1.02-1.17x without). glibc offers no mallopt() for it,
 * only the GLIBC_TUNABLES variable read at program start: maitred
 * re-executes itself once with the cache off, then puts the environment
 * back as it was, so that the processes it starts inherit nothing of it.
 * A GLIBC_TUNABLES that already sets the cache is the user's decision. */
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "agent.h"

#define TUNABLE "glibc.malloc.tcache_count=0"
/* The caller's GLIBC_TUNABLES across the re-exec ("-" for none). */
#define SAVED "VALET_SAVED_GLIBC_TUNABLES"

static void restore(const char *saved)
{
	if (strcmp(saved, "-") == 0)
		(void)unsetenv("GLIBC_TUNABLES");
	else
		(void)setenv("GLIBC_TUNABLES", saved, 1);
	(void)unsetenv(SAVED);
}

/* glibc raises its mmap threshold to the size of every large block freed
 * (up to 32 MiB), and the trim threshold with it: after one 4 MiB request
 * or a 1 MiB disk probe, such blocks come from the heap and their pages
 * stay. Fixed thresholds keep large blocks in mmap, returned on free.
 * The trim threshold is higher than the mmap one: a stream relays
 * messages of up to 96 KiB through a queue of a few hundred KiB, and a
 * heap top given back at every 128 KiB freed was faulted in again at once
 * (page faults were 10% of a 1 GiB Read's profile). The idle trim
 * (rpc/server.c: malloc_trim() once streams stop) returns it anyway. */
static void fix_thresholds(void)
{
	(void)mallopt(M_MMAP_THRESHOLD, 128 * 1024);
	(void)mallopt(M_TRIM_THRESHOLD, 1024 * 1024);
}

void maitred_tune_malloc(char **argv)
{
	const char *saved = getenv(SAVED), *t = getenv("GLIBC_TUNABLES");
	char buf[4096];

	fix_thresholds();
	if (saved) {
		/* The second start: the tunable is in effect. */
		char copy[4096];
		snprintf(copy, sizeof(copy), "%s", saved);
		return restore(copy);
	}
	if (t && strstr(t, "glibc.malloc.tcache_count"))
		return;
	if (t && strlen(t) + sizeof(TUNABLE) + 1 >= sizeof(buf))
		return;
	snprintf(buf, sizeof(buf), "%s%s%s", t ? t : "", t ? ":" : "", TUNABLE);
	if (setenv(SAVED, t ? t : "-", 1) < 0 || setenv("GLIBC_TUNABLES", buf, 1) < 0) {
		log_warning_errno(errno, "could not turn glibc's tcache off; going on with it");
		return restore(t ? t : "-");
	}
	/* Through the real path, not /proc/self/exe: the process name (comm,
	 * what ps and pidof show) comes from the file executed. */
	char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = 0;
		execv(self, argv);
	}
	/* No /proc (PID 1 mounts it first), or no memory: go on as we are. */
	log_warning_errno(errno, "could not re-execute with glibc's tcache off; going on with it");
	snprintf(buf, sizeof(buf), "%s", getenv(SAVED));
	restore(buf);
}
