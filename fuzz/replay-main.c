/* The plain driver: runs every corpus file through a fuzz target once,
 * without libFuzzer, so that the normal and the sanitizer builds (gcc)
 * replay the corpus as part of the test suite. Prints "ok FILE" per file
 * in the unit tests' format. A crash, a sanitizer report or a leak ends
 * the program with a non-zero status; stderr names the file it was on.
 *
 *   replay-NAME [FILE|DIR]...    (default: the target's corpus directory) */
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static int replay_file(const char *path, const char *label)
{
	FILE *f = fopen(path, "rbe");
	uint8_t *data = NULL;
	size_t size = 0, cap = 0;

	if (!f) {
		printf("not ok %s: %s\n", label, strerror(errno));
		return -1;
	}
	for (;;) {
		if (size == cap) {
			cap = cap ? 2 * cap : 4096;
			uint8_t *grown = realloc(data, cap);
			FUZZ_CHECK(grown);
			data = grown;
		}
		size_t n = fread(data + size, 1, cap - size, f);
		if (n == 0)
			break;
		size += n;
	}
	fclose(f);
	fprintf(stderr, "replaying %s (%zu bytes)\n", path, size);
	/* An exact-size copy, so that a read past the end is caught. */
	uint8_t *exact = malloc(size ? size : 1);
	FUZZ_CHECK(exact);
	memcpy(exact, data, size);
	free(data);
	(void)LLVMFuzzerTestOneInput(exact, size);
	free(exact);
	printf("ok %s\n", label);
	fflush(stdout);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

static int replay(const char *path)
{
	struct dirent **names;
	struct stat st;
	int failed = 0;

	if (stat(path, &st) < 0) {
		printf("not ok %s: %s\n", path, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, path) < 0;
	int n = scandir(path, &names, NULL, by_name);
	if (n < 0) {
		printf("not ok %s: %s\n", path, strerror(errno));
		return 1;
	}
	/* Labels name the corpus and the file: "server-session/unary-mount". */
	const char *base = strrchr(path, '/');
	base = base ? base + 1 : path;
	for (int i = 0; i < n; i++) {
		char file[4096], label[512];
		if (names[i]->d_name[0] != '.') {
			snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
			snprintf(label, sizeof(label), "%s/%s", base, names[i]->d_name);
			failed += replay_file(file, label) < 0;
		}
		free(names[i]);
	}
	free(names);
	return failed;
}

int main(int argc, char **argv)
{
	int failed = 0;

	if (argc < 2)
		return replay(FUZZ_CORPUS) ? 1 : 0;
	for (int i = 1; i < argc; i++)
		failed += replay(argv[i]);
	return failed ? 1 : 0;
}
