#include "creds.h"

#include <errno.h>
#include <grp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/fsuid.h>

#include "base/macro.h"
#include "base/users.h"

void files_user_clear(struct files_user *u)
{
	free(u->name);
	free(u->groups);
	*u = (struct files_user){ 0 };
}

int files_user_resolve(const char *name, struct files_user *ret, struct files_err *err)
{
	struct files_user u = { 0 };
	int r;

	if (!name || !*name) {
		u.name = strdup("root");
		u.groups = malloc(sizeof(gid_t));
		if (!u.name || !u.groups) {
			files_user_clear(&u);
			return -ENOMEM;
		}
		u.groups[0] = 0;
		u.n_groups = 1;
		*ret = u;
		return 0;
	}
	_cleanup_(user_entry_clear) struct user_entry e = { 0 };
	r = user_by_name(name, &e);
	if (r == -ENOENT)
		return files_fail(err, -EINVAL, "unknown user %s", name);
	if (r < 0)
		return files_fail(err, r, "reading /etc/passwd: %s", strerror(-r));
	r = user_groups(e.name, e.gid, &u.groups, &u.n_groups);
	if (r < 0)
		return files_fail(err, r, "reading /etc/group: %s", strerror(-r));
	u.name = TAKE_PTR(e.name);
	u.uid = e.uid;
	u.gid = e.gid;
	*ret = u;
	return 0;
}

int files_act_as(const struct files_user *u)
{
	if (setgroups(u->n_groups, u->groups) < 0)
		return -errno;
	/* setfsgid/setfsuid return the previous id and report no error:
	 * ask again to learn whether it took. */
	(void)setfsgid(u->gid);
	if ((gid_t)setfsgid((gid_t)-1) != u->gid)
		return -EPERM;
	(void)setfsuid(u->uid);
	if ((uid_t)setfsuid((uid_t)-1) != u->uid)
		return -EPERM;
	return 0;
}
