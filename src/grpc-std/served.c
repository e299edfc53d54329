/* Served services from the method tables (served.h). Linear scans: a
 * few dozen methods, read only by health and reflection requests. */
#include <string.h>

#include "served.h"

/* "/pkg.Service/Method" -> "pkg.Service" (*ret_len bytes). */
static const char *service_of(const char *path, size_t *ret_len)
{
	const char *s = path[0] == '/' ? path + 1 : path;
	const char *slash = strchr(s, '/');

	*ret_len = slash ? (size_t)(slash - s) : strlen(s);
	return s;
}

static bool method_on(const struct rpc_service *t, size_t i)
{
	return !t->disabled || !t->disabled[i];
}

bool grpcstd_served(const struct rpc_service *list, const char *name, size_t len)
{
	for (const struct rpc_service *t = list; t; t = t->next)
		for (size_t i = 0; i < t->n_methods; i++) {
			size_t l;
			const char *s = service_of(t->methods[i].path, &l);
			if (l == len && memcmp(s, name, len) == 0 && method_on(t, i))
				return true;
		}
	return false;
}

/* Whether a method served before (t, i) belongs to the same service. */
static bool seen_before(const struct rpc_service *list, const struct rpc_service *t, size_t i, const char *name,
			size_t len)
{
	for (const struct rpc_service *u = list; u; u = u->next)
		for (size_t j = 0; j < u->n_methods; j++) {
			if (u == t && j == i)
				return false;
			size_t l;
			const char *s = service_of(u->methods[j].path, &l);
			if (l == len && memcmp(s, name, len) == 0 && method_on(u, j))
				return true;
		}
	return false;
}

int grpcstd_for_each_served(const struct rpc_service *list, int (*fn)(const char *name, size_t len, void *userdata),
			    void *userdata)
{
	for (const struct rpc_service *t = list; t; t = t->next)
		for (size_t i = 0; i < t->n_methods; i++) {
			size_t len;
			const char *s = service_of(t->methods[i].path, &len);
			if (!method_on(t, i) || seen_before(list, t, i, s, len))
				continue;
			int r = fn(s, len, userdata);
			if (r < 0)
				return r;
		}
	return 0;
}
