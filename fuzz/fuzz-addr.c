/* Socket addresses as users and the kernel command line give them
 * (--listen, --vm-ready, maitctl --addr). A parsed address, formatted,
 * must parse again to the same socket address: logs and error messages
 * show the formatted form. */
#include <errno.h>
#include <string.h>

#include "fuzz.h"
#include "net/addr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct addr a, b;
	char buf[256], buf2[256];
	char *s = malloc(size + 1);

	FUZZ_CHECK(s);
	memcpy(s, data, size);
	s[size] = 0;
	int r = addr_parse(s, &a);
	if (r < 0)
		FUZZ_CHECK(r == -EINVAL || r == -ENAMETOOLONG);
	else {
		FUZZ_CHECK(a.sa_len > 0 && a.sa_len <= sizeof(a.sa));
		FUZZ_CHECK(addr_format(&a, buf, sizeof(buf)) == buf);
		FUZZ_CHECK(addr_parse(buf, &b) == 0);
		FUZZ_CHECK(a.family == b.family && a.sa_len == b.sa_len);
		FUZZ_CHECK(memcmp(&a.sa, &b.sa, a.sa_len) == 0);
		FUZZ_CHECK(strcmp(addr_format(&b, buf2, sizeof(buf2)), buf) == 0);
		/* hvsock:PATH:PORT names the VMM's unix socket, and a guest port. */
		FUZZ_CHECK((addr_unix_path(&a) != NULL) == (a.family == ADDR_UNIX || a.family == ADDR_HVSOCK));
		FUZZ_CHECK(a.family != ADDR_HVSOCK || a.hvsock_port == b.hvsock_port);
	}
	free(s);
	return 0;
}
