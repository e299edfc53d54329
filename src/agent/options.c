#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/parse.h"
#include "maitred.h"

static void usage(FILE *f)
{
	fputs("Usage: maitred [OPTIONS]\n"
	      "\n"
	      "Serves vm_tools.Maitred (gRPC over HTTP/2) for the host.\n"
	      "\n"
	      "  --listen ADDR          listen on ADDR (repeatable; default vsock:-1:8888)\n"
	      "                         ADDR is " ADDR_LISTEN_SYNTAX "\n"
	      "  --allow-cid CID        also accept vsock peers with this CID (default: only 2, the host)\n"
	      "  --interface NAME       interface ConfigureNetwork sets up (default eth0)\n"
	      "  --max-connections N    concurrent connections (default 128)\n"
	      "  --handshake-timeout S  drop peers that send no HTTP/2 preface within S seconds (default 10)\n"
	      "  --jobs-dir DIR         boot jobs to run before serving (default /etc/maitred)\n"
	      "  --no-startup-processes skip the boot jobs\n"
	      "  --vm-ready ADDR|none   where to send VmReady once serving (default as PID 1:\n"
	      "                         vsock:2:7777, the port from maitred.listen_port=N)\n"
	      "  --vm-ready-timeout S   keep retrying VmReady for S seconds (default 120)\n"
	      "  --shutdown-grace S     as PID 1, seconds between SIGTERM and SIGKILL at power-off\n"
	      "                         (default 10; maitred.shutdown_grace=S on the kernel command line wins)\n"
	      "  --respawn-backoff-max S  longest wait before restarting a respawning job that keeps\n"
	      "                         exiting (default 1; 0: restart at once)\n"
	      "  --main-fs PATH         the main writable filesystem (GetAvailableSpace, ResizeFilesystem;\n"
	      "                         default: maitred.main_fs=PATH on the kernel command line, else /)\n"
	      "  --resolv-conf PATH     the file SetResolvConfig writes (default /etc/resolv.conf)\n"
	      "  --localtime PATH       what SetTimezone replaces (default /etc/localtime)\n"
	      "  --zoneinfo-dir DIR     where SetTimezone finds zones (default /usr/share/zoneinfo)\n"
	      "  --max-processes N      valet.v1.Process: processes remembered, running or exited\n"
	      "                         (default and at most 1024)\n"
	      "  --process-buffer-max B valet.v1.Process: the largest buffer_bytes, the output kept per\n"
	      "                         stream, in bytes (default 16777216; default buffer 1048576)\n"
	      "  --process-buffer-total B  valet.v1.Process: the output buffers of all processes\n"
	      "                         together, in bytes (default 67108864)\n"
	      "  --process-keep-exited S  valet.v1.Process: seconds an exited process nobody has seen\n"
	      "                         end stays listed (default 600)\n"
	      "  --freeze-below DIR     Freeze (valet.v1.Snapshot) acts only on the filesystems mounted\n"
	      "                         at DIR or below it (default /: every one)\n"
	      "  --disable NAME         refuse a service (vm_tools.Maitred) or one method\n"
	      "                         (vm_tools.Maitred/LaunchProcess) with PERMISSION_DENIED (repeatable)\n"
	      "  --config PATH          read 'disable NAME' lines from PATH (default\n"
	      "                         /etc/valet/maitred.conf, if present)\n"
	      "  -h, --help             show this help\n",
	      f);
}

enum {
	OPT_LISTEN = 0x100,
	OPT_ALLOW_CID,
	OPT_INTERFACE,
	OPT_MAX_CONN,
	OPT_JOBS_DIR,
	OPT_NO_JOBS,
	OPT_HANDSHAKE,
	OPT_VM_READY,
	OPT_VM_READY_TIMEOUT,
	OPT_GRACE,
	OPT_MAIN_FS,
	OPT_RESOLV_CONF,
	OPT_LOCALTIME,
	OPT_ZONEINFO_DIR,
	OPT_RESPAWN_BACKOFF_MAX,
	OPT_DISABLE,
	OPT_CONFIG,
	OPT_MAX_PROCESSES,
	OPT_PROCESS_BUFFER_MAX,
	OPT_PROCESS_BUFFER_TOTAL,
	OPT_PROCESS_KEEP_EXITED,
	OPT_FREEZE_BELOW
};

