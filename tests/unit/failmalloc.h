/* Allocation-failure injection, after nghttp2's failmalloc tests.
 *
 * A test executable linked with the --wrap options in tests/unit/meson.build
 * (failmalloc_link_args) sends every malloc, calloc, realloc, strdup,
 * strndup and asprintf made by the code linked into it through here: ours
 * directly, nghttp2's and protobuf-c's through the allocators the sessions
 * hand them (src/rpc/alloc.c). The wrappers call the real functions, so
 * ASan and LeakSanitizer see every block as usual. Allocations made inside
 * libc or the shared libraries on their own (opendir, nghttp2's option and
 * callback objects) are not reached.
 *
 * While armed, allocations are counted and the N-th one fails, once; the
 * ones after it succeed again, so the code must recover and go on. A sweep
 * runs a scenario armed with 0 (count only) to learn how many allocations
 * it makes, then once for every N up to that count. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* fail_at: the allocation to fail, from 1; 0 only counts. */
void failmalloc_arm(unsigned long fail_at);
/* Returns how many allocations were counted since failmalloc_arm(). */
unsigned long failmalloc_disarm(void);
/* While held, allocations are neither counted nor failed: the test's own
 * bookkeeping (the in-memory HTTP/2 peer's buffers) is not under test. */
void failmalloc_hold(bool hold);
/* True once the N-th allocation has been made to fail. */
bool failmalloc_injected(void);
/* Also counts, while armed, the allocations (and reallocations) of at
 * least size bytes: failmalloc_large() since failmalloc_arm(). */
void failmalloc_count_from(size_t size);
unsigned long failmalloc_large(void);

/* A scenario arms with failmalloc_arm(fail_at), does its work, stores
 * failmalloc_disarm()'s count and CHECKs the outcome. */
typedef void (*failmalloc_scenario_fn)(unsigned long fail_at, unsigned long *ret_count);

enum failmalloc_sweep_flags {
	/* Every run must have reached its failing allocation (not so for a
	 * scenario whose later runs may allocate less than the count run). */
	FAILMALLOC_EACH_INJECTED = 1 << 0,
};

/* The sweep: runs the scenario armed with 0 to count its allocations,
 * then once for every N up to that count. Stops at the first run that
 * fails its CHECKs (naming N on stderr). On success prints
 * "# TOTAL allocations, each failed once" (after label, when given).
 * Returns the count, for the caller to check it is plausible. */
unsigned long failmalloc_sweep(const char *label, failmalloc_scenario_fn scenario, unsigned flags);
