#include "names-watch.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <sys/inotify.h>
#include <time.h>
#include <unistd.h>

#include "base/users.h"
#include "files/cached.h"

#define ETC_DIR "/etc"
#define TRUST_NS 1000000000ull

/* Anything that adds, removes or renames an entry of /etc (most are not
 * these two files: a change of any makes one extra check). */
#define DIR_EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF)
/* The file's own inode: written, truncated, its owner or times changed. */
#define FILE_EVENTS (IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_DELETE_SELF | IN_MOVE_SELF)

static int watch_fd = -1;
static bool fresh;   /* checked since the last event */
static bool watched; /* the files, before the check being made */
static uint64_t checked_ns;

static uint64_t now_ns(void)
{
	struct timespec ts;

	/* The coarse clock is read in user space (vDSO): no system call. */
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int files_names_watch_start(void)
{
	int fd;

	if (watch_fd >= 0)
		return 0;
	fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (inotify_add_watch(fd, ETC_DIR, DIR_EVENTS | IN_ONLYDIR) < 0) {
		int r = -errno;
		close(fd);
		return r;
	}
	/* The files themselves, before each check (they may be replaced). */
	watch_fd = fd;
	fresh = false;
	return 0;
}

void files_names_watch_stop(void)
{
	if (watch_fd >= 0)
		close(watch_fd);
	watch_fd = -1;
	fresh = false;
}

/* Reads every waiting event: true if there was one (or the queue
 * overflowed, or reading failed: then stop trusting it at all). */
static bool drain(void)
{
	/* Big enough for many events at once; what does not fit is read by
	 * the next round. */
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool any = false;

	for (;;) {
		ssize_t n = read(watch_fd, buf, sizeof(buf));
		if (n > 0) {
			any = true;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return any;
		files_names_watch_stop();
		return true;
	}
}

/* Watches the files as they are now, before they are checked, so that a
 * change after the check is an event, whichever inode it went to. False
 * when one could not be watched: a missing file is fine (its creation is
 * an event of /etc); anything else (no watches left) is not. */
static bool watch_files(void)
{
	static const char *const files[] = { USERS_PASSWD_FILE, USERS_GROUP_FILE };

	for (unsigned i = 0; i < 2; i++) {
		/* Through the caches first: the watch's own path walk then
		 * finds the path there too, and never waits for a disk. */
		int fd = files_open_cached(files[i], O_PATH);
		if (fd == -ENOENT)
			continue;
		if (fd < 0)
			return false;
		close(fd);
		if (inotify_add_watch(watch_fd, files[i], FILE_EVENTS) < 0 && errno != ENOENT)
			return false;
	}
	return true;
}

bool files_names_watch_quiet(void)
{
	if (watch_fd < 0)
		return false;
	if (drain())
		fresh = false;
	if (watch_fd >= 0 && fresh && now_ns() - checked_ns < TRUST_NS)
		return true;
	fresh = false;
	watched = watch_fd >= 0 && watch_files();
	return false;
}

void files_names_watch_checked(void)
{
	if (watch_fd < 0 || !watched)
		return;
	fresh = true;
	checked_ns = now_ns();
}
