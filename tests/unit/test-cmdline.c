/* maitred.* words on the kernel command line, read the way the original
 * reads them (leading integer, last word wins) plus the grace period. */
#include "init/cmdline.h"
#include "test.h"

TEST(absent_words_leave_defaults)
{
	struct kernel_cmdline c;
	kernel_cmdline_parse("BOOT_IMAGE=/vmlinuz console=ttyS0 quiet maitred.other=1", &c);
	CHECK(!c.no_startup_processes);
	CHECK_EQ(c.vm_ready_port, 0);
	CHECK_EQ(c.shutdown_grace_usec, 0);
}

TEST(no_startup_processes_is_an_exact_word)
{
	struct kernel_cmdline c;
	kernel_cmdline_parse("console=ttyS0 maitred.no_startup_processes\n", &c);
	CHECK(c.no_startup_processes);
	kernel_cmdline_parse("maitred.no_startup_processesX maitred.no_startup_processes=1", &c);
	CHECK(!c.no_startup_processes);
}

TEST(listen_port_leading_integer_last_wins)
{
	struct kernel_cmdline c;
	kernel_cmdline_parse("maitred.listen_port=7000 x maitred.listen_port=7001junk", &c);
	CHECK_EQ(c.vm_ready_port, 7001);
	kernel_cmdline_parse("maitred.listen_port=7000 maitred.listen_port=abc", &c);
	CHECK_EQ(c.vm_ready_port, 7000);
	kernel_cmdline_parse("maitred.listen_port=-5 maitred.listen_port=", &c);
	CHECK_EQ(c.vm_ready_port, 0);
	kernel_cmdline_parse("\tmaitred.listen_port=9\t", &c);
	CHECK_EQ(c.vm_ready_port, 9);
}

TEST(shutdown_grace_seconds)
{
	struct kernel_cmdline c;
	kernel_cmdline_parse("maitred.shutdown_grace=2.5", &c);
	CHECK_EQ(c.shutdown_grace_usec, 2500000);
	kernel_cmdline_parse("maitred.shutdown_grace=0 maitred.shutdown_grace=x maitred.shutdown_grace=99999", &c);
	CHECK_EQ(c.shutdown_grace_usec, 0);
}

TEST(read_from_file)
{
	char path[] = "/tmp/valet-cmdline-XXXXXX";
	int fd = mkstemp(path);
	struct kernel_cmdline c;
	CHECK(fd >= 0);
	const char text[] = "console=ttyS0 maitred.listen_port=4242 maitred.no_startup_processes\n";
	CHECK(write(fd, text, sizeof(text) - 1) == (ssize_t)(sizeof(text) - 1));
	close(fd);
	CHECK_EQ(kernel_cmdline_read(path, &c), 0);
	unlink(path);
	CHECK_EQ(c.vm_ready_port, 4242);
	CHECK(c.no_startup_processes);
	CHECK_EQ(kernel_cmdline_read("/nonexistent/cmdline", &c), -ENOENT);
}

TEST(printk_devkmsg_noticed)
{
	struct kernel_cmdline c;
	kernel_cmdline_parse("quiet printk.devkmsg=ratelimit", &c);
	CHECK(c.printk_devkmsg);
	kernel_cmdline_parse("quiet printk.devkmsgx=on printk.devkmsg", &c);
	CHECK(!c.printk_devkmsg);
}

/* A line past CMDLINE_MAX (4096) is read up to it: the words before
 * count, the ones after are left out. */
TEST(read_long_line_cut)
{
	char path[] = "/tmp/valet-cmdline-XXXXXX";
	int fd = mkstemp(path);
	struct kernel_cmdline c;
	char pad[4096];
	CHECK(fd >= 0);
	const char head[] = "maitred.listen_port=4242 ";
	const char tail[] = " maitred.no_startup_processes";
	memset(pad, 'x', sizeof(pad));
	CHECK(write(fd, head, sizeof(head) - 1) == (ssize_t)(sizeof(head) - 1));
	CHECK(write(fd, pad, sizeof(pad)) == (ssize_t)sizeof(pad));
	CHECK(write(fd, tail, sizeof(tail) - 1) == (ssize_t)(sizeof(tail) - 1));
	close(fd);
	CHECK_EQ(kernel_cmdline_read(path, &c), 0);
	unlink(path);
	CHECK_EQ(c.vm_ready_port, 4242);
	CHECK(!c.no_startup_processes);
}
