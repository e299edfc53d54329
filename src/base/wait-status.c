#include "wait-status.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

const char *wait_status_str(int status, char buf[static WAIT_STATUS_STR_MAX])
{
	if (WIFEXITED(status)) {
		snprintf(buf, WAIT_STATUS_STR_MAX, "exited with status %d", WEXITSTATUS(status));
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		const char *abbrev = sigabbrev_np(sig);
		snprintf(buf, WAIT_STATUS_STR_MAX, "killed by signal %d (SIG%s)%s", sig, abbrev ? abbrev : "?",
			 WCOREDUMP(status) ? ", core dumped" : "");
	} else {
		/* Only exits and deaths are reaped here (no WUNTRACED). */
		snprintf(buf, WAIT_STATUS_STR_MAX, "changed state (status 0x%x)", (unsigned)status);
	}
	return buf;
}

int wait_status_code(int status)
{
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	if (WIFSIGNALED(status))
		return 128 + WTERMSIG(status);
	return 255;
}
