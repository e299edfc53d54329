/* Monotonic time in microseconds: the one clock used for deadlines. */
#pragma once

#include <stdint.h>

#define USEC_PER_SEC UINT64_C(1000000)
#define USEC_PER_MSEC UINT64_C(1000)
#define USEC_INFINITY UINT64_MAX

uint64_t now_usec(void);
/* CPU time this process has used, in microseconds, in its own code and in
 * the kernel on its behalf. */
void cpu_usec(uint64_t *ret_user, uint64_t *ret_system);
