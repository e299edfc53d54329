/* maitctl mkdir, rm and mv: the guest's MakeDirectory, Remove and Move
 * (valet.v1.Files). Quiet on success, as their coreutils namesakes are;
 * --json prints the guest's answer. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "files.h"
#include "rpc/status.h"

static void mkdir_usage(FILE *f)
{
	fputs("Usage: maitctl mkdir [-p] [--mode MODE] [--user NAME] [:]PATH\n"
	      "\n"
	      "Makes a guest directory (valet.v1.Files/MakeDirectory).\n"
	      "  -p, --parents      make missing parents too; an existing directory is fine\n"
	      "  -m, --mode MODE    its mode (octal; default 0755, no umask)\n"
	      "      --user NAME    act as this guest user (it owns the directory)\n",
	      f);
}

static int mkdir_run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "parents", no_argument, NULL, 'p' },
		{ "mode", required_argument, NULL, 'm' },
		{ "user", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	Valet__V1__MakeDirectoryRequest req = VALET__V1__MAKE_DIRECTORY_REQUEST__INIT;
	_cleanup_response_ Valet__V1__FileInfo *i = NULL;
	const char *path;
	int c, r;

	while ((c = getopt_long(argc, argv, "pm:h", longopts, NULL)) >= 0) {
		switch (c) {
		case 'p': req.parents = true; break;
		case 'm':
			if (maitctl_parse_mode("mkdir", "--mode", optarg, &req.mode))
				return MAITCTL_EXIT_USAGE;
			req._mode_case = VALET__V1__MAKE_DIRECTORY_REQUEST___MODE_MODE;
			break;
		case 'u': req.user = optarg; break;
		case 'h': mkdir_usage(stdout); return 0;
		default: mkdir_usage(stderr); return MAITCTL_EXIT_USAGE;
		}
	}
	r = maitctl_one_guest_arg("mkdir", argc, argv, &path);
	if (r)
		return r;
	req.path = (char *)path;
	if (maitctl_call(ctl, FILES_SERVICE "MakeDirectory", &req.base, &valet__v1__file_info__descriptor,
			 (ProtobufCMessage **)&i) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	maitctl_info_json_line(ctl, i);
	return 0;
}

const struct maitctl_command maitctl_cmd_mkdir = { .name = "mkdir",
						   .summary = "make a guest directory",
						   .run = mkdir_run };

static void rm_usage(FILE *f)
{
	fputs("Usage: maitctl rm [-r] [--user NAME] [:]PATH\n"
	      "\n"
	      "Removes a guest file, symlink (never followed) or empty directory\n"
	      "(valet.v1.Files/Remove); with -r a tree, never leaving its filesystem.\n"
	      "  -r, --recursive    remove a directory and everything below it\n"
	      "      --user NAME    act as this guest user\n",
	      f);
}

static int rm_run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "recursive", no_argument, NULL, 'r' },
		{ "user", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	Valet__V1__RemoveRequest req = VALET__V1__REMOVE_REQUEST__INIT;
	_cleanup_response_ Valet__V1__RemoveResponse *resp = NULL;
	const char *path;
	int c, r;

	while ((c = getopt_long(argc, argv, "rh", longopts, NULL)) >= 0) {
		switch (c) {
		case 'r': req.recursive = true; break;
		case 'u': req.user = optarg; break;
		case 'h': rm_usage(stdout); return 0;
		default: rm_usage(stderr); return MAITCTL_EXIT_USAGE;
		}
	}
	r = maitctl_one_guest_arg("rm", argc, argv, &path);
	if (r)
		return r;
	req.path = (char *)path;
	if (maitctl_call(ctl, FILES_SERVICE "Remove", &req.base, &valet__v1__remove_response__descriptor,
			 (ProtobufCMessage **)&resp) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	if (ctl->json)
		printf("{\"removed\":%llu}\n", (unsigned long long)resp->removed);
	return 0;
}

const struct maitctl_command maitctl_cmd_rm = { .name = "rm", .summary = "remove a guest file or tree", .run = rm_run };

static void mv_usage(FILE *f)
{
	fputs("Usage: maitctl mv [--no-replace] [--user NAME] [:]SRC [:]DST\n"
	      "\n"
	      "Renames within the guest (valet.v1.Files/Move, rename(2)): DST is the new\n"
	      "name, not a directory to move into.\n"
	      "      --no-replace   fail if DST exists (ALREADY_EXISTS)\n"
	      "      --user NAME    act as this guest user\n",
	      f);
}

static int mv_run(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "no-replace", no_argument, NULL, 'n' },
		{ "user", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	Valet__V1__MoveRequest req = VALET__V1__MOVE_REQUEST__INIT;
	_cleanup_response_ Valet__V1__FileInfo *i = NULL;
	const char *src, *dst;
	int c, r;

	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0) {
		switch (c) {
		case 'n': req.no_replace = true; break;
		case 'u': req.user = optarg; break;
		case 'h': mv_usage(stdout); return 0;
		default: mv_usage(stderr); return MAITCTL_EXIT_USAGE;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "maitctl mv: expected SRC DST, got %d argument(s)\n", argc - optind);
		return MAITCTL_EXIT_USAGE;
	}
	r = maitctl_guest_arg("mv", argv[optind], &src);
	if (r)
		return r;
	r = maitctl_guest_arg("mv", argv[optind + 1], &dst);
	if (r)
		return r;
	req.source = (char *)src;
	req.destination = (char *)dst;
	if (maitctl_call(ctl, FILES_SERVICE "Move", &req.base, &valet__v1__file_info__descriptor,
			 (ProtobufCMessage **)&i) != RPC_OK)
		return MAITCTL_EXIT_RPC_ERROR;
	maitctl_info_json_line(ctl, i);
	return 0;
}

const struct maitctl_command maitctl_cmd_mv = { .name = "mv", .summary = "rename within the guest", .run = mv_run };
