#include "users.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/macro.h"

/* A line longer than this is not a user we serve. */
#define LINE_MAX_BYTES (1024 * 1024)
#define GROUPS_MAX 65536

void user_entry_clear(struct user_entry *u)
{
	free(u->name);
	free(u->home);
	free(u->shell);
	*u = (struct user_entry){ 0 };
}

/* What fgetpwent_r() or fgetgrent_r() said (error e, entry res): 1 for an
 * entry, 0 at the end of the file, -EAGAIN to call again after the buffer
 * has been grown for a line that did not fit (glibc rewinds to its start),
 * -errno. */
static int next_entry(int e, const void *res, char **buf, size_t *size)
{
	if (e == ERANGE) {
		if (*size >= LINE_MAX_BYTES)
			return -E2BIG;
		char *grown = realloc(*buf, *size * 4);
		if (!grown)
			return -ENOMEM;
		*buf = grown;
		*size *= 4;
		return -EAGAIN;
	}
	if (e == ENOENT || !res)
		return 0;
	return e ? -e : 1;
}

/* Walks a passwd file; match() picks the entry. fgetpwent_r() parses a
 * file it is given and never consults NSS. */
static int find_user_in(FILE *f, bool (*match)(const struct passwd *pw, const void *key), const void *key,
			struct user_entry *ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 4096;
	struct passwd pw, *res;

	if (!(buf = malloc(size)))
		return -ENOMEM;
	for (;;) {
		int e = fgetpwent_r(f, &pw, buf, size, &res);
		int r = next_entry(e, res, &buf, &size);
		if (r == -EAGAIN)
			continue;
		if (r <= 0)
			return r == 0 ? -ENOENT : r;
		if (!match(&pw, key))
			continue;
		struct user_entry u = {
			.name = strdup(pw.pw_name),
			.uid = pw.pw_uid,
			.gid = pw.pw_gid,
			.home = strdup(pw.pw_dir && *pw.pw_dir ? pw.pw_dir : "/"),
			.shell = strdup(pw.pw_shell && *pw.pw_shell ? pw.pw_shell : "/bin/sh"),
		};
		if (!u.name || !u.home || !u.shell) {
			user_entry_clear(&u);
			return -ENOMEM;
		}
		*ret = u;
		return 0;
	}
}

static bool match_name(const struct passwd *pw, const void *key)
{
	return strcmp(pw->pw_name, key) == 0;
}

static bool match_uid(const struct passwd *pw, const void *key)
{
	return pw->pw_uid == *(const uid_t *)key;
}

static int find_user(bool (*match)(const struct passwd *pw, const void *key), const void *key, struct user_entry *ret)
{
	_cleanup_fclose_ FILE *f = fopen(USERS_PASSWD_FILE, "re");

	if (!f)
		return -errno;
	return find_user_in(f, match, key, ret);
}

int user_by_name(const char *name, struct user_entry *ret)
{
	return find_user(match_name, name, ret);
}

int user_by_uid(uid_t uid, struct user_entry *ret)
{
	return find_user(match_uid, &uid, ret);
}

int user_by_uid_in(FILE *passwd, uid_t uid, struct user_entry *ret)
{
	return find_user_in(passwd, match_uid, &uid, ret);
}

static int add_group(gid_t **groups, size_t *n, size_t *cap, gid_t g)
{
	for (size_t i = 0; i < *n; i++)
		if ((*groups)[i] == g)
			return 0;
	if (*n == GROUPS_MAX)
		return -E2BIG;
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 16;
		gid_t *grown = realloc(*groups, c * sizeof(gid_t));
		if (!grown)
			return -ENOMEM;
		*groups = grown;
		*cap = c;
	}
	(*groups)[(*n)++] = g;
	return 0;
}

int user_groups(const char *name, gid_t gid, gid_t **ret_groups, size_t *ret_n)
{
	_cleanup_fclose_ FILE *f = NULL;
	_cleanup_free_ char *buf = NULL;
	_cleanup_free_ gid_t *groups = NULL;
	size_t n = 0, cap = 0, size = 4096;
	struct group gr, *res;
	int r;

	r = add_group(&groups, &n, &cap, gid);
	if (r < 0)
		return r;
	f = fopen(USERS_GROUP_FILE, "re");
	if (!f && errno != ENOENT)
		return -errno;
	if (f && !(buf = malloc(size)))
		return -ENOMEM;
	while (f) {
		int e = fgetgrent_r(f, &gr, buf, size, &res);
		r = next_entry(e, res, &buf, &size);
		if (r == -EAGAIN)
			continue;
		if (r < 0)
			return r;
		if (r == 0)
			break;
		for (char **m = gr.gr_mem; m && *m; m++)
			if (strcmp(*m, name) == 0) {
				r = add_group(&groups, &n, &cap, gr.gr_gid);
				if (r < 0)
					return r;
				break;
			}
	}
	*ret_groups = TAKE_PTR(groups);
	*ret_n = n;
	return 0;
}

int group_name_by_gid(gid_t gid, char **ret_name)
{
	_cleanup_fclose_ FILE *f = fopen(USERS_GROUP_FILE, "re");

	if (!f)
		return -errno;
	return group_name_by_gid_in(f, gid, ret_name);
}

int group_name_by_gid_in(FILE *f, gid_t gid, char **ret_name)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 4096;
	struct group gr, *res;

	if (!(buf = malloc(size)))
		return -ENOMEM;
	for (;;) {
		int e = fgetgrent_r(f, &gr, buf, size, &res);
		int r = next_entry(e, res, &buf, &size);
		if (r == -EAGAIN)
			continue;
		if (r <= 0)
			return r == 0 ? -ENOENT : r;
		if (gr.gr_gid != gid)
			continue;
		char *name = strdup(gr.gr_name);
		if (!name)
			return -ENOMEM;
		*ret_name = name;
		return 0;
	}
}
