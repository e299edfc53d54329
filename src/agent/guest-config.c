#include "guest-config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "base/macro.h"

#define WHY(...) (snprintf(why, len, __VA_ARGS__), -EINVAL)

int guest_check_zone_name(const char *name, char *why, size_t len)
{
	size_t n = strlen(name);

	if (n == 0)
		return WHY("the name is empty");
	if (n >= 256)
		return WHY("the name is longer than 255 characters");
	if (name[0] == '/')
		return WHY("an absolute path is not a zone name");
	/* Zone names are made of these (tzfile(5), "Theory" in tzdata); this
	 * also keeps out control characters and the like in logs. */
	for (const char *c = name; *c; c++)
		if (!((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ||
		      strchr("/_+-.", *c)))
			return isprint((unsigned char)*c)
				       ? WHY("'%c' is not allowed in a zone name", *c)
				       : WHY("byte 0x%02x is not allowed in a zone name", (unsigned char)*c);
	/* No component may leave /usr/share/zoneinfo or be empty. */
	for (const char *p = name; *p;) {
		size_t k = strcspn(p, "/");
		if (k == 0)
			return WHY("empty path component");
		if ((k == 1 && p[0] == '.') || (k == 2 && p[0] == '.' && p[1] == '.'))
			return WHY("'.' and '..' are not allowed");
		p += k;
		if (*p == '/' && !*++p)
			return WHY("trailing '/'");
	}
	return 0;
}

int guest_open_zone(int dirfd, const char *name, char *why, size_t len)
{
	/* The kernel resolves the name: every link, however chained, must
	 * stay beneath dirfd (RESOLVE_BENEATH refuses "..", absolute links and
	 * links that climb out with EXDEV), and /proc magic links are refused.
	 * Following links by hand and checking the result afterwards is what
	 * let zoneinfo/localtime -> /etc/localtime through. */
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	_cleanup_close_ int fd = (int)syscall(SYS_openat2, dirfd, name, &how, sizeof(how));
	char magic[4];
	struct stat st;

	if (fd < 0) {
		switch (errno) {
		case ENOENT:
		case ENOTDIR:
			return WHY("no such zone");
		case EXDEV:
			return WHY("a link leads outside the zoneinfo directory");
		case ELOOP:
			return WHY("too many levels of links");
		case EISDIR:
			return WHY("not a zoneinfo file (a directory)");
		default:
			return -errno;
		}
	}
	if (fstat(fd, &st) < 0)
		return -errno;
	if (!S_ISREG(st.st_mode))
		return WHY("not a zoneinfo file (not a regular file)");
	/* A zoneinfo file starts with "TZif" (tzfile(5)); tables like
	 * zone1970.tab are not zones. */
	if (pread(fd, magic, 4, 0) != 4 || memcmp(magic, "TZif", 4) != 0)
		return WHY("not a zoneinfo file (no TZif header)");
	return TAKE_FD(fd);
}

int guest_check_nameserver(const char *s, char *why, size_t len)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
		return 0;
	return WHY("not an IPv4 or IPv6 address");
}

int guest_check_hostname(const char *s, char *why, size_t len)
{
	size_t n = strlen(s);

	/* RFC 1123 host names: labels of letters, digits and '-', not at either
	 * end of a label; 1-63 characters each, 253 in all. */
	if (n == 0)
		return WHY("empty");
	if (n > 253)
		return WHY("longer than 253 characters");
	for (const char *p = s; *p;) {
		size_t k = strcspn(p, ".");
		if (k == 0)
			return WHY("empty label");
		if (k > 63)
			return WHY("a label is longer than 63 characters");
		if (p[0] == '-' || p[k - 1] == '-')
			return WHY("a label starts or ends with '-'");
		for (size_t i = 0; i < k; i++)
			if (!((p[i] >= 'A' && p[i] <= 'Z') || (p[i] >= 'a' && p[i] <= 'z') ||
			      (p[i] >= '0' && p[i] <= '9') || p[i] == '-'))
				return isprint((unsigned char)p[i])
					       ? WHY("'%c' is not allowed in a host name", p[i])
					       : WHY("byte 0x%02x is not allowed in a host name", (unsigned char)p[i]);
		p += k;
		if (*p == '.' && !*++p)
			return WHY("trailing '.'");
	}
	return 0;
}

