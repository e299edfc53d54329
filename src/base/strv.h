/* NULL-terminated arrays of malloc'd strings. */
#pragma once

/* Frees the strings and the array. Accepts NULL. */
void strv_free(char **v);
/* A deep copy, or NULL on allocation failure. */
char **strv_copy(char *const *v);
#include <stddef.h>

/* The entry NAME=... of an environment array, or NULL. Async-signal-safe
 * (no allocation): spawn's child uses it between fork and exec. */
char *const *strv_env_find(char *const *envp, const char *name);
/* The value of NAME in an environment array, or NULL. */
const char *strv_env_get(char *const *envp, const char *name);

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
