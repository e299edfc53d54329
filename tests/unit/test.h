/* A tiny unit-test harness: TEST(name) { ... } registers a case; CHECK()
 * fails it with file:line and the expression. Prints "ok NAME" or
 * "not ok NAME: why" per case, exits non-zero if any failed. */
#pragma once

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct test_case {
	const char *name;
	void (*fn)(void);
	struct test_case *next;
};

extern struct test_case *test_cases;
extern bool test_failed_flag;
extern char test_failure[2048];

#define TEST(name)                                                            \
	static void test_##name(void);                                        \
	static struct test_case test_case_##name = { #name, test_##name, 0 }; \
	__attribute__((constructor)) static void test_register_##name(void)   \
	{                                                                     \
		test_case_##name.next = test_cases;                           \
		test_cases = &test_case_##name;                               \
	}                                                                     \
	static void test_##name(void)

#define CHECK(expr)                                                                                                   \
	do {                                                                                                          \
		if (!(expr)) {                                                                                        \
			if (!test_failed_flag)                                                                        \
				snprintf(test_failure, sizeof(test_failure), "%s:%d: %s", __FILE__, __LINE__, #expr); \
			test_failed_flag = true;                                                                      \
			return;                                                                                       \
		}                                                                                                     \
	} while (0)

#define CHECK_EQ(a, b)                                                                                         \
	do {                                                                                                   \
		long long _a = (long long)(a), _b = (long long)(b);                                            \
		if (_a != _b) {                                                                                \
			if (!test_failed_flag)                                                                 \
				snprintf(test_failure, sizeof(test_failure), "%s:%d: %s == %s (%lld != %lld)", \
					 __FILE__, __LINE__, #a, #b, _a, _b);                                  \
			test_failed_flag = true;                                                               \
			return;                                                                                \
		}                                                                                              \
	} while (0)

#define CHECK_STR(a, b)                                                                                        \
	do {                                                                                                   \
		const char *_a = (a), *_b = (b);                                                               \
		if (!_a || !_b || strcmp(_a, _b) != 0) {                                                       \
			if (!test_failed_flag)                                                                 \
				snprintf(test_failure, sizeof(test_failure), "%s:%d: %s == %s ('%s' != '%s')", \
					 __FILE__, __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");  \
			test_failed_flag = true;                                                               \
			return;                                                                                \
		}                                                                                              \
	} while (0)
