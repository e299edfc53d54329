/* Allocation failure for the vsh client, linked into the test-only program
 * vsh-faults with -Wl,--wrap=realloc: with VALET_FAIL_REALLOC_OVER=N in the
 * environment, every realloc() of more than N bytes made by vsh's own code
 * fails (its byte buffers grow with realloc), as when memory runs out while
 * a burst of output is received or a large input is queued. Used by
 * tests/integration/test_vsh_faults.py. */
#include <errno.h>
#include <stdlib.h>

void *__real_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size);
void *__wrap_realloc(void *p, size_t size)
{
	const char *over = getenv("VALET_FAIL_REALLOC_OVER");

	if (over && size > strtoull(over, NULL, 10)) {
		errno = ENOMEM;
		return NULL;
	}
	return __real_realloc(p, size);
}