int guest_check_resolv(char *const *nameservers, size_t n_ns, char *const *search, size_t n_search, char *err,
		       size_t errlen)
{
	char why[128];
	size_t chars = 0;

	if (n_ns > RESOLV_MAX_NAMESERVERS) {
		snprintf(err, errlen, "%zu nameservers: resolv.conf allows at most %d", n_ns, RESOLV_MAX_NAMESERVERS);
		return -EINVAL;
	}
	if (n_search > RESOLV_MAX_SEARCH) {
		snprintf(err, errlen, "%zu search domains: resolv.conf allows at most %d", n_search, RESOLV_MAX_SEARCH);
		return -EINVAL;
	}
	for (size_t i = 0; i < n_ns; i++)
		if (guest_check_nameserver(nameservers[i], why, sizeof(why)) < 0) {
			snprintf(err, errlen, "nameserver \"%.64s\": %s", nameservers[i], why);
			return -EINVAL;
		}
	for (size_t i = 0; i < n_search; i++) {
		if (guest_check_hostname(search[i], why, sizeof(why)) < 0) {
			snprintf(err, errlen, "search domain \"%.64s\": %s", search[i], why);
			return -EINVAL;
		}
		chars += strlen(search[i]) + (i > 0);
	}
	if (chars > RESOLV_MAX_SEARCH_CHARS) {
		snprintf(err, errlen, "search list of %zu characters: resolv.conf allows at most %d", chars,
			 RESOLV_MAX_SEARCH_CHARS);
		return -EINVAL;
	}
	return 0;
}

int guest_render_resolv(char *const *nameservers, size_t n_ns, char *const *search, size_t n_search, char **ret)
{
	_cleanup_free_ char *buf = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&buf, &size);

	if (!f)
		return -ENOMEM;
	fputs("# Written by maitred (SetResolvConfig or ConfigureNetwork).\n", f);
	for (size_t i = 0; i < n_ns; i++)
		fprintf(f, "nameserver %s\n", nameservers[i]);
	if (n_search > 0) {
		fputs("search", f);
		for (size_t i = 0; i < n_search; i++)
			fprintf(f, " %s", search[i]);
		fputc('\n', f);
	}
	if (fclose(f) != 0)
		return -ENOMEM;
	*ret = TAKE_PTR(buf);
	return 0;
}

/* "dir/.base.XXXXXX" for path, and the directory's name. */
static int temp_name(const char *path, char *tmp, size_t tmplen, char *dir, size_t dirlen)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int n;

	if (!*base)
		return -EISDIR;
	if (!slash)
		n = snprintf(dir, dirlen, ".");
	else
		n = snprintf(dir, dirlen, "%.*s", slash == path ? 1 : (int)(slash - path), path);
	if (n < 0 || (size_t)n >= dirlen)
		return -ENAMETOOLONG;
	n = snprintf(tmp, tmplen, "%.*s.%s.XXXXXX", (int)(base - path), path, base);
	if (n < 0 || (size_t)n >= tmplen)
		return -ENAMETOOLONG;
	return 0;
}

static int fsync_dir(const char *dir)
{
	_cleanup_close_ int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd < 0 || fsync(fd) < 0)
		return -errno;
	return 0;
}

int guest_write_file_atomic(const char *path, const char *data, size_t len, mode_t mode)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	_cleanup_close_ int fd = -1;
	int r;

	r = temp_name(path, tmp, sizeof(tmp), dir, sizeof(dir));
	if (r < 0)
		return r;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			goto fail;
		}
		off += (size_t)n;
	}
	if (fchmod(fd, mode) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0) {
		r = -errno;
		goto fail;
	}
	return fsync_dir(dir);
fail:
	(void)unlink(tmp);
	return r;
}

int guest_symlink_atomic(const char *target, const char *path)
{
	char tmp[PATH_MAX], dir[PATH_MAX];
	int r;

	r = temp_name(path, tmp, sizeof(tmp), dir, sizeof(dir));
	if (r < 0)
		return r;
	/* mkstemp's letters without the file: try a few names. */
	for (int attempt = 0;; attempt++) {
		char *x = tmp + strlen(tmp) - 6;
		for (int i = 0; i < 6; i++)
			x[i] = "abcdefghijklmnopqrstuvwxyz0123456789"[(unsigned)rand() % 36];
		if (symlink(target, tmp) == 0)
			break;
		if (errno != EEXIST || attempt == 16)
			return -errno;
	}
	if (rename(tmp, path) < 0) {
		r = -errno;
		(void)unlink(tmp);
		return r;
	}
	return fsync_dir(dir);
}
