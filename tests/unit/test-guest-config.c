/* Validation and rendering for SetTimezone and SetResolvConfig, and the
 * atomic file replacement (in a temporary directory). */
#include <fcntl.h>
#include <sys/stat.h>

#include "agent/guest-config.h"
#include "test.h"

static bool zone_ok(const char *z)
{
	char why[128];
	return guest_check_zone_name(z, why, sizeof(why)) == 0;
}

TEST(zone_names)
{
	CHECK(zone_ok("UTC"));
	CHECK(zone_ok("Europe/Paris"));
	CHECK(zone_ok("America/Argentina/Buenos_Aires"));
	CHECK(zone_ok("Etc/GMT+5"));
	CHECK(zone_ok("Etc/GMT-14"));
	CHECK(!zone_ok(""));
	CHECK(!zone_ok("/etc/passwd"));
	CHECK(!zone_ok("../../etc/passwd"));
	CHECK(!zone_ok("Europe/../../x"));
	CHECK(!zone_ok("Europe/.."));
	CHECK(!zone_ok("./UTC"));
	CHECK(!zone_ok("Europe//Paris"));
	CHECK(!zone_ok("Europe/"));
	CHECK(!zone_ok("UTC\n"));
	CHECK(!zone_ok("Europe/Par is"));
	char why[128];
	CHECK_EQ(guest_check_zone_name("../x", why, sizeof(why)), -EINVAL);
	CHECK(strstr(why, "..") != NULL);
}

static bool ns_ok(const char *s)
{
	char why[128];
	return guest_check_nameserver(s, why, sizeof(why)) == 0;
}

TEST(nameservers)
{
	CHECK(ns_ok("8.8.8.8"));
	CHECK(ns_ok("2001:4860:4860::8888"));
	CHECK(ns_ok("::1"));
	CHECK(!ns_ok("8.8.8"));
	CHECK(!ns_ok("8.8.8.256"));
	CHECK(!ns_ok("dns.google"));
	CHECK(!ns_ok(""));
	CHECK(!ns_ok("8.8.8.8 "));
	CHECK(!ns_ok("1.2.3.4\nnameserver 6.6.6.6"));
}

static bool host_ok(const char *s)
{
	char why[128];
	return guest_check_hostname(s, why, sizeof(why)) == 0;
}

TEST(search_domains)
{
	char label63[64], label64[65], long_name[300];
	memset(label63, 'a', 63);
	label63[63] = 0;
	memset(label64, 'a', 64);
	label64[64] = 0;
	CHECK(host_ok("example.com"));
	CHECK(host_ok("corp"));
	CHECK(host_ok("a-b.c0"));
	CHECK(host_ok(label63));
	CHECK(!host_ok(label64));
	CHECK(!host_ok(""));
	CHECK(!host_ok("-a.com"));
	CHECK(!host_ok("a-.com"));
	CHECK(!host_ok("a..com"));
	CHECK(!host_ok(".com"));
	CHECK(!host_ok("example.com."));
	CHECK(!host_ok("under_score.com"));
	CHECK(!host_ok("x y"));
	CHECK(!host_ok("a.com\nnameserver 6.6.6.6"));
	snprintf(long_name, sizeof(long_name), "%s.%s.%s.%s", label63, label63, label63, label63);
	CHECK(!host_ok(long_name)); /* 255 characters */
}

TEST(resolv_limits_are_errors_naming_the_entry)
{
	char err[256];
	char *four[] = { "1.1.1.1", "1.0.0.1", "8.8.8.8", "8.8.4.4" };
	char *seven[] = { "a", "b", "c", "d", "e", "f", "g" };
	char *bad[] = { "1.1.1.1", "1.2.3" };
	char *search_bad[] = { "ok.example", "bad_one" };
	CHECK_EQ(guest_check_resolv(four, 3, seven, 6, err, sizeof(err)), 0);
	CHECK_EQ(guest_check_resolv(four, 4, NULL, 0, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "4 nameservers") != NULL);
	CHECK_EQ(guest_check_resolv(NULL, 0, seven, 7, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "7 search domains") != NULL);
	CHECK_EQ(guest_check_resolv(bad, 2, NULL, 0, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "\"1.2.3\"") != NULL);
	CHECK_EQ(guest_check_resolv(NULL, 0, search_bad, 2, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "\"bad_one\"") != NULL);
	/* 6 domains of 63 characters: 383 characters, over 256. */
	char l[6][64];
	char *longs[6];
	for (int i = 0; i < 6; i++) {
		memset(l[i], 'a' + i, 63);
		l[i][63] = 0;
		longs[i] = l[i];
	}
	CHECK_EQ(guest_check_resolv(NULL, 0, longs, 6, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "characters") != NULL);
	CHECK_EQ(guest_check_resolv(NULL, 0, longs, 4, err, sizeof(err)), 0); /* 255 */
}

TEST(resolv_rendering)
{
	char *ns[] = { "10.0.0.1", "fd00::1" };
	char *search[] = { "a.example", "b.example" };
	char *text = NULL;
	CHECK_EQ(guest_render_resolv(ns, 2, search, 2, &text), 0);
	CHECK_STR(text, "# Written by maitred (SetResolvConfig or ConfigureNetwork).\n"
			"nameserver 10.0.0.1\n"
			"nameserver fd00::1\n"
			"search a.example b.example\n");
	free(text);
	CHECK_EQ(guest_render_resolv(NULL, 0, NULL, 0, &text), 0);
	CHECK_STR(text, "# Written by maitred (SetResolvConfig or ConfigureNetwork).\n");
	free(text);
}

