/* base's small shared pieces: the wait-status formatter, environment
 * lookup, the escaping of peer text for logs and a small file read whole.
 * Statuses come from real children, not from hand-made numbers. */
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>

#include <string.h>

#include "base/escape.h"
#include "base/read-file.h"
#include "base/strv.h"
#include "base/wait-status.h"
#include "test.h"

/* The status of a child that exits with code, or (sig != 0) kills itself. */
static int child_status(int code, int sig)
{
	pid_t pid = fork();
	if (pid == 0) {
		if (sig) {
			/* No core file on the test machine. */
			setrlimit(RLIMIT_CORE, &(struct rlimit){ 0, 0 });
			signal(sig, SIG_DFL);
			raise(sig);
		}
		_exit(code);
	}
	int status = -1;
	waitpid(pid, &status, 0);
	return status;
}

TEST(wait_status_exit)
{
	char buf[WAIT_STATUS_STR_MAX];
	int st = child_status(3, 0);
	CHECK_STR(wait_status_str(st, buf), "exited with status 3");
	CHECK_EQ(wait_status_code(st), 3);
	st = child_status(0, 0);
	CHECK_STR(wait_status_str(st, buf), "exited with status 0");
	CHECK_EQ(wait_status_code(st), 0);
}

TEST(wait_status_signal)
{
	char buf[WAIT_STATUS_STR_MAX];
	int st = child_status(0, SIGTERM);
	CHECK_STR(wait_status_str(st, buf), "killed by signal 15 (SIGTERM)");
	CHECK_EQ(wait_status_code(st), 143);
	st = child_status(0, SIGKILL);
	CHECK_STR(wait_status_str(st, buf), "killed by signal 9 (SIGKILL)");
	CHECK_EQ(wait_status_code(st), 137);
}

TEST(wait_status_longest_fits)
{
	/* A real-time signal has no abbreviation: the text still ends. */
	char buf[WAIT_STATUS_STR_MAX];
	int st = child_status(0, SIGRTMAX);
	wait_status_str(st, buf);
	CHECK(strlen(buf) < sizeof(buf));
	CHECK(strncmp(buf, "killed by signal ", 17) == 0);
	CHECK_EQ(wait_status_code(st), 128 + SIGRTMAX);
}

TEST(env_lookup)
{
	char *env[] = { "PATHX=no", "PATH=/bin", "EMPTY=", "NOEQUALS", NULL };
	CHECK_STR(strv_env_get(env, "PATH"), "/bin");
	CHECK_STR(strv_env_get(env, "EMPTY"), "");
	CHECK(strv_env_get(env, "PAT") == NULL);
	CHECK(strv_env_get(env, "NOEQUALS") == NULL);
	CHECK(strv_env_get(NULL, "PATH") == NULL);
	CHECK(strv_env_find(env, "PATHX") == &env[0]);
}

/* --- escape_mem / escape_str ------------------------------------------ */

static const char *esc(const char *s)
{
	static char buf[ESCAPE_STR_MAX];
	return escape_str(s, buf);
}

TEST(escape_plain_text_unchanged)
{
	CHECK_STR(esc("Etc/UTC"), "Etc/UTC");
	CHECK_STR(esc(""), "");
	CHECK_STR(esc(" !~"), " !~");
	CHECK_STR(esc(NULL), "(null)");
	/* Well-formed UTF-8 stays readable. */
	CHECK_STR(esc("Am\xc3\xa9rica/S\xc3\xa3o_Paulo \xe2\x82\xac \xf0\x9f\x98\x80"),
		  "Am\xc3\xa9rica/S\xc3\xa3o_Paulo \xe2\x82\xac \xf0\x9f\x98\x80");
}

TEST(escape_a_forged_log_line_stays_on_one_line)
{
	const char *e = esc("Etc/UTC\nmaitred: FAKE line\r\n");
	CHECK_STR(e, "Etc/UTC\\nmaitred: FAKE line\\r\\n");
	CHECK(!strchr(e, '\n') && !strchr(e, '\r'));
	CHECK_STR(esc("a\tb"), "a\\tb");
	/* A backslash is escaped too, so that "\\n" in a log is never ambiguous. */
	CHECK_STR(esc("a\\nb"), "a\\\\nb");
}

