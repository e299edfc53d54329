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
	struct textproto_error *err; /* may be NULL */
	bool failed;
};

_printf_(2, 3) static int fail(struct lexer *lx, const char *fmt, ...)
{
	va_list ap;

	if (lx->failed)
		return -EINVAL;
	lx->failed = true;
	if (lx->err) {
		lx->err->line = lx->line;
		va_start(ap, fmt);
		vsnprintf(lx->err->message, sizeof(lx->err->message), fmt, ap);
		va_end(ap);
	}
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

static bool lex_accept(struct lexer *lx, char c)
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

/* \xH or \xHH, after the x. */
static int hex_escape(struct lexer *lx, char *ret)
{
	int v = 0, digits = 0, h;

	while (digits < 2 && lx->p < lx->end && (h = hexdigit(*lx->p)) >= 0) {
		v = v * 16 + h;
		lx->p++;
		digits++;
	}
	if (!digits)
		return fail(lx, "bad \\x escape");
	*ret = (char)v;
	return 0;
}

/* \N, \NN or \NNN, after the first digit d. */
static int octal_escape(struct lexer *lx, char d, char *ret)
{
	int v = d - '0', digits = 1;

	while (digits < 3 && lx->p < lx->end && *lx->p >= '0' && *lx->p <= '7') {
		v = v * 8 + (*lx->p++ - '0');
		digits++;
	}
	if (v > 255)
		return fail(lx, "bad octal escape");
	*ret = (char)v;
	return 0;
}

/* The character a backslash escape stands for, after the backslash. */
static int escape(struct lexer *lx, char *ret)
{
	/* Pairs: the letter after the backslash, what it stands for. */
	static const char simple[] = "n\nt\tr\ra\ab\bf\fv\v\\\\\"\"''??";

	if (lx->p >= lx->end)
		return fail(lx, "unterminated string");
	char e = *lx->p++;
	for (size_t i = 0; simple[i]; i += 2)
		if (simple[i] == e) {
			*ret = simple[i + 1];
			return 0;
		}
	if (e == 'x')
		return hex_escape(lx, ret);
	if (e >= '0' && e <= '7')
		return octal_escape(lx, e, ret);
	return fail(lx, "unknown escape \\%c", e);
}

/* A string being built: out[0..len), NUL-terminated once done. */
struct strbuf {
	char *out;
	size_t len, cap;
};

static int strbuf_append(struct lexer *lx, struct strbuf *b, char c)
{
	if (b->len + 2 > b->cap) {
		if (b->cap >= MAX_STRING)
			return fail(lx, "string longer than %d bytes", MAX_STRING);
		size_t cap = b->cap * 2;
		char *n = realloc(b->out, cap);
		if (!n)
			return fail(lx, "out of memory");
		b->out = n;
		b->cap = cap;
	}
	b->out[b->len++] = c;
	b->out[b->len] = 0;
	return 0;
}

/* One quoted string, from its opening quote, appended to b. */
static int quoted(struct lexer *lx, const char *field, struct strbuf *b)
{
	char q = *lx->p++;
	int r;

	for (;;) {
		if (lx->p >= lx->end || *lx->p == '\n')
			return fail(lx, "unterminated string");
		char c = *lx->p++;
		if (c == q)
			return 0;
		if (c == '\\' && (r = escape(lx, &c)) < 0)
			return r;
		if (c == 0)
			return fail(lx, "string field '%s' contains a NUL byte", field);
		r = strbuf_append(lx, b, c);
		if (r < 0)
			return r;
	}
}

static void strbuf_done(struct strbuf *b)
{
	free(b->out);
}

/* One quoted string, or several adjacent ones, into a malloc'd buffer.
 * field names it in errors, as the gRPC path does ("env.value"). */
static int string_value(struct lexer *lx, const char *field, char **ret)
{
	_cleanup_(strbuf_done) struct strbuf b = { .out = malloc(64), .cap = 64 };
	int r;

	if (!b.out)
		return fail(lx, "out of memory");
	b.out[0] = 0;
	if (!at(lx, '"') && !at(lx, '\''))
		return fail(lx, "expected a quoted string");
	while (at(lx, '"') || at(lx, '\''))
		if ((r = quoted(lx, field, &b)) < 0)
			return r;
	*ret = TAKE_PTR(b.out);
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
	_cleanup_free_ char *key = NULL, *value = NULL;
	char name[32];
	int r;

	(void)lex_accept(lx, ':');
	char closer = lex_accept(lx, '{') ? '}' : lex_accept(lx, '<') ? '>' : 0;
	if (!closer)
		return fail(lx, "expected '{' after env");
	while (!lex_accept(lx, closer)) {
		if (lx->p >= lx->end)
			return fail(lx, "unterminated env block");
		if (!identifier(lx, name, sizeof(name)))
			return fail(lx, "expected key or value in env");
		if (!lex_accept(lx, ':'))
			return fail(lx, "expected ':' after %s", name);
		char **slot = !strcmp(name, "key") ? &key : !strcmp(name, "value") ? &value : NULL;
		if (!slot)
			return fail(lx, "unknown env field '%s'", name);
		free(*slot);
		*slot = NULL;
		r = string_value(lx, slot == &key ? "env.key" : "env.value", slot);
		if (r < 0)
			return r;
		(void)(lex_accept(lx, ',') || lex_accept(lx, ';'));
	}
	if (!key || !*key || strchr(key, '='))
		return fail(lx, "env needs a key without '='");
	if (!value && !(value = strdup("")))
		return fail(lx, "out of memory");
	_cleanup_free_ VmTools__LaunchProcessRequest__EnvEntry *e = malloc(sizeof(*e));
	if (!e)
		return fail(lx, "out of memory");
	VmTools__LaunchProcessRequest__EnvEntry **grown = realloc(req->env, (req->n_env + 1) * sizeof(*grown));
	if (!grown)
		return fail(lx, "out of memory");
	req->env = grown;
	vm_tools__launch_process_request__env_entry__init(e);
	e->key = TAKE_PTR(key);
	e->value = TAKE_PTR(value);
	req->env[req->n_env++] = TAKE_PTR(e);
	return 0;
}

static int argv_entry(struct lexer *lx, VmTools__LaunchProcessRequest *req)
{
	_cleanup_free_ char *arg = NULL;
	int r = string_value(lx, "argv", &arg);

	if (r < 0)
		return r;
	if (req->n_argv == MAX_ARGS)
		return fail(lx, "more than %d argv entries", MAX_ARGS);
	char **grown = realloc(req->argv, (req->n_argv + 1) * sizeof(char *));
	if (!grown)
		return fail(lx, "out of memory");
	req->argv = grown;
	req->argv[req->n_argv++] = TAKE_PTR(arg);
	return 0;
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

int textproto_parse_launch(const char *text, size_t len, VmTools__LaunchProcessRequest **ret,
			   struct textproto_error *ret_error)
{
	struct lexer lx = { .p = text, .end = text + len, .line = 1, .err = ret_error };
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
		} else if (!lex_accept(&lx, ':')) {
			r = fail(&lx, "expected ':' after %s", name);
		} else if (!strcmp(name, "argv")) {
			r = argv_entry(&lx, req);
		} else if (!strcmp(name, "respawn"))
			r = boolean(&lx, &req->respawn);
		else if (!strcmp(name, "use_console"))
			r = boolean(&lx, &req->use_console);
		else if (!strcmp(name, "wait_for_exit"))
			r = boolean(&lx, &req->wait_for_exit);
		else
			r = fail(&lx, "unknown field '%s'", name);
		if (r == 0)
			(void)(lex_accept(&lx, ',') || lex_accept(&lx, ';'));
	}
	if (r < 0) {
		request_free(req);
		return r;
	}
	*ret = req;
	return 0;
}
