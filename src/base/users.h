/* Users and groups, read from /etc/passwd and /etc/group themselves
 * rather than through glibc's NSS (vsh's target user, valet.v1.Files'
 * `user` and the owner and group names of a FileInfo).
 *
 * Why: the static vshd (what images ship) cannot load NSS modules; a
 * nsswitch.conf naming one (`passwd: files systemd` on every systemd
 * guest) made glibc's static NSS crash the session on an unknown user.
 * Every build reads the files, so the programs behave the same whatever
 * they are linked with and whatever nsswitch.conf says; users known only
 * to an NSS module (LDAP, sssd, systemd-userdb) are not served. */
#pragma once

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

/* The files read (also watched and cached by files/names.c). */
#define USERS_PASSWD_FILE "/etc/passwd"
#define USERS_GROUP_FILE "/etc/group"

struct user_entry {
	char *name;
	uid_t uid;
	gid_t gid;
	char *home;  /* "/" when the entry has none */
	char *shell; /* "/bin/sh" when the entry has none */
};

/* -ENOENT when there is no such entry; -errno when the file cannot be
 * read. */
int user_by_name(const char *name, struct user_entry *ret);
int user_by_uid(uid_t uid, struct user_entry *ret);
void user_entry_clear(struct user_entry *u);
/* The same from a passwd file the caller opened (read from where it
 * stands): a copy read from the page cache only, for example. */
int user_by_uid_in(FILE *passwd, uid_t uid, struct user_entry *ret);

/* The groups of user name: gid first, then every group of /etc/group that
 * lists name as a member (what getgrouplist() would say from the files).
 * At most 65536. */
int user_groups(const char *name, gid_t gid, gid_t **ret_groups, size_t *ret_n);

/* The name of group gid in /etc/group: -ENOENT when there is none. */
int group_name_by_gid(gid_t gid, char **ret_name);
int group_name_by_gid_in(FILE *group, gid_t gid, char **ret_name);
