#include "failmalloc.h"

#include <errno.h>
#include <execinfo.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
int __wrap_asprintf(char **ret, const char *fmt, ...);

static bool armed, injected;
static unsigned long counted, fail_at;

void failmalloc_arm(unsigned long n)
{
	armed = true;
	injected = false;
	counted = 0;
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
	if (!armed)
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
	return fail_now() ? NULL : __real_malloc(size);
}

void *__wrap_calloc(size_t nmemb, size_t size)
{
	return fail_now() ? NULL : __real_calloc(nmemb, size);
}

void *__wrap_realloc(void *ptr, size_t size)
{
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
