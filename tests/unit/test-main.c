#include "test.h"

struct test_case *test_cases;
bool test_failed_flag;
char test_failure[2048];

int main(int argc, char **argv)
{
	struct test_case *rev = NULL;
	int failed = 0;

	/* Constructors registered the cases in reverse: run them in file order. */
	while (test_cases) {
		struct test_case *c = test_cases;
		test_cases = c->next;
		c->next = rev;
		rev = c;
	}
	for (struct test_case *c = rev; c; c = c->next) {
		if (argc > 1 && !strstr(c->name, argv[1]))
			continue;
		test_failed_flag = false;
		test_failure[0] = 0;
		c->fn();
		if (test_failed_flag) {
			printf("not ok %s: %s\n", c->name, test_failure);
			failed++;
		} else
			printf("ok %s\n", c->name);
		fflush(stdout);
	}
	return failed ? 1 : 0;
}
