/* files-write DIR [MIB]: one file of MIB MiB (default 1024) written with
 * files_writer in 1 MiB chunks (the service's message size order), its
 * SHA-256 computed on the way, committed (fsync, rename, directory
 * fsync), then read back with files_reader; prints both rates. For
 * docs/files.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/sha256.h"
#include "files/reader.h"
#include "files/writer.h"

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: files-write DIR [MIB]\n");
		return 2;
	}
	size_t mib = argc > 2 ? strtoul(argv[2], NULL, 10) : 1024, chunk = 1 << 20;
	char path[4096];
	snprintf(path, sizeof(path), "%s/files-write.bench", argv[1]);
	char *buf = malloc(chunk);
	if (!buf)
		return 1;
	for (size_t i = 0; i < chunk; i++)
		buf[i] = (char)(i * 131);
	struct files_err err = { "" };
	struct files_writer *w = NULL;
	uint8_t d[32];
	double t0 = now();
	if (files_writer_open(path, &(struct files_write_opts){ 0 }, &w, &err) < 0)
		goto fail;
	for (size_t i = 0; i < mib; i++)
		if (files_writer_write(w, buf, chunk, &err) < 0)
			goto fail;
	if (files_writer_commit(w, d, NULL, &err) < 0)
		goto fail;
	files_writer_free(w);
	double t1 = now();
	struct files_reader *r = NULL;
	if (files_reader_open(path, 0, 0, &r, NULL, &err) < 0)
		goto fail;
	for (ssize_t n; (n = files_reader_read(r, buf, chunk, &err)) > 0;)
		;
	(void)files_reader_digest(r, d);
	files_reader_free(r);
	double t2 = now();
	if (files_reader_open(path, 0, 0, &r, NULL, &err) < 0)
		goto fail;
	files_reader_skip_digest(r);
	for (ssize_t n; (n = files_reader_read(r, buf, chunk, &err)) > 0;)
		;
	files_reader_free(r);
	double t3 = now();
	unlink(path);
	printf("sha256 %s; write %zu MiB: %.0f MB/s (with fsync); read: %.0f MB/s, without the digest %.0f MB/s\n",
	       sha256_uses_cpu_extensions() ? "with the CPU's SHA extensions" : "portable", mib,
	       (double)mib * chunk / 1e6 / (t1 - t0), (double)mib * chunk / 1e6 / (t2 - t1),
	       (double)mib * chunk / 1e6 / (t3 - t2));
	free(buf);
	return 0;
fail:
	fprintf(stderr, "files-write: %s\n", err.msg);
	return 1;
}
