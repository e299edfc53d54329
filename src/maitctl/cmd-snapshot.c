/* freeze, thaw, restored: valet.v1.Snapshot (docs/snapshot.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "base/parse.h"
#include "google/protobuf/empty.pb-c.h"
#include "health.pb-c.h"
#include "maitctl.h"
#include "snapshot.pb-c.h"

#define ENTROPY_BYTES 64

static const char freeze_help[] =
	"Usage: maitctl freeze [--timeout S]\n"
	"\n"
	"Syncs and freezes every writable filesystem on a block device in the guest\n"
	"(valet.v1.Snapshot/Freeze), so that a copy of its disks or a VM snapshot taken\n"
	"now is consistent; prints each one frozen. Calls that would write to them\n"
	"answer FAILED_PRECONDITION until `maitctl thaw`.\n"
	"  --timeout S   thaw by itself after S seconds without a thaw (1-600, default 60)\n";

static const char thaw_help[] = "Usage: maitctl thaw\n"
				"\n"
				"Thaws what freeze froze (valet.v1.Snapshot/Thaw); prints each one thawed.\n";

static const char restored_help[] =
	"Usage: maitctl restored [--time now|keep|SECONDS] [--entropy-from FILE]\n"
	"                        [--address A[/PREFIX] [--netmask M] --gateway G] [--generation G]\n"
	"\n"
	"Tells the guest it was just restored from a snapshot (valet.v1.Snapshot/Restored):\n"
	"it steps its clock, reseeds its random number generator, applies the network if\n"
	"given and records the generation; prints how far its clock moved.\n"
	"  --time T            now (this host's clock, the default), keep (no step), or\n"
	"                      SECONDS since the epoch (fractions allowed)\n"
	"  --entropy-from FILE the first 64 bytes of FILE (default /dev/urandom; at least 32)\n"
	"  --address, --netmask, --gateway   as for `maitctl network`\n"
	"  --generation G      a name for this restore (the previous one is printed)\n";

static void print_paths(const struct maitctl *ctl, const char *key, char **paths, size_t n)
{
	if (ctl->json) {
		printf("{\"%s\":[", key);
		for (size_t i = 0; i < n; i++) {
			if (i)
				putchar(',');
			maitctl_json_string(paths[i]);
		}
		printf("]}\n");
		return;
	}
	if (n == 0)
		printf("nothing %s\n", key);
	for (size_t i = 0; i < n; i++)
		printf("%s %s\n", key, paths[i]);
}

static int freeze(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	Valet__V1__FreezeRequest req = VALET__V1__FREEZE_REQUEST__INIT;
	_cleanup_response_ Valet__V1__FreezeResponse *resp = NULL;
	uint64_t v;
	int c;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		if (c != 't')
			return maitctl_help(freeze_help, c);
		if (parse_u64(optarg, 600, &v) < 0 || v == 0) {
			fprintf(stderr, "maitctl freeze: invalid --timeout '%s': expected seconds (1-600)\n", optarg);
			return MAITCTL_EXIT_USAGE;
		}
		req.timeout_seconds = (uint32_t)v;
	}
	int r = maitctl_no_stray(argc, argv);
	if (r >= 0)
		return r;
	if (maitctl_call(ctl, "/valet.v1.Snapshot/Freeze", &req.base, &valet__v1__freeze_response__descriptor,
			 (ProtobufCMessage **)&resp) != 0)
		return MAITCTL_EXIT_RPC_ERROR;
	print_paths(ctl, "frozen", resp->frozen, resp->n_frozen);
	return 0;
}

static int thaw(struct maitctl *ctl, int argc, char **argv)
{
	Google__Protobuf__Empty req = GOOGLE__PROTOBUF__EMPTY__INIT;
	_cleanup_response_ Valet__V1__ThawResponse *resp = NULL;
	int r = maitctl_no_args(argc, argv, thaw_help);

	if (r >= 0)
		return r;
	if (maitctl_call(ctl, "/valet.v1.Snapshot/Thaw", &req.base, &valet__v1__thaw_response__descriptor,
			 (ProtobufCMessage **)&resp) != 0)
		return MAITCTL_EXIT_RPC_ERROR;
	print_paths(ctl, "thawed", resp->thawed, resp->n_thawed);
	return 0;
}

/* The first ENTROPY_BYTES of path (fewer when it is shorter): at least 32. */
static int read_entropy(const char *path, uint8_t *buf, size_t *ret_len)
{
	_cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	size_t n = 0;

	if (fd < 0) {
		fprintf(stderr, "maitctl restored: --entropy-from '%s': %s\n", path, strerror(errno));
		return -errno;
	}
	while (n < ENTROPY_BYTES) {
		ssize_t k = read(fd, buf + n, ENTROPY_BYTES - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			fprintf(stderr, "maitctl restored: --entropy-from '%s': %s\n", path, strerror(errno));
			return -errno;
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	if (n < 32) {
		fprintf(stderr, "maitctl restored: --entropy-from '%s': %zu bytes; at least 32 are needed\n", path, n);
		return -EINVAL;
	}
	*ret_len = n;
	return 0;
}

static int restored(struct maitctl *ctl, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "time", required_argument, NULL, 't' },
		{ "entropy-from", required_argument, NULL, 'e' },
		{ "generation", required_argument, NULL, 'G' },
		MAITCTL_NET_OPTIONS,
		{ "help", no_argument, NULL, 'h' },
		{},
	};
	Valet__V1__RestoredRequest req = VALET__V1__RESTORED_REQUEST__INIT;
	Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
	VmTools__NetworkConfigRequest net = VM_TOOLS__NETWORK_CONFIG_REQUEST__INIT;
	struct maitctl_net_opts o = { .cfg = VM_TOOLS__IPV4_CONFIG__INIT };
	_cleanup_response_ Valet__V1__RestoredResponse *resp = NULL;
	const char *time_arg = "now", *entropy_from = "/dev/urandom";
	uint8_t entropy[ENTROPY_BYTES];
	size_t entropy_len = 0;
	int c, r;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) >= 0) {
		switch (c) {
		case 't': time_arg = optarg; break;
		case 'e': entropy_from = optarg; break;
		case 'G': req.generation = optarg; break;
		default:
			r = maitctl_net_option("restored", c, optarg, &o);
			if (r == -ENOENT)
				return maitctl_help(restored_help, c);
			if (r < 0)
				return MAITCTL_EXIT_USAGE;
		}
	}
	r = maitctl_no_stray(argc, argv);
	if (r >= 0)
		return r;
	if ((o.have_addr || o.have_mask || o.have_gw) && maitctl_net_check("restored", &o) < 0)
		return MAITCTL_EXIT_USAGE;
	if (strcmp(time_arg, "now") != 0 && strcmp(time_arg, "keep") != 0 &&
	    maitctl_parse_epoch(time_arg, &ts.seconds, &ts.nanos) < 0) {
		fprintf(stderr, "maitctl restored: invalid --time '%s': expected now, keep or seconds since the epoch\n",
			time_arg);
		return MAITCTL_EXIT_USAGE;
	}
	if (read_entropy(entropy_from, entropy, &entropy_len) < 0)
		return MAITCTL_EXIT_USAGE;
	req.entropy.data = entropy;
	req.entropy.len = entropy_len;
	if (o.have_addr) {
		net.ipv4_config = &o.cfg;
		req.network = &net;
	}
	if (strcmp(time_arg, "keep") != 0)
		req.time = &ts;
	/* Read last, just before the call: the guest's clock is set to it.
	 * A guest that was just restored may take seconds to answer its
	 * first connection; a time read before that would be as stale. So a
	 * health check first (its answer, or its error, does not matter: a
	 * guest that answers it answers the next call at once). */
	if (strcmp(time_arg, "now") == 0) {
		Grpc__Health__V1__HealthCheckRequest hc = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
		_cleanup_response_ ProtobufCMessage *hr = NULL;
		char msg[64];
		(void)maitctl_call_status(ctl, "/grpc.health.v1.Health/Check", &hc.base,
					  &grpc__health__v1__health_check_response__descriptor, &hr, msg, sizeof(msg));
		struct timespec t;
		(void)clock_gettime(CLOCK_REALTIME, &t);
		ts.seconds = t.tv_sec;
		ts.nanos = (int32_t)t.tv_nsec;
	}
	r = maitctl_call(ctl, "/valet.v1.Snapshot/Restored", &req.base, &valet__v1__restored_response__descriptor,
			 (ProtobufCMessage **)&resp);
	explicit_bzero(entropy, sizeof(entropy));
	if (r != 0)
		return MAITCTL_EXIT_RPC_ERROR;
	if (ctl->json) {
		printf("{\"clock_step_ns\":%lld,\"previous_generation\":", (long long)resp->clock_step_ns);
		maitctl_json_string(resp->previous_generation);
		printf("}\n");
	} else
		printf("clock stepped %+.6f s; previous generation \"%s\"\n", (double)resp->clock_step_ns / 1e9,
		       resp->previous_generation);
	return 0;
}

const struct maitctl_command maitctl_cmd_freeze = { .name = "freeze",
						    .summary = "freeze the guest's filesystems for a snapshot",
						    .run = freeze };
const struct maitctl_command maitctl_cmd_thaw = { .name = "thaw",
						  .summary = "thaw the guest's filesystems",
						  .run = thaw };
const struct maitctl_command maitctl_cmd_restored = { .name = "restored",
						      .summary = "tell the guest it was restored from a snapshot",
						      .run = restored };
