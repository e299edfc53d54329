#include "failmalloc.h"

#include <errno.h>
#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"

void *__real_malloc(size_t size);
void *__real_calloc(size_t nmemb, size_t size);
void *__real_realloc(void *ptr, size_t size);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);

void *__wrap_malloc(size_t size);
void *__wrap_calloc(size_t nmemb, size_t size);
void *__wrap_realloc(void *ptr, size_t size);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_asprintf(char **ret, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static bool armed, injected, held;
static unsigned long counted, fail_at;
static size_t large_from = SIZE_MAX;
static unsigned long large_counted;

void failmalloc_count_from(size_t size)
{
	large_from = size;
}

unsigned long failmalloc_large(void)
{
	return large_counted;
}

/* Counts an allocation of size (armed, not held) if it is large. */
static void note_size(size_t size)
{
	if (armed && !held && size >= large_from)
		large_counted++;
}

void failmalloc_hold(bool hold)
{
	held = hold;
}

void failmalloc_arm(unsigned long n)
{
	armed = true;
	injected = false;
	counted = 0;
	large_counted = 0;
	fail_at = n;
}

unsigned long failmalloc_disarm(void)
{
	armed = false;
	return counted;
}

bool failmalloc_injected(void)
{
	return injected;
}

static bool fail_now(void)
{
	if (!armed || held)
		return false;
	if (++counted != fail_at)
		return false;
	injected = true;
	/* FAILMALLOC_BACKTRACE=1 shows where the failure was injected. */
	if (getenv("FAILMALLOC_BACKTRACE")) {
		void *frames[32];
		fprintf(stderr, "failmalloc: failing allocation %lu here:\n", fail_at);
		backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
	}
	errno = ENOMEM;
	return true;
}

void *__wrap_malloc(size_t size)
{
	note_size(size);
	return fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t nmemb, size_t size)
{
	note_size(nmemb * size);
	return fail_now() ? NULL : __real_calloc(nmemb, size);
}

void *__wrap_realloc(void *ptr, size_t size)
{
	note_size(size);
	return fail_now() ? NULL : __real_realloc(ptr, size);
}

char *__wrap_strdup(const char *s)
{
	return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return fail_now() ? NULL : __real_strndup(s, n);
}

int __wrap_asprintf(char **ret, const char *fmt, ...)
{
	va_list ap;
	int r;

	if (fail_now())
		return -1;
	va_start(ap, fmt);
	r = vasprintf(ret, fmt, ap);
	va_end(ap);
	return r;
}

unsigned long failmalloc_sweep(const char *label, failmalloc_scenario_fn scenario, unsigned flags)
{
	unsigned long total = 0, count;

	scenario(0, &total);
	if (test_failed_flag)
		return total;
	for (unsigned long n = 1; n <= total; n++) {
		scenario(n, &count);
		if (!test_failed_flag && (flags & FAILMALLOC_EACH_INJECTED) && !failmalloc_injected()) {
			snprintf(test_failure, sizeof(test_failure), "allocation %lu of %lu was never made", n, total);
			test_failed_flag = true;
		}
		if (test_failed_flag) {
			fprintf(stderr, "failing allocation %lu of %lu\n", n, total);
			return total;
		}
	}
	printf("# %s%s%lu allocations, each failed once\n", label ? label : "", label ? ": " : "", total);
	return total;
}
