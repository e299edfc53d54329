#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>

#include "base/parse.h"
#include "guest.pb-c.h"
#include "maitctl.h"
#include "rpc/status.h"

static const struct {
	const char *name;
	unsigned long flag;
} mount_flags[] = {
	{ "ro", MS_RDONLY },
	{ "nosuid", MS_NOSUID },
	{ "nodev", MS_NODEV },
	{ "noexec", MS_NOEXEC },
	{ "sync", MS_SYNCHRONOUS },
	{ "remount", MS_REMOUNT },
	{ "mandlock", MS_MANDLOCK },
	{ "dirsync", MS_DIRSYNC },
	{ "noatime", MS_NOATIME },
	{ "nodiratime", MS_NODIRATIME },
	{ "bind", MS_BIND },
	{ "move", MS_MOVE },
	{ "rec", MS_REC },
	{ "silent", MS_SILENT },
	{ "relatime", MS_RELATIME },
	{ "strictatime", MS_STRICTATIME },
	{ "lazytime", MS_LAZYTIME },
	{ "private", MS_PRIVATE },
	{ "slave", MS_SLAVE },
	{ "shared", MS_SHARED },
	{ "unbindable", MS_UNBINDABLE },
};

static void usage(FILE *f)
{
	fputs("Usage: maitctl mount SOURCE TARGET FSTYPE [--flags ro,nosuid,...|N] [--options STR]\n"
	      "                    [--create-target] [--permissions MODE] [--mkfs-if-needed]\n"
	      "\n"
	      "Mounts a filesystem in the guest with mount(2).\n"
	      "  --flags LIST|N     comma-separated flag names, or a number (0x.. allowed)\n"
	      "  --options STR      filesystem-specific data, e.g. size=16m\n"
	      "  --create-target    create TARGET (and its parents, mode 0755) if missing\n"
	      "  --permissions MODE chmod TARGET to MODE (octal) once mounted\n"
	      "  --mkfs-if-needed   when the mount fails and SOURCE is blank (all zeros),\n"
	      "                     run the guest's mkfs.FSTYPE on it and mount again\n"
	      "Flag names:",
	      f);
	for (size_t i = 0; i < ARRAY_SIZE(mount_flags); i++)
		fprintf(f, " %s", mount_flags[i].name);
	fputc('\n', f);
}

static int parse_flags(const char *s, uint64_t *ret)
{
	char buf[512], *save = NULL;
	uint64_t flags = 0;

	if (parse_u64_any_base(s, ret) == 0)
		return 0;
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		size_t i;
		for (i = 0; i < ARRAY_SIZE(mount_flags); i++)
			if (strcmp(tok, mount_flags[i].name) == 0)
				break;
		if (i == ARRAY_SIZE(mount_flags)) {
			fprintf(stderr, "maitctl mount: unknown flag '%s' in --flags '%s'\n", tok, s);
			return -EINVAL;
		}
		flags |= mount_flags[i].flag;
	}
	*ret = flags;
	return 0;
}

static int run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "flags", required_argument, NULL, 'f' },
		{ "options", required_argument, NULL, 'o' },
		{ "create-target", no_argument, NULL, 'c' },
		{ "permissions", required_argument, NULL, 'p' },
		{ "mkfs-if-needed", no_argument, NULL, 'm' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	VmTools__MountRequest req = VM_TOOLS__MOUNT_REQUEST__INIT;
	_cleanup_response_ VmTools__MountResponse *resp = NULL;
	int c;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
		switch (c) {
		case 'f':
			if (parse_flags(optarg, &req.mountflags) < 0)
				return MAITCTL_EXIT_USAGE;
			break;
		case 'o': req.options = optarg; break;
		case 'c': req.create_target = true; break;
		case 'm': req.mkfs_if_needed = true; break;
		case 'p': {
			char *end;
			unsigned long mode = strtoul(optarg, &end, 8);
			if (!*optarg || *end || mode == 0 || mode > 07777) {
				fprintf(stderr, "maitctl mount: invalid --permissions '%s': expected an octal mode\n",
					optarg);
				return MAITCTL_EXIT_USAGE;
			}
			req.permissions = (uint32_t)mode;
			break;
		}
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return MAITCTL_EXIT_USAGE;
		}
	}
	if (argc - optind != 3) {
		fprintf(stderr, "maitctl mount: expected SOURCE TARGET FSTYPE, got %d argument(s)\n", argc - optind);
		return MAITCTL_EXIT_USAGE;
	}
	req.source = argv[optind];
	req.target = argv[optind + 1];
	req.fstype = argv[optind + 2];

	if (maitctl_call(ctl, "/vm_tools.Maitred/Mount", &req.base, &vm_tools__mount_response__descriptor,
			 (ProtobufCMessage **)&resp) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	int err = resp->error;
	if (ctl->json) {
		printf("{\"error\":%d,\"message\":", err);
		maitctl_json_string(err ? strerror(err) : "");
		printf("}\n");
	} else if (err == 0)
		puts("OK");
	if (err) {
		fprintf(stderr, "maitctl mount: mount failed in the guest: %s (errno %d)\n", strerror(err), err);
		return MAITCTL_EXIT_RPC_ERROR;
	}
	return 0;
}

const struct maitctl_command maitctl_cmd_mount = { .name = "mount",
						   .summary = "mount a filesystem in the guest",
						   .run = run };
