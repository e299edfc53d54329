/* resize, resize-status, resize-bounds: online resize of the guest's main
 * writable filesystem after the host grew its disk. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/parse.h"
#include "guest.pb-c.h"
#include "maitctl.h"
#include "rpc/status.h"

/* Bytes, or with a K/M/G/T suffix (powers of 1024). */
static int parse_size(const char *s, uint64_t *ret)
{
	char buf[32];
	size_t n = strlen(s);
	unsigned shift = 0;
	uint64_t v;

	if (n == 0 || n >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, n + 1);
	const char *suffix = strchr("KMGT", buf[n - 1]);
	if (suffix && buf[n - 1]) {
		shift = 10 * (unsigned)(suffix - "KMGT" + 1);
		buf[n - 1] = 0;
	}
	if (parse_u64(buf, UINT64_MAX, &v) < 0 || (shift && v > (UINT64_MAX >> shift)))
		return -EINVAL;
	*ret = v << shift;
	return 0;
}

static int resize(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = { { "help", no_argument, NULL, 'h' }, {} };
	static const char *const names[] = { "FAILED", "ALREADY_IN_PROGRESS", "STARTED" };
	VmTools__ResizeFilesystemRequest req = VM_TOOLS__RESIZE_FILESYSTEM_REQUEST__INIT;
	_cleanup_response_ VmTools__ResizeFilesystemResponse *resp = NULL;
	int c;

	if ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0)
		return maitctl_help("Usage: maitctl resize SIZE\n"
				    "\n"
				    "Resizes the guest's main writable filesystem to SIZE bytes (K, M, G, T\n"
				    "suffixes: powers of 1024) in the background (ResizeFilesystem): prints\n"
				    "STARTED, ALREADY_IN_PROGRESS or FAILED. Follow it with resize-status.\n",
				    c);
	if (argc - optind != 1 || parse_size(argv[optind], &req.size) < 0) {
		fprintf(stderr, "maitctl resize: expected one SIZE in bytes (or with K/M/G/T), got '%s'\n",
			argc - optind >= 1 ? argv[optind] : "");
		return MAITCTL_EXIT_USAGE;
	}
	if (maitctl_call(ctl, "/vm_tools.Maitred/ResizeFilesystem", &req.base,
			 &vm_tools__resize_filesystem_response__descriptor, (ProtobufCMessage **)&resp) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	int status = resp->status;
	const char *name = status >= 0 && status < 3 ? names[status] : "UNKNOWN";
	if (ctl->json)
		printf("{\"status\":\"%s\",\"size\":%llu}\n", name, (unsigned long long)req.size);
	else
		puts(name);
	return status == VM_TOOLS__RESIZE_FILESYSTEM_RESPONSE__RESIZE_STATUS__STARTED ? 0 : MAITCTL_EXIT_RPC_ERROR;
}

static void print_resize_status(const struct maitctl *ctl, const ProtobufCMessage *m)
{
	const VmTools__GetResizeStatusResponse *resp = (const VmTools__GetResizeStatusResponse *)m;

	if (ctl->json)
		printf("{\"resize_in_progress\":%s,\"current_size\":%llu,\"target_size\":%llu}\n",
		       resp->resize_in_progress ? "true" : "false", (unsigned long long)resp->current_size,
		       (unsigned long long)resp->target_size);
	else
		printf("%s current %llu target %llu\n", resp->resize_in_progress ? "in-progress" : "idle",
		       (unsigned long long)resp->current_size, (unsigned long long)resp->target_size);
}

static const struct maitctl_query resize_status_query = {
	.help = "Usage: maitctl resize-status\n\n"
		"Prints whether a resize is running, the current size and the last target size\n"
		"of the guest's main writable filesystem, in bytes (GetResizeStatus).\n",
	.method = "/vm_tools.Maitred/GetResizeStatus",
	.response_type = &vm_tools__get_resize_status_response__descriptor,
	.print = print_resize_status,
};

static void print_resize_bounds(const struct maitctl *ctl, const ProtobufCMessage *m)
{
	const VmTools__GetResizeBoundsResponse *resp = (const VmTools__GetResizeBoundsResponse *)m;

	if (ctl->json)
		printf("{\"minimum_size\":%llu}\n", (unsigned long long)resp->minimum_size);
	else
		printf("%llu\n", (unsigned long long)resp->minimum_size);
}

static const struct maitctl_query resize_bounds_query = {
	.help = "Usage: maitctl resize-bounds\n\n"
		"Prints the smallest size in bytes that resize accepts (GetResizeBounds).\n",
	.method = "/vm_tools.Maitred/GetResizeBounds",
	.response_type = &vm_tools__get_resize_bounds_response__descriptor,
	.print = print_resize_bounds,
};

const struct maitctl_command maitctl_cmd_resize = { .name = "resize",
						    .summary = "resize the guest's main filesystem",
						    .run = resize };
const struct maitctl_command maitctl_cmd_resize_status = { .name = "resize-status",
							   .summary = "show the progress of a resize",
							   .query = &resize_status_query };
const struct maitctl_command maitctl_cmd_resize_bounds = { .name = "resize-bounds",
							   .summary = "print the smallest size resize accepts",
							   .query = &resize_bounds_query };
