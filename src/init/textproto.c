#include "textproto.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"

/* Caps on what a job file may ask for. */
#define MAX_ARGS 4096
#define MAX_STRING (256 * 1024)

struct lexer {
	const char *p, *end;
	unsigned line;
	char *err;
	size_t err_size;
	bool failed;
};

_printf_(2, 3) static int fail(struct lexer *lx, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (lx->failed)
		return -EINVAL;
	lx->failed = true;
	n = snprintf(lx->err, lx->err_size, "line %u: ", lx->line);
	va_start(ap, fmt);
	if (n >= 0 && (size_t)n < lx->err_size)
		vsnprintf(lx->err + n, lx->err_size - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

static void skip_space(struct lexer *lx)
{
	while (lx->p < lx->end) {
		if (*lx->p == '\n') {
			lx->line++;
			lx->p++;
		} else if (isspace((unsigned char)*lx->p))
			lx->p++;
		else if (*lx->p == '#') {
			while (lx->p < lx->end && *lx->p != '\n')
				lx->p++;
		} else
			break;
	}
}

static bool at(struct lexer *lx, char c)
{
	skip_space(lx);
	return lx->p < lx->end && *lx->p == c;
}

static bool accept(struct lexer *lx, char c)
{
	if (!at(lx, c))
		return false;
	lx->p++;
	return true;
}

/* An identifier into buf; returns its length, 0 if none. */
static size_t identifier(struct lexer *lx, char *buf, size_t size)
{
	size_t n = 0;
	skip_space(lx);
	while (lx->p < lx->end && (isalnum((unsigned char)*lx->p) || *lx->p == '_')) {
		if (n + 1 < size)
			buf[n] = *lx->p;
		n++;
		lx->p++;
	}
	buf[MIN(n, size - 1)] = 0;
	return n;
}

static int hexdigit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)tolower((unsigned char)c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* One quoted string, or several adjacent ones, into a malloc'd buffer.
 * field names it in errors, as the gRPC path does ("env.value"). */
static int string(struct lexer *lx, const char *field, char **ret)
{
	size_t len = 0, cap = 64;
	char *out = malloc(cap);

	if (!out)
		return fail(lx, "out of memory");
	if (!at(lx, '"') && !at(lx, '\'')) {
		free(out);
		return fail(lx, "expected a quoted string");
	}
	while (at(lx, '"') || at(lx, '\'')) {
		char q = *lx->p++;
		for (;;) {
			if (lx->p >= lx->end || *lx->p == '\n') {
				free(out);
				return fail(lx, "unterminated string");
			}
			char c = *lx->p++;
			if (c == q)
				break;
			if (c == '\\') {
				if (lx->p >= lx->end) {
					free(out);
					return fail(lx, "unterminated string");
				}
				char e = *lx->p++;
				switch (e) {
				case 'n': c = '\n'; break;
				case 't': c = '\t'; break;
				case 'r': c = '\r'; break;
				case 'a': c = '\a'; break;
				case 'b': c = '\b'; break;
				case 'f': c = '\f'; break;
				case 'v': c = '\v'; break;
				case '\\':
				case '"':
				case '\'':
				case '?': c = e; break;
				case 'x': {
					int v = 0, digits = 0, h;
					while (digits < 2 && lx->p < lx->end && (h = hexdigit(*lx->p)) >= 0) {
						v = v * 16 + h;
						lx->p++;
						digits++;
					}
					if (!digits) {
						free(out);
						return fail(lx, "bad \\x escape");
					}
					c = (char)v;
					break;
				}
				default:
					if (e >= '0' && e <= '7') {
						int v = e - '0', digits = 1;
						while (digits < 3 && lx->p < lx->end && *lx->p >= '0' &&
						       *lx->p <= '7') {
							v = v * 8 + (*lx->p++ - '0');
							digits++;
						}
						if (v > 255) {
							free(out);
							return fail(lx, "bad octal escape");
						}
						c = (char)v;
					} else {
						free(out);
						return fail(lx, "unknown escape \\%c", e);
					}
				}
			}
			if (c == 0) {
				free(out);
				return fail(lx, "string field '%s' contains a NUL byte", field);
			}
			if (len + 2 > cap) {
				if (cap >= MAX_STRING) {
					free(out);
					return fail(lx, "string longer than %d bytes", MAX_STRING);
				}
				cap *= 2;
				char *n = realloc(out, cap);
				if (!n) {
					free(out);
					return fail(lx, "out of memory");
				}
				out = n;
			}
			out[len++] = c;
		}
	}
	out[len] = 0;
	*ret = out;
	return 0;
}

static int boolean(struct lexer *lx, protobuf_c_boolean *ret)
{
	char word[16];
	size_t n = identifier(lx, word, sizeof(word));

	if (n == 0 && at(lx, '0')) {
		lx->p++;
		*ret = 0;
		return 0;
	}
	if (!strcmp(word, "true") || !strcmp(word, "True") || !strcmp(word, "t") || !strcmp(word, "1"))
		*ret = 1;
	else if (!strcmp(word, "false") || !strcmp(word, "False") || !strcmp(word, "f") || !strcmp(word, "0"))
		*ret = 0;
	else
		return fail(lx, "expected true or false, got '%s'", word);
	return 0;
}

static int env_entry(struct lexer *lx, VmTools__LaunchProcessRequest *req)
{
	char *key = NULL, *value = NULL, name[32];
	int r;

	(void)accept(lx, ':');
	char close = accept(lx, '{') ? '}' : accept(lx, '<') ? '>' : 0;
	if (!close)
		return fail(lx, "expected '{' after env");
	while (!accept(lx, close)) {
		if (lx->p >= lx->end) {
			r = fail(lx, "unterminated env block");
			goto out;
		}
		if (!identifier(lx, name, sizeof(name))) {
			r = fail(lx, "expected key or value in env");
			goto out;
		}
		if (!accept(lx, ':')) {
			r = fail(lx, "expected ':' after %s", name);
			goto out;
		}
		char **slot = !strcmp(name, "key") ? &key : !strcmp(name, "value") ? &value : NULL;
		if (!slot) {
			r = fail(lx, "unknown env field '%s'", name);
			goto out;
		}
		free(*slot);
		*slot = NULL;
		r = string(lx, slot == &key ? "env.key" : "env.value", slot);
		if (r < 0)
			goto out;
		(void)(accept(lx, ',') || accept(lx, ';'));
	}
	if (!key || !*key || strchr(key, '=')) {
		r = fail(lx, "env needs a key without '='");
		goto out;
	}
	VmTools__LaunchProcessRequest__EnvEntry *e = malloc(sizeof(*e));
	VmTools__LaunchProcessRequest__EnvEntry **grown = realloc(req->env, (req->n_env + 1) * sizeof(*grown));
	if (!e || !grown) {
		free(e);
		if (grown)
			req->env = grown;
		r = fail(lx, "out of memory");
		goto out;
	}
	vm_tools__launch_process_request__env_entry__init(e);
	e->key = TAKE_PTR(key);
	e->value = value ? TAKE_PTR(value) : strdup("");
	req->env = grown;
	req->env[req->n_env++] = e;
	r = e->value ? 0 : fail(lx, "out of memory");
out:
	free(key);
	free(value);
	return r;
}

static void request_free(VmTools__LaunchProcessRequest *req)
{
	for (size_t i = 0; i < req->n_argv; i++)
		free(req->argv[i]);
	free(req->argv);
	for (size_t i = 0; i < req->n_env; i++) {
		free(req->env[i]->key);
		free(req->env[i]->value);
		free(req->env[i]);
	}
	free(req->env);
	free(req);
}

int textproto_parse_launch(const char *text, size_t len, VmTools__LaunchProcessRequest **ret, char *err,
			   size_t err_size)
{
	struct lexer lx = { .p = text, .end = text + len, .line = 1, .err = err, .err_size = err_size };
	VmTools__LaunchProcessRequest *req = calloc(1, sizeof(*req));
	char name[32];
	int r = 0;

	if (!req)
		return fail(&lx, "out of memory");
	vm_tools__launch_process_request__init(req);
	while (r == 0) {
		skip_space(&lx);
		if (lx.p >= lx.end)
			break;
		if (!identifier(&lx, name, sizeof(name))) {
			r = fail(&lx, "expected a field name, got '%c'", *lx.p);
			break;
		}
		if (!strcmp(name, "env")) {
			r = env_entry(&lx, req);
		} else if (!accept(&lx, ':')) {
			r = fail(&lx, "expected ':' after %s", name);
		} else if (!strcmp(name, "argv")) {
			char *s = NULL;
			r = string(&lx, "argv", &s);
			if (r == 0 && req->n_argv == MAX_ARGS) {
				free(s);
				r = fail(&lx, "more than %d argv entries", MAX_ARGS);
			} else if (r == 0) {
				char **grown = realloc(req->argv, (req->n_argv + 1) * sizeof(char *));
				if (!grown) {
					free(s);
					r = fail(&lx, "out of memory");
				} else {
					req->argv = grown;
					req->argv[req->n_argv++] = s;
				}
			}
		} else if (!strcmp(name, "respawn"))
			r = boolean(&lx, &req->respawn);
		else if (!strcmp(name, "use_console"))
			r = boolean(&lx, &req->use_console);
		else if (!strcmp(name, "wait_for_exit"))
			r = boolean(&lx, &req->wait_for_exit);
		else
			r = fail(&lx, "unknown field '%s'", name);
		if (r == 0)
			(void)(accept(&lx, ',') || accept(&lx, ';'));
	}
	if (r < 0) {
		request_free(req);
		return r;
	}
	*ret = req;
	return 0;
}