static const struct option longopts[] = {
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "allow-cid", required_argument, NULL, OPT_ALLOW_CID },
	{ "interface", required_argument, NULL, OPT_INTERFACE },
	{ "max-connections", required_argument, NULL, OPT_MAX_CONN },
	{ "jobs-dir", required_argument, NULL, OPT_JOBS_DIR },
	{ "handshake-timeout", required_argument, NULL, OPT_HANDSHAKE },
	{ "no-startup-processes", no_argument, NULL, OPT_NO_JOBS },
	{ "vm-ready", required_argument, NULL, OPT_VM_READY },
	{ "vm-ready-timeout", required_argument, NULL, OPT_VM_READY_TIMEOUT },
	{ "shutdown-grace", required_argument, NULL, OPT_GRACE },
	{ "main-fs", required_argument, NULL, OPT_MAIN_FS },
	{ "resolv-conf", required_argument, NULL, OPT_RESOLV_CONF },
	{ "localtime", required_argument, NULL, OPT_LOCALTIME },
	{ "zoneinfo-dir", required_argument, NULL, OPT_ZONEINFO_DIR },
	{ "respawn-backoff-max", required_argument, NULL, OPT_RESPAWN_BACKOFF_MAX },
	{ "disable", required_argument, NULL, OPT_DISABLE },
	{ "config", required_argument, NULL, OPT_CONFIG },
	{ "max-processes", required_argument, NULL, OPT_MAX_PROCESSES },
	{ "process-buffer-max", required_argument, NULL, OPT_PROCESS_BUFFER_MAX },
	{ "process-buffer-total", required_argument, NULL, OPT_PROCESS_BUFFER_TOTAL },
	{ "process-keep-exited", required_argument, NULL, OPT_PROCESS_KEEP_EXITED },
	{ "freeze-below", required_argument, NULL, OPT_FREEZE_BELOW },
	{ "help", no_argument, NULL, 'h' },
	{},
};

static const char *option_name(int c)
{
	for (const struct option *o = longopts; o->name; o++)
		if (o->val == c)
			return o->name;
	return "?";
}

/* One option and its argument into opts: 0, 1 (--help) or -EINVAL. A
 * switch over every option: long, but one flat case each. */
