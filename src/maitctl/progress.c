/* cp's progress line: bytes done (of the total), rate, ETA, redrawn in
 * place on stderr at most ten times a second, only on a terminal. */
#include <stdio.h>
#include <unistd.h>

#include "base/time-util.h"
#include "files.h"

#define PROGRESS_INTERVAL_USEC 100000

static void human(uint64_t n, char buf[static 32])
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	unsigned u = 0;

	while (v >= 1024 && u < 4) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, 32, "%llu B", (unsigned long long)n);
	else
		snprintf(buf, 32, "%.1f %s", v, units[u]);
}

void maitctl_progress_init(struct maitctl_progress *p, uint64_t total)
{
	*p = (struct maitctl_progress){ .on = isatty(STDERR_FILENO) == 1, .total = total, .start = now_usec() };
}

static void draw(struct maitctl_progress *p, uint64_t done, uint64_t now)
{
	char d[32], t[32], r[32], eta[48] = "";
	double secs = (double)(now - p->start) / 1e6;
	double rate = secs > 0 ? (double)done / secs : 0;

	human(done, d);
	human((uint64_t)rate, r);
	fprintf(stderr, "\r%s", d);
	if (p->total) {
		human(p->total, t);
		if (rate > 0 && done < p->total) {
			uint64_t s = (uint64_t)((double)(p->total - done) / rate);
			snprintf(eta, sizeof(eta), "  ETA %llu:%02llu", (unsigned long long)(s / 60),
				 (unsigned long long)(s % 60));
		}
		fprintf(stderr, " / %s (%3u%%)", t, (unsigned)(done * 100 / p->total));
	}
	if (p->files)
		fprintf(stderr, "  %llu files", (unsigned long long)p->files);
	/* Erase to the end of the line: a shorter line leaves no tail. */
	fprintf(stderr, "  %s/s%s\033[K", r, eta);
	p->shown = true;
	p->last = now;
}

void maitctl_progress_update(struct maitctl_progress *p, uint64_t done)
{
	if (!p->on)
		return;
	uint64_t now = now_usec();
	if (now - p->last < PROGRESS_INTERVAL_USEC)
		return;
	draw(p, done, now);
}

void maitctl_progress_end(struct maitctl_progress *p, uint64_t done)
{
	if (!p->on || !p->shown)
		return;
	draw(p, done, now_usec());
	fputc('\n', stderr);
	p->shown = false;
}

void maitctl_progress_clear(struct maitctl_progress *p)
{
	if (p->on && p->shown)
		fputs("\r\033[K", stderr);
}
