#include "strv.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

void strv_free(char **v)
{
	for (char **p = v; p && *p; p++)
		free(*p);
	free(v);
}

char **strv_copy(char *const *v)
{
	size_t n = 0;
	while (v && v[n])
		n++;
	char **c = calloc(n + 1, sizeof(char *));
	if (!c)
		return NULL;
	for (size_t i = 0; i < n; i++)
		if (!(c[i] = strdup(v[i]))) {
			strv_free(c);
			return NULL;
		}
	return c;
}

int strv_builder_add(struct strv_builder *b, const char *s)
{
	if (b->n + 2 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 16;
		char **v = realloc(b->v, cap * sizeof(char *));
		if (!v)
			return -ENOMEM;
		b->v = v;
		b->cap = cap;
	}
	if (!(b->v[b->n] = strdup(s)))
		return -ENOMEM;
	b->v[++b->n] = NULL;
	return 0;
}

char *const *strv_env_find(char *const *envp, const char *name)
{
	size_t len = strlen(name);
	for (; envp && *envp; envp++)
		if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
			return envp;
	return NULL;
}

const char *strv_env_get(char *const *envp, const char *name)
{
	char *const *e = strv_env_find(envp, name);
	return e ? *e + strlen(name) + 1 : NULL;
}
