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

/* fail_at: the allocation to fail, from 1; 0 only counts. */
void failmalloc_arm(unsigned long fail_at);
/* Returns how many allocations were counted since failmalloc_arm(). */
unsigned long failmalloc_disarm(void);
/* True once the N-th allocation has been made to fail. */
bool failmalloc_injected(void);
