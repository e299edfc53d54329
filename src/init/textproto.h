/* The protobuf text format of a LaunchProcessRequest, as boot jobs under
 * /etc/maitred are written:
 *
 *   # comment
 *   argv: "/usr/bin/agetty"  argv: "115200"
 *   env { key: "TERM" value: "linux" }
 *   respawn: true  use_console: true  wait_for_exit: false
 *
 * Exactly these fields. Strings are double- or single-quoted with C escapes
 * (\n \t \\ \" \' \xHH \NNN) and adjacent strings concatenate; fields may be
 * separated by ',' or ';'. */
#pragma once

#include <stddef.h>

#include "guest.pb-c.h"

struct textproto_error {
	unsigned line;	   /* 1-based */
	char message[256]; /* what is wrong, e.g. "unknown field 'bogus'" */
};

/* On failure returns -EINVAL and fills *ret_error (if not NULL). The result
 * is freed with vm_tools__launch_process_request__free_unpacked(). */
int textproto_parse_launch(const char *text, size_t len, VmTools__LaunchProcessRequest **ret,
			   struct textproto_error *ret_error);