static int parse_one(int c, const char *arg, struct maitred_options *opts)
{
	struct addr a;
	uint32_t v;

	switch (c) {
	case OPT_LISTEN:
		if (addr_parse(arg, &a) < 0 || a.family == ADDR_HVSOCK) {
			fprintf(stderr, "maitred: invalid --listen address '%s': expected %s\n", arg,
				ADDR_LISTEN_SYNTAX);
			return -EINVAL;
		}
		if (opts->n_listen == MAITRED_MAX_LISTEN) {
			fprintf(stderr, "maitred: at most %d --listen addresses\n", MAITRED_MAX_LISTEN);
			return -EINVAL;
		}
		opts->listen[opts->n_listen++] = arg;
		break;
	case OPT_ALLOW_CID:
		if (parse_u32(arg, &v) < 0 || peer_policy_allow_cid(&opts->policy, v) < 0) {
			fprintf(stderr, "maitred: invalid --allow-cid '%s': expected a CID number\n", arg);
			return -EINVAL;
		}
		break;
	case OPT_INTERFACE:
		if (!*arg || strlen(arg) >= 16) {
			fprintf(stderr, "maitred: invalid --interface '%s'\n", arg);
			return -EINVAL;
		}
		opts->interface = arg;
		break;
	case OPT_MAX_CONN:
		if (parse_u32(arg, &v) < 0 || v == 0 || v > 4096) {
			fprintf(stderr, "maitred: invalid --max-connections '%s': expected 1-4096\n", arg);
			return -EINVAL;
		}
		opts->max_connections = v;
		break;
	case OPT_HANDSHAKE:
	case OPT_GRACE:
	case OPT_VM_READY_TIMEOUT: {
		uint64_t *slot = c == OPT_HANDSHAKE ? &opts->handshake_timeout_usec
				 : c == OPT_GRACE   ? &opts->shutdown_grace_usec
						    : &opts->vm_ready_timeout_usec;
		if (parse_seconds(arg, slot) < 0) {
			fprintf(stderr, "maitred: invalid --%s '%s': expected seconds (0-3600]\n",
				option_name(c), arg);
			return -EINVAL;
		}
		break;
	}
	case OPT_RESPAWN_BACKOFF_MAX:
		if (parse_seconds_range(arg, true, 3600, &opts->respawn.backoff_max_usec) < 0) {
			fprintf(stderr,
				"maitred: invalid --respawn-backoff-max '%s': expected seconds [0-3600]\n",
				arg);
			return -EINVAL;
		}
		opts->respawn.backoff_min_usec =
			MIN(opts->respawn.backoff_min_usec, opts->respawn.backoff_max_usec);
		break;
	case OPT_VM_READY:
		if (strcmp(arg, "none") != 0 && addr_parse(arg, &a) < 0) {
			fprintf(stderr, "maitred: invalid --vm-ready address '%s': expected %s or none\n",
				arg, ADDR_SYNTAX);
			return -EINVAL;
		}
		opts->vm_ready = strcmp(arg, "none") == 0 ? NULL : arg;
		opts->vm_ready_given = true;
		break;
	case OPT_MAIN_FS:
	case OPT_RESOLV_CONF:
	case OPT_LOCALTIME:
	case OPT_ZONEINFO_DIR:
	case OPT_FREEZE_BELOW:
		if (arg[0] != '/') {
			fprintf(stderr, "maitred: invalid path '%s': expected an absolute path\n", arg);
			return -EINVAL;
		}
		*(c == OPT_MAIN_FS	 ? &opts->main_fs
		  : c == OPT_RESOLV_CONF ? &opts->resolv_conf
		  : c == OPT_LOCALTIME	 ? &opts->localtime
		  : c == OPT_FREEZE_BELOW ? &opts->freeze_below
					 : &opts->zoneinfo_dir) = arg;
		break;
	case OPT_DISABLE:
		/* Whether it names anything is known once the services are
		 * registered (agent.h: maitred_disable()). */
		if (opts->n_disable == MAITRED_MAX_DISABLE) {
			fprintf(stderr, "maitred: at most %d --disable options (use the config file)\n",
				MAITRED_MAX_DISABLE);
			return -EINVAL;
		}
		opts->disable[opts->n_disable++] = arg;
		break;
	case OPT_MAX_PROCESSES:
		if (parse_u32(arg, &v) < 0 || v == 0 || v > MAITRED_MAX_PROCESSES) {
			fprintf(stderr, "maitred: invalid --max-processes '%s': expected 1-%d\n", arg,
				MAITRED_MAX_PROCESSES);
			return -EINVAL;
		}
		opts->max_processes = v;
		break;
	case OPT_PROCESS_BUFFER_MAX:
	case OPT_PROCESS_BUFFER_TOTAL: {
		uint64_t b;
		/* At least one page; at most what a uint32 buffer_bytes can ask. */
		if (parse_u64(arg, UINT32_MAX, &b) < 0 || b < 4096) {
			fprintf(stderr, "maitred: invalid --%s '%s': expected bytes (4096-%u)\n", option_name(c), arg,
				UINT32_MAX);
			return -EINVAL;
		}
		*(c == OPT_PROCESS_BUFFER_MAX ? &opts->process_buffer_max : &opts->process_buffer_total) = (size_t)b;
		break;
	}
	case OPT_PROCESS_KEEP_EXITED:
		if (parse_seconds_range(arg, false, 86400, &opts->process_keep_exited_usec) < 0) {
			fprintf(stderr, "maitred: invalid --process-keep-exited '%s': expected seconds (0-86400]\n",
				arg);
			return -EINVAL;
		}
		break;
	case OPT_CONFIG: opts->config = arg; break;
	case OPT_JOBS_DIR: opts->jobs_dir = arg; break;
	case OPT_NO_JOBS: opts->no_startup_processes = true; break;
	case 'h': usage(stdout); return 1;
	default: usage(stderr); return -EINVAL;
	}
	return 0;
}

int maitred_parse_options(int argc, char **argv, struct maitred_options *opts)
{
	int c, r;

	*opts = (struct maitred_options){ .interface = "eth0",
					  .max_connections = 128,
					  .jobs_dir = "/etc/maitred",
					  .handshake_timeout_usec = 10000000,
					  .vm_ready_timeout_usec = 120000000,
					  .shutdown_grace_usec = 10000000,
					  .resolv_conf = "/etc/resolv.conf",
					  .localtime = "/etc/localtime",
					  .zoneinfo_dir = "/usr/share/zoneinfo",
					  .max_processes = MAITRED_MAX_PROCESSES,
					  .process_buffer_max = 16 * 1024 * 1024,
					  .process_buffer_total = 64 * 1024 * 1024,
					  .process_keep_exited_usec = 600 * 1000000ULL,
					  .freeze_below = "/" };
	peer_policy_init(&opts->policy);
	supervisor_params_init(&opts->respawn);
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) >= 0)
		if ((r = parse_one(c, optarg, opts)) != 0)
			return r;
	if (optind < argc) {
		fprintf(stderr, "maitred: unexpected argument '%s'\n", argv[optind]);
		return -EINVAL;
	}
	if (opts->n_listen == 0)
		opts->listen[opts->n_listen++] = "vsock:-1:8888";
	return 0;
}
