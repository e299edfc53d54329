#include "path.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/macro.h"

/* Set once openat2 answered ENOSYS (a kernel before 5.6), or by tests. */
static bool use_fallback;

void files_path_force_fallback(bool on)
{
	use_fallback = on;
}

/* Components of path (from p on): none empty, ".", ".." or too long. */
static int check_components(const char *p, const char *whole, struct files_err *err)
{
	for (;;) {
		const char *slash = strchr(p, '/');
		size_t n = slash ? (size_t)(slash - p) : strlen(p);
		if (n == 0)
			return files_fail(err, -EINVAL, "%s: empty path component", whole);
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return files_fail(err, -EINVAL, "%s: \".\" and \"..\" are not allowed", whole);
		if (n > NAME_MAX)
			return files_fail(err, -EINVAL, "%s: a component is longer than %d bytes", whole, NAME_MAX);
		if (!slash)
			return 0;
		p = slash + 1;
	}
}

/* What every path a peer sends must be: present, without NUL, bounded. */
static int check_string(const char *path, size_t len, struct files_err *err)
{
	if (!path || len == 0)
		return files_fail(err, -EINVAL, "path missing");
	if (strlen(path) != len)
		return files_fail(err, -EINVAL, "path contains a NUL byte");
	if (len >= FILES_PATH_MAX)
		return files_fail(err, -EINVAL, "path longer than %d bytes", FILES_PATH_MAX - 1);
	return 0;
}

int files_path_check(const char *path, size_t len, struct files_err *err)
{
	int r = check_string(path, len, err);

	if (r < 0)
		return r;
	if (path[0] != '/')
		return files_fail(err, -EINVAL, "%s: path is not absolute", path);
	if (len == 1)
		return 0;
	return check_components(path + 1, path, err);
}

int files_relpath_check(const char *path, size_t len, struct files_err *err)
{
	int r = check_string(path, len, err);

	if (r < 0)
		return r;
	if (path[0] == '/')
		return files_fail(err, -EINVAL, "%s: path is absolute, not relative to the root", path);
	return check_components(path, path, err);
}

int files_open_parent(const char *path, bool make_parents, int *ret_dirfd, const char **ret_name, struct files_err *err)
{
	const char *last = strrchr(path, '/');
	char parent[FILES_PATH_MAX];

	if (!last || path[0] != '/' || last[1] == '\0')
		return files_fail(err, -EINVAL, "%s: no parent directory", path);
	size_t n = last == path ? 1 : (size_t)(last - path);
	if (n >= sizeof(parent))
		return files_fail(err, -EINVAL, "path too long");
	memcpy(parent, path, n);
	parent[n] = '\0';

	if (!make_parents) {
		int fd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (fd < 0)
			return files_fail_path(err, -errno, parent);
		*ret_dirfd = fd;
		*ret_name = last + 1;
		return 0;
	}

	/* One component at a time from "/", creating what is missing (a
	 * concurrent creator's EEXIST is fine: the open that follows tells). */
	_cleanup_close_ int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return files_fail_path(err, -errno, "/");
	for (char *p = parent + 1; *p;) {
		char *slash = strchr(p, '/');
		if (slash)
			*slash = '\0';
		if (mkdirat(fd, p, 0755) < 0 && errno != EEXIST)
			return files_fail_path(err, -errno, parent);
		int next = openat(fd, p, O_PATH | O_DIRECTORY | O_CLOEXEC);
		if (next < 0)
			return files_fail_path(err, -errno, parent);
		safe_close(fd);
		fd = next;
		if (!slash)
			break;
		*slash = '/';
		p = slash + 1;
	}
	*ret_dirfd = TAKE_FD(fd);
	*ret_name = last + 1;
	return 0;
}

static int open_stepwise(int rootfd, const char *relpath, int flags, mode_t mode)
{
	char buf[FILES_PATH_MAX];
	_cleanup_close_ int fd = -1;
	int at = rootfd;

	if (strlen(relpath) >= sizeof(buf))
		return -ENAMETOOLONG;
	strcpy(buf, relpath);
	char *p = buf;
	for (;;) {
		char *slash = strchr(p, '/');
		if (!slash)
			break;
		*slash = '\0';
		/* Components were checked: no "..", so beneath is kept by
		 * refusing every symlink. */
		if (strcmp(p, "..") == 0)
			return -EXDEV;
		int next = openat(at, p, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (next < 0) {
			int r = -errno;
			struct stat st;
			if (r == -ENOTDIR && fstatat(at, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				r = -ELOOP;
			return r;
		}
		safe_close(fd);
		at = fd = next;
		p = slash + 1;
	}
	if (strcmp(p, "..") == 0)
		return -EXDEV;
	int r = openat(at, p, flags | O_NOFOLLOW | O_CLOEXEC, mode);
	if (r < 0) {
		r = -errno;
		struct stat st;
		if (r == -ENOTDIR && fstatat(at, p, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			r = -ELOOP;
	}
	return r;
}

int files_open_beneath(int rootfd, const char *relpath, int flags, mode_t mode)
{
	if (!use_fallback) {
		struct open_how how = {
			.flags = (uint64_t)(flags | O_CLOEXEC),
			.mode = ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) ? mode : 0,
			.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
		};
		long fd = syscall(SYS_openat2, rootfd, relpath, &how, sizeof(how));
		if (fd >= 0)
			return (int)fd;
		if (errno != ENOSYS)
			return -errno;
		use_fallback = true;
	}
	return open_stepwise(rootfd, relpath, flags, mode);
}

int files_open_parent_beneath(int rootfd, const char *relpath, int *ret_dirfd, const char **ret_name)
{
	const char *last = strrchr(relpath, '/');
	char parent[FILES_PATH_MAX];
	int fd;

	if (!last) {
		fd = fcntl(rootfd, F_DUPFD_CLOEXEC, 3);
		if (fd < 0)
			return -errno;
		*ret_dirfd = fd;
		*ret_name = relpath;
		return 0;
	}
	size_t n = (size_t)(last - relpath);
	if (n >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, relpath, n);
	parent[n] = '\0';
	fd = files_open_beneath(rootfd, parent, O_PATH | O_DIRECTORY, 0);
	if (fd < 0)
		return fd;
	*ret_dirfd = fd;
	*ret_name = last + 1;
	return 0;
}
