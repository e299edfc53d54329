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

/* On failure returns -EINVAL and writes "line N: what" into err. The result
 * is freed with vm_tools__launch_process_request__free_unpacked(). */
int textproto_parse_launch(const char *text, size_t len, VmTools__LaunchProcessRequest **ret, char *err,
			   size_t err_size);
