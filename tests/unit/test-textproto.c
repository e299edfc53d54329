/* The text format of boot jobs: what real images ship, and every way a
 * file can be wrong (with its line number). */
#include "init/textproto.h"
#include "test.h"

/* err is "line N: what" on failure, "" on success. */
static VmTools__LaunchProcessRequest *parse(const char *text, char *err)
{
	VmTools__LaunchProcessRequest *req = NULL;
	struct textproto_error e;

	err[0] = 0;
	if (textproto_parse_launch(text, strlen(text), &req, &e) < 0) {
		snprintf(err, 300, "line %u: %s", e.line, e.message);
		return NULL;
	}
	return req;
}

TEST(agetty_sample)
{
	char err[300];
	VmTools__LaunchProcessRequest *r = parse("# Serial console login.\n"
						 "argv: \"/sbin/agetty\"\n"
						 "argv: \"115200\" argv: 'ttyS0'\n"
						 "argv: \"linux\"\n"
						 "env { key: \"TERM\" value: \"vt100\" }\n"
						 "env: < key: 'LANG', value: \"C.UTF-8\" >\n"
						 "respawn: true\n"
						 "use_console: True;\n"
						 "wait_for_exit: false  # trailing comment\n",
						 err);
	CHECK(r);
	CHECK_EQ(r->n_argv, 4);
	CHECK_STR(r->argv[0], "/sbin/agetty");
	CHECK_STR(r->argv[2], "ttyS0");
	CHECK_EQ(r->n_env, 2);
	CHECK_STR(r->env[0]->key, "TERM");
	CHECK_STR(r->env[0]->value, "vt100");
	CHECK_STR(r->env[1]->key, "LANG");
	CHECK_STR(r->env[1]->value, "C.UTF-8");
	CHECK(r->respawn && r->use_console && !r->wait_for_exit);
	vm_tools__launch_process_request__free_unpacked(r, NULL);
}

TEST(escapes_and_concatenation)
{
	char err[300];
	VmTools__LaunchProcessRequest *r =
		parse("argv: \"a\\tb\\n\" 'c\\\"d' \"\\x41\\101\\\\\"\nwait_for_exit: 1", err);
	CHECK(r);
	CHECK_EQ(r->n_argv, 1);
	CHECK_STR(r->argv[0], "a\tb\nc\"dAA\\");
	CHECK(r->wait_for_exit);
	vm_tools__launch_process_request__free_unpacked(r, NULL);
}

TEST(empty_file_is_empty_request)
{
	char err[300];
	VmTools__LaunchProcessRequest *r = parse("  # nothing\n\n", err);
	CHECK(r);
	CHECK_EQ(r->n_argv, 0);
	vm_tools__launch_process_request__free_unpacked(r, NULL);
}

TEST(errors_name_the_line)
{
	static const struct {
		const char *text, *err;
	} cases[] = {
		{ "argv: \"a\"\nbogus: 1\n", "line 2: unknown field 'bogus'" },
		{ "argv \"a\"", "line 1: expected ':' after argv" },
		{ "\n\nargv: \"unterminated\n", "line 3: unterminated string" },
		{ "argv: 42", "line 1: expected a quoted string" },
		{ "respawn: maybe", "line 1: expected true or false, got 'maybe'" },
		{ "argv: \"\\q\"", "line 1: unknown escape \\q" },
		{ "argv: \"a\\0b\"", "line 1: string field 'argv' contains a NUL byte" },
		{ "env { key: \"K\" value: \"a\\x00\" }", "line 1: string field 'env.value' contains a NUL byte" },
		{ "env { key: \"\\000K\" }", "line 1: string field 'env.key' contains a NUL byte" },
		{ "env { key: \"K\" value: \"V\"", "line 1: unterminated env block" },
		{ "env { name: \"K\" }", "line 1: unknown env field 'name'" },
		{ "env { value: \"V\" }", "line 1: env needs a key without '='" },
		{ "env { key: \"A=B\" }", "line 1: env needs a key without '='" },
		{ "env key: \"K\"", "line 1: expected '{' after env" },
		{ "@", "line 1: expected a field name, got '@'" },
		{ "argv: \"\\x\"", "line 1: bad \\x escape" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char err[300];
		VmTools__LaunchProcessRequest *r = parse(cases[i].text, err);
		if (r || strcmp(err, cases[i].err) != 0) {
			snprintf(test_failure, sizeof(test_failure), "case %zu: got '%s', want '%s'", i, err,
				 cases[i].err);
			test_failed_flag = true;
			if (r)
				vm_tools__launch_process_request__free_unpacked(r, NULL);
			return;
		}
	}
}

/* One parse of possibly bad text: either a request whose strings are all
 * there, or a failure that names a line of the text and says what is wrong
 * (and hands back nothing). Returns whether it parsed. */
static bool parse_checked(const char *text, size_t len, bool *ret_sane)
{
	VmTools__LaunchProcessRequest *r = NULL;
	struct textproto_error e;
	unsigned lines = 1;

	memset(&e, 'x', sizeof(e));
	for (size_t i = 0; i < len; i++)
		lines += text[i] == '\n';
	if (textproto_parse_launch(text, len, &r, &e) < 0) {
		*ret_sane = !r && e.line >= 1 && e.line <= lines && memchr(e.message, 0, sizeof(e.message)) &&
			    e.message[0] != 0;
		return false;
	}
	*ret_sane = r != NULL;
	for (size_t i = 0; r && i < r->n_argv; i++)
		*ret_sane = *ret_sane && r->argv[i];
	for (size_t i = 0; r && i < r->n_env; i++)
		*ret_sane = *ret_sane && r->env[i]->key && r->env[i]->value;
	if (r)
		vm_tools__launch_process_request__free_unpacked(r, NULL);
	return true;
}

TEST(garbage_never_crashes)
{
	/* Every prefix of a valid file, and byte flips: parse or fail with a
	 * line and a message, never crash or leak (the sanitizer build checks
	 * the latter). */
	const char *good = "argv: \"/bin/x\" env { key: \"K\" value: \"V\\x41\" } respawn: true # c\n";
	char buf[128];
	size_t n = strlen(good), parsed = 0, failed = 0;
	bool sane;

	for (size_t cut = 0; cut <= n; cut++) {
		bool ok = parse_checked(good, cut, &sane);
		CHECK(sane);
		parsed += ok;
		failed += !ok;
	}
	CHECK(parse_checked(good, n, &sane)); /* the whole file is fine */
	CHECK(failed > 0 && parsed > 1);      /* cuts inside a string fail; "" parses */
	for (size_t i = 0; i < n; i++)
		for (int b = 0; b < 8; b++) {
			memcpy(buf, good, n);
			buf[i] ^= (char)(1 << b);
			(void)parse_checked(buf, n, &sane);
			CHECK(sane);
		}
}
