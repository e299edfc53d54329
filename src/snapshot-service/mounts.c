#include "mounts.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>

#include "base/macro.h"
#include "base/parse.h"

struct candidate {
	struct snap_mount m;
	dev_t source;
	size_t order; /* mountinfo line */
	unsigned depth;
};

/* A field of mountinfo, its escapes (\040 for a space) undone. */
static char *unescape(const char *s, size_t len)
{
	char *out = strndup(s, len);

	if (out)
		unescape_octal(out);
	return out;
}

/* The n-th space-separated field of line (len bytes): start and length. */
static bool field(const char *line, size_t len, unsigned n, const char **ret, size_t *ret_len)
{
	size_t i = 0;

	for (unsigned k = 0;; k++) {
		size_t start = i;
		while (i < len && line[i] != ' ')
			i++;
		if (k == n) {
			*ret = line + start;
			*ret_len = i - start;
			return i > start;
		}
		if (i >= len)
			return false;
		i++;
	}
}

static bool is_below(const char *path, const char *below)
{
	size_t n = strlen(below);

	while (n > 1 && below[n - 1] == '/')
		n--;
	if (n == 1 && below[0] == '/')
		return true;
	return strncmp(path, below, n) == 0 && (path[n] == 0 || path[n] == '/');
}

static unsigned depth(const char *path)
{
	unsigned d = 0;

	for (const char *p = path; *p; p++)
		if (*p == '/' && p[1])
			d++;
	return d;
}

static int by_freeze_order(const void *a, const void *b)
{
	const struct candidate *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth > y->depth ? -1 : 1;
	return x->order > y->order ? -1 : x->order < y->order;
}

/* One line: 1 and *c filled when it is a filesystem to freeze, 0 when
 * not, -EINVAL when it is not mountinfo. */
static int parse_line(const char *line, size_t len, const char *below, snap_blockdev_fn is_block, void *userdata,
		      struct candidate *c)
{
	const char *f, *sep;
	size_t flen;
	unsigned maj, min;
	char num[32], source[4096];

	/* ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPEROPTIONS */
	if (!field(line, len, 2, &f, &flen) || flen >= sizeof(num))
		return -EINVAL;
	memcpy(num, f, flen);
	num[flen] = 0;
	if (sscanf(num, "%u:%u", &maj, &min) != 2)
		return -EINVAL;
	sep = memmem(line, len, " - ", 3);
	if (!sep)
		return -EINVAL;
	size_t rest = len - (size_t)(sep + 3 - line);
	const char *s, *opts;
	size_t slen, olen;
	if (!field(sep + 3, rest, 1, &s, &slen) || !field(sep + 3, rest, 2, &opts, &olen))
		return -EINVAL;
	/* The superblock's state: "ro" there is a read-only filesystem,
	 * whatever its mounts say. */
	if (!(olen >= 2 && memcmp(opts, "rw", 2) == 0 && (olen == 2 || opts[2] == ',')))
		return 0;
	if (!field(line, len, 4, &f, &flen))
		return -EINVAL;
	if (slen >= sizeof(source))
		return 0;
	memcpy(source, s, slen);
	source[slen] = 0;
	_cleanup_free_ char *path = unescape(f, flen);
	if (!path)
		return -ENOMEM;
	if (path[0] != '/')
		return -EINVAL;
	if (!is_below(path, below))
		return 0;
	_cleanup_free_ char *src = unescape(source, slen);
	if (!src)
		return -ENOMEM;
	if (is_block(src, &c->source, userdata) < 0)
		return 0;
	c->m.dev = makedev(maj, min);
	c->depth = depth(path);
	c->m.path = TAKE_PTR(path);
	return 1;
}

int snap_mounts_select(const char *mountinfo, const char *below, snap_blockdev_fn is_block, void *userdata,
		       struct snap_mount **ret, size_t *ret_n)
{
	struct candidate *c = NULL;
	size_t n = 0, cap = 0, order = 0;
	struct snap_mount *out;
	int r = 0;

	for (const char *line = mountinfo; *line; order++) {
		const char *end = strchrnul(line, '\n');
		struct candidate cand = { .order = order };
		size_t len = (size_t)(end - line);

		if (len > 0) {
			r = parse_line(line, len, below, is_block, userdata, &cand);
			if (r < 0)
				goto fail;
		}
		line = *end ? end + 1 : end;
		if (r <= 0 || len == 0)
			continue;
		bool seen = false;
		for (size_t i = 0; i < n && !seen; i++)
			seen = c[i].source == cand.source;
		if (seen) {
			free(cand.m.path);
			continue;
		}
		if (n == cap) {
			struct candidate *nc = realloc(c, (cap ? cap * 2 : 8) * sizeof(*c));
			if (!nc) {
				free(cand.m.path);
				r = -ENOMEM;
				goto fail;
			}
			c = nc;
			cap = cap ? cap * 2 : 8;
		}
		c[n++] = cand;
	}
	if (n > 1)
		qsort(c, n, sizeof(*c), by_freeze_order);
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out) {
		r = -ENOMEM;
		goto fail;
	}
	for (size_t i = 0; i < n; i++)
		out[i] = c[i].m;
	free(c);
	*ret = out;
	*ret_n = n;
	return 0;
fail:
	for (size_t i = 0; i < n; i++)
		free(c[i].m.path);
	free(c);
	return r;
}

void snap_mounts_free(struct snap_mount *m, size_t n)
{
	if (!m)
		return;
	for (size_t i = 0; i < n; i++)
		free(m[i].path);
	free(m);
}
