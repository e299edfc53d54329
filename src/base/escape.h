/* Peer-controlled text made safe to log: one line, printable, bounded. A
 * zone name, a path or a user name with "\n" in it would otherwise forge
 * log lines (and with ESC sequences, drive the terminal of whoever reads
 * them). Every string a peer sends goes through here before it is
 * logged. */
#pragma once

#include <stddef.h>

/* Room for an escaped string in a log line, with its NUL. */
#define ESCAPE_STR_MAX 256

/* Writes data (len bytes) into buf (size bytes, at least 4), NUL
 * terminated: printable ASCII and well-formed UTF-8 as they are; "\\" for
 * a backslash, "\n", "\r", "\t", and "\xNN" for any other control
 * character (below 0x20, 0x7f, the C1 controls U+0080-U+009F) and for
 * every byte that is not part of well-formed UTF-8 (NUL included). When
 * the result does not fit, it is cut between two characters and ends in
 * "...". Returns buf. */
const char *escape_mem(const void *data, size_t len, char *buf, size_t size);

/* The same for a C string; NULL is "(null)". */
const char *escape_str(const char *s, char buf[static ESCAPE_STR_MAX]);

/* For a log call's argument: log_info("zone %s", ESCAPED(zone)). The buffer
 * lives until the end of the enclosing block. */
#define ESCAPED(s) escape_str((s), (char[ESCAPE_STR_MAX]){ 0 })
