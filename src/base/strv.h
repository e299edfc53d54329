/* NULL-terminated arrays of malloc'd strings. */
#pragma once

/* Frees the strings and the array. Accepts NULL. */
void strv_free(char **v);
/* A deep copy, or NULL on allocation failure. */
char **strv_copy(char *const *v);
#include <stddef.h>

static inline void strv_freep(char ***v)
{
	strv_free(*v);
}

/* An array that grows one copied string at a time; v stays NULL-terminated
 * (or NULL while empty). */
struct strv_builder {
	char **v;
	size_t n, cap;
};
int strv_builder_add(struct strv_builder *b, const char *s);
