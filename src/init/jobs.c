#include "jobs.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "base/strv.h"

#define JOBS_MAX 4096
#define JOBS_MAX_DEPTH 8

static int add(struct strv_builder *l, const char *path)
{
	return l->n == JOBS_MAX ? -E2BIG : strv_builder_add(l, path);
}

static int walk(const char *dir, struct strv_builder *l, int depth)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int r = 0;

	if (!d)
		return errno == ENOENT && depth == 0 ? 0 : -errno;
	while (r == 0 && (de = readdir(d))) {
		char path[4096];
		struct stat st;
		if (de->d_name[0] == '.' && (!de->d_name[1] || (de->d_name[1] == '.' && !de->d_name[2])))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		if (stat(path, &st) < 0)
			continue; /* a dangling link: nothing to run */
		if (S_ISDIR(st.st_mode)) {
			if (depth < JOBS_MAX_DEPTH)
				r = walk(path, l, depth + 1);
		} else if (S_ISREG(st.st_mode))
			r = add(l, path);
	}
	closedir(d);
	return r;
}

static int cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void jobs_list_free(char **list)
{
	strv_free(list);
}

int jobs_list(const char *dir, char ***ret, size_t *ret_n)
{
	struct strv_builder l = { 0 };
	int r = walk(dir, &l, 0);

	if (r < 0) {
		jobs_list_free(l.v);
		return r;
	}
	if (!l.v && !(l.v = calloc(1, sizeof(char *))))
		return -ENOMEM;
	qsort(l.v, l.n, sizeof(char *), cmp);
	*ret = l.v;
	*ret_n = l.n;
	return 0;
}