TEST(escape_controls_and_bad_utf8_as_hex)
{
	/* ESC (a terminal sequence), DEL, a C1 CSI, a lone continuation byte,
	 * a truncated sequence, an overlong "/", a surrogate, past U+10FFFF. */
	CHECK_STR(esc("\x1b[31mred\x7f"), "\\x1b[31mred\\x7f");
	CHECK_STR(esc("\xc2\x9b[2J"), "\\xc2\\x9b[2J");
	CHECK_STR(esc("\x80"), "\\x80");
	CHECK_STR(esc("\xe2\x82"), "\\xe2\\x82");
	CHECK_STR(esc("\xc0\xaf"), "\\xc0\\xaf");
	CHECK_STR(esc("\xed\xa0\x80"), "\\xed\\xa0\\x80");
	CHECK_STR(esc("\xf4\x90\x80\x80"), "\\xf4\\x90\\x80\\x80");
	/* Bytes with a length: NUL included. */
	char buf[32];
	CHECK_STR(escape_mem("a\0b", 3, buf, sizeof(buf)), "a\\x00b");
}

TEST(escape_bounded_with_a_mark)
{
	char big[1000], buf[16];

	memset(big, 'a', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	const char *e = esc(big);
	CHECK_EQ(strlen(e), (size_t)ESCAPE_STR_MAX - 1);
	CHECK(strcmp(e + ESCAPE_STR_MAX - 4, "...") == 0);
	/* Exactly full: no mark. */
	CHECK_STR(escape_mem("abcdefghijklmno", 15, buf, sizeof(buf)), "abcdefghijklmno");
	CHECK_STR(escape_mem("abcdefghijklmnop", 16, buf, sizeof(buf)), "abcdefghijkl...");
	/* Never half an escape or half a character. */
	CHECK_STR(escape_mem("abcdefghij\n", 11, buf, sizeof(buf)), "abcdefghij\\n");
	CHECK_STR(escape_mem("abcdefghijk\x01zzz", 15, buf, sizeof(buf)), "abcdefghijk...");
	CHECK_STR(escape_mem("abcdefghijkl\xe2\x82\xac!", 16, buf, sizeof(buf)), "abcdefghijkl...");
	CHECK_STR(escape_mem("abcdefghijk\xe2\x82\xac", 14, buf, sizeof(buf)), "abcdefghijk\xe2\x82\xac");
	CHECK_STR(escape_mem("abc", 3, buf, 4), "abc");
	CHECK_STR(escape_mem("abcd", 4, buf, 4), "...");
}

/* A temporary file of len bytes, 'a' to 'z' over and over; its path in path. */
static void make_file(char *path, size_t len)
{
	int fd = mkstemp(path);
	CHECK(fd >= 0);
	for (size_t i = 0; i < len; i++)
		CHECK(write(fd, &(char){ (char)('a' + i % 26) }, 1) == 1);
	close(fd);
}

TEST(read_file_head_whole_and_cut)
{
	char path[] = "/tmp/valet-read-file-XXXXXX";
	char *text = NULL;
	size_t len = 99;

	/* Larger than the first allocation: the buffer grows. */
	make_file(path, 10000);
	CHECK_EQ(read_file_head(path, 1 << 20, &text, &len), 0);
	CHECK_EQ(len, 10000);
	CHECK_EQ(strlen(text), 10000);
	CHECK(text[0] == 'a' && text[9999] == 'a' + 9999 % 26);
	free(text);
	/* Exactly max bytes is the whole file; one less is a cut. */
	CHECK_EQ(read_file_head(path, 10000, &text, &len), 0);
	CHECK_EQ(len, 10000);
	free(text);
	CHECK_EQ(read_file_head(path, 9999, &text, &len), 1);
	CHECK_EQ(len, 9999);
	CHECK_EQ(strlen(text), 9999);
	free(text);
	CHECK_EQ(read_file_head(path, 0, &text, NULL), 1);
	CHECK_STR(text, "");
	free(text);
	unlink(path);
}

TEST(read_file_head_empty_and_missing)
{
	char path[] = "/tmp/valet-read-file-XXXXXX";
	char *text = NULL;
	size_t len = 99;

	make_file(path, 0);
	CHECK_EQ(read_file_head(path, 4096, &text, &len), 0);
	CHECK_EQ(len, 0);
	CHECK_STR(text, "");
	free(text);
	unlink(path);
	text = NULL;
	CHECK_EQ(read_file_head(path, 4096, &text, &len), -ENOENT);
	CHECK(text == NULL);
	CHECK_EQ(read_file_head("/", 4096, &text, &len), -EISDIR);
	CHECK(text == NULL);
}
