/* Method switches (maitred --disable, the config file's "disable" lines):
 * which services and methods the server refuses. The rpc core only
 * consults rpc_service.disabled; what a name means is decided here. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "base/macro.h"
#include "base/read-file.h"

/* The registry links the tables it was given, which are not const. */
static struct rpc_service *next_service(struct rpc_service *s)
{
	return (struct rpc_service *)s->next;
}

/* "svc" matches "/svc/M"; "svc/M" matches "/svc/M" only. */
static bool name_matches(const char *name, const char *path)
{
	size_t n = strlen(name);

	if (path[0] != '/' || strncmp(path + 1, name, n) != 0)
		return false;
	return path[1 + n] == 0 || (path[1 + n] == '/' && !strchr(name, '/'));
}

int maitred_disable(struct agent *a, const char *name)
{
	size_t matched = 0;

	if (!*name)
		return -ENOENT;
	for (struct rpc_service *s = a->services; s; s = next_service(s))
		for (size_t i = 0; i < s->n_methods; i++)
			matched += name_matches(name, s->methods[i].path);
	if (matched == 0)
		return -ENOENT;

	_cleanup_free_ char *copy = strdup(name);
	char **names = reallocarray(a->switch_names, a->n_switch_names + 1, sizeof(*names));
	if (!copy || !names)
		return -ENOMEM;
	a->switch_names = names;
	/* Every table's array first, so that a failure changes nothing. */
	for (struct rpc_service *s = a->services; s; s = next_service(s))
		if (!s->disabled && !(s->disabled = calloc(s->n_methods, sizeof(*s->disabled))))
			return -ENOMEM;
	for (struct rpc_service *s = a->services; s; s = next_service(s))
		for (size_t i = 0; i < s->n_methods; i++)
			/* The agent allocated the array: it is ours to write. */
			if (name_matches(name, s->methods[i].path) && !s->disabled[i])
				((const char **)s->disabled)[i] = copy;
	a->switch_names[a->n_switch_names++] = TAKE_PTR(copy);
	return 0;
}

void maitred_switches_free(struct agent *a)
{
	for (struct rpc_service *s = a->services; s; s = next_service(s)) {
		free((void *)s->disabled);
		s->disabled = NULL;
	}
	for (size_t i = 0; i < a->n_switch_names; i++)
		free(a->switch_names[i]);
	free(a->switch_names);
	a->switch_names = NULL;
	a->n_switch_names = 0;
}

/* One line, without its newline, cut at '#': 0 (nothing or done), or an
 * error with err->message set. */
static int config_line(struct agent *a, char *line, struct maitred_config_error *err)
{
	char *hash = strchr(line, '#'), *save = NULL;

	if (hash)
		*hash = 0;
	const char *word = strtok_r(line, " \t\r", &save);
	if (!word)
		return 0;
	const char *name = strtok_r(NULL, " \t\r", &save);
	if (strcmp(word, "disable") != 0 || !name || strtok_r(NULL, " \t\r", &save)) {
		snprintf(err->message, sizeof(err->message), "expected 'disable NAME'");
		return -EINVAL;
	}
	int r = maitred_disable(a, name);
	if (r == -ENOENT)
		snprintf(err->message, sizeof(err->message), "'%.200s' is no service or method maitred serves", name);
	else if (r < 0)
		snprintf(err->message, sizeof(err->message), "%s", strerror(-r));
	return r;
}

int maitred_config_parse(struct agent *a, const char *text, struct maitred_config_error *err)
{
	*err = (struct maitred_config_error){ 0 };
	for (const char *p = text; *p;) {
		const char *end = strchrnul(p, '\n');
		_cleanup_free_ char *line = strndup(p, (size_t)(end - p));

		err->line++;
		if (!line) {
			snprintf(err->message, sizeof(err->message), "out of memory");
			return -ENOMEM;
		}
		int r = config_line(a, line, err);
		if (r < 0)
			return r;
		p = *end ? end + 1 : end;
	}
	err->line = 0;
	return 0;
}

/* A config file is a few lines: anything larger is a mistake. */
#define CONFIG_MAX_SIZE (64 * 1024)

int maitred_config_load(struct agent *a, const char *path, struct maitred_config_error *err)
{
	_cleanup_free_ char *text = NULL;
	size_t len = 0;
	int r;

	*err = (struct maitred_config_error){ 0 };
	r = read_file_head(path, CONFIG_MAX_SIZE, &text, &len);
	if (r == -ENOMEM) {
		snprintf(err->message, sizeof(err->message), "out of memory");
		return r;
	}
	if (r < 0) {
		snprintf(err->message, sizeof(err->message), "%s", strerror(-r));
		return r;
	}
	if (r == 1) {
		snprintf(err->message, sizeof(err->message), "larger than %u bytes", CONFIG_MAX_SIZE);
		return -EFBIG;
	}
	if (strlen(text) != len) {
		snprintf(err->message, sizeof(err->message), "contains a NUL byte");
		return -EINVAL;
	}
	return maitred_config_parse(a, text, err);
}
