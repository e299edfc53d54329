/* The kernel command line as PID 1 reads it (/proc/cmdline): whoever
 * starts the VM writes it. Unknown words and bad values are ignored; what
 * is taken must be in range. */
#include <string.h>

#include "fuzz.h"
#include "init/cmdline.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kernel_cmdline c;
	/* kernel_cmdline_read() terminates what it read; the kernel's text
	 * has no NUL inside, a file could: the parse stops there. */
	char *text = malloc(size + 1);

	FUZZ_CHECK(text);
	memcpy(text, data, size);
	text[size] = 0;
	kernel_cmdline_parse(text, &c);
	FUZZ_CHECK(c.vm_ready_port >= 0);
	if (!strstr(text, "maitred.listen_port="))
		FUZZ_CHECK(c.vm_ready_port == 0);
	if (!strstr(text, "maitred.shutdown_grace="))
		FUZZ_CHECK(c.shutdown_grace_usec == 0);
	if (!strstr(text, "maitred.no_startup_processes"))
		FUZZ_CHECK(!c.no_startup_processes);
	free(text);
	return 0;
}
