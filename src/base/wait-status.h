/* What a wait status says, in words and as the shell's number. The one
 * place that turns a status from waitpid() into text: logs, RPC answers and
 * vsh's final message all say the same thing the same way. */
#pragma once

/* Room for the longest text: "killed by signal 64 (SIGRTMAX), core dumped". */
#define WAIT_STATUS_STR_MAX 64

/* "exited with status N" or "killed by signal N (SIGNAME)" with
 * ", core dumped" when so. Returns buf. */
const char *wait_status_str(int status, char buf[static WAIT_STATUS_STR_MAX]);

/* The shell's number for the status: the exit status, or 128 + the signal. */
int wait_status_code(int status);