TEST(atomic_write_and_symlink)
{
	char dir[] = "/tmp/valet-unit-XXXXXX", path[128], link[128], buf[64] = { 0 };
	struct stat st;
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/resolv.conf", dir);
	snprintf(link, sizeof(link), "%s/localtime", dir);
	CHECK_EQ(guest_write_file_atomic(path, "one\n", 4, 0644), 0);
	CHECK_EQ(guest_write_file_atomic(path, "two\n", 4, 0600), 0);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK_EQ(read(fd, buf, sizeof(buf)), 4);
	close(fd);
	CHECK_STR(buf, "two\n");
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK_EQ(guest_symlink_atomic("/usr/share/zoneinfo/UTC", link), 0);
	CHECK_EQ(guest_symlink_atomic("/usr/share/zoneinfo/Europe/Paris", link), 0);
	CHECK(readlink(link, buf, sizeof(buf) - 1) > 0);
	CHECK(strncmp(buf, "/usr/share/zoneinfo/Europe/Paris", 32) == 0);
	/* Nothing left behind: only the two files. */
	char cmd[160];
	snprintf(cmd, sizeof(cmd), "test $(ls -A %s | wc -l) = 2", dir);
	CHECK_EQ(system(cmd), 0);
	/* A directory that does not exist: an error, no file. */
	snprintf(path, sizeof(path), "%s/nonexistent/x", dir);
	CHECK_EQ(guest_write_file_atomic(path, "x", 1, 0644), -ENOENT);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	CHECK_EQ(system(cmd), 0);
}

/* A zoneinfo tree in a temporary directory: zones, a link inside it, and
 * links that leave it (Debian's localtime -> /etc/localtime). */
static int open_zone(int dirfd, const char *name, char *why)
{
	int fd = guest_open_zone(dirfd, name, why, 128);
	if (fd >= 0)
		close(fd);
	return fd >= 0 ? 0 : fd;
}

TEST(zones_resolve_beneath_the_zoneinfo_directory)
{
	char dir[] = "/tmp/valet-unit-XXXXXX", path[256], why[128];
	static const char tzif[] = "TZif2\0\0\0";
	CHECK(mkdtemp(dir) != NULL);
	snprintf(path, sizeof(path), "%s/zi", dir);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/zi/America", dir);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/zi/US", dir);
	CHECK(mkdir(path, 0755) == 0);
	snprintf(path, sizeof(path), "%s/zi/America/Los_Angeles", dir);
	CHECK(guest_write_file_atomic(path, tzif, sizeof(tzif), 0644) == 0);
	snprintf(path, sizeof(path), "%s/Outside", dir);
	CHECK(guest_write_file_atomic(path, tzif, sizeof(tzif), 0644) == 0);
	snprintf(path, sizeof(path), "%s/zi/zone1970.tab", dir);
	CHECK(guest_write_file_atomic(path, "#\n", 2, 0644) == 0);
	snprintf(path, sizeof(path), "%s/zi/US/Pacific", dir);
	CHECK(symlink("../America/Los_Angeles", path) == 0);
	snprintf(path, sizeof(path), "%s/zi/localtime", dir);
	CHECK(symlink("/etc/localtime", path) == 0);
	snprintf(path, sizeof(path), "%s/zi/Escape", dir);
	CHECK(symlink("../Outside", path) == 0);
	snprintf(path, sizeof(path), "%s/zi/Absolute", dir);
	char target[256];
	snprintf(target, sizeof(target), "%s/zi/America/Los_Angeles", dir);
	CHECK(symlink(target, path) == 0);
	snprintf(path, sizeof(path), "%s/zi/Magic", dir);
	CHECK(symlink("/proc/self/cwd", path) == 0);
	snprintf(path, sizeof(path), "%s/zi/Loop", dir);
	CHECK(symlink("Loop", path) == 0);

	snprintf(path, sizeof(path), "%s/zi", dir);
	int dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	CHECK(dirfd >= 0);
	CHECK_EQ(open_zone(dirfd, "America/Los_Angeles", why), 0);
	CHECK_EQ(open_zone(dirfd, "US/Pacific", why), 0);
	CHECK_EQ(open_zone(dirfd, "localtime", why), -EINVAL);
	CHECK(strstr(why, "leads outside the zoneinfo directory") != NULL);
	CHECK_EQ(open_zone(dirfd, "Escape", why), -EINVAL);
	CHECK(strstr(why, "leads outside") != NULL);
	CHECK_EQ(open_zone(dirfd, "Absolute", why), -EINVAL);
	CHECK(strstr(why, "leads outside") != NULL);
	CHECK_EQ(open_zone(dirfd, "Magic", why), -EINVAL);
	CHECK_EQ(open_zone(dirfd, "Loop", why), -EINVAL);
	CHECK(strstr(why, "too many levels of links") != NULL);
	CHECK_EQ(open_zone(dirfd, "Nowhere", why), -EINVAL);
	CHECK(strstr(why, "no such zone") != NULL);
	CHECK_EQ(open_zone(dirfd, "America", why), -EINVAL);
	CHECK(strstr(why, "not a zoneinfo file") != NULL);
	CHECK_EQ(open_zone(dirfd, "zone1970.tab", why), -EINVAL);
	CHECK(strstr(why, "not a zoneinfo file") != NULL);
	close(dirfd);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
}
