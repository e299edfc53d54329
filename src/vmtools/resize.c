/* ResizeFilesystem, GetResizeStatus, GetResizeBounds and GetAvailableSpace's
 * choice of filesystem: the main writable filesystem (--main-fs, else
 * maitred.main_fs= on the kernel command line, else /).
 *
 * Growing is the kernel's own online resize: EXT4_IOC_RESIZE_FS for ext4
 * (what resize2fs does for a mounted ext4, without resize2fs in the image),
 * BTRFS_IOC_RESIZE for btrfs. The ioctl blocks for as long as the resize
 * takes, so it runs in a worker child (worker.c) and ResizeFilesystem answers
 * STARTED at once; GetResizeStatus reports progress and the sizes; the
 * outcome is logged. One resize at a time. */
#include <errno.h>
#include <fcntl.h>
#include <linux/btrfs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "base/log.h"
#include "base/time-util.h"
#include "guest.pb-c.h"
#include "main-fs.h"
#include "vmtools.h"
#include "agent/worker.h"

/* linux/ext4.h is not among the uapi headers Debian installs. */
#ifndef EXT4_IOC_RESIZE_FS
#define EXT4_IOC_RESIZE_FS _IOW('f', 16, uint64_t)
#endif

const char *maitred_main_fs(struct vmtools_fs *m)
{
	_cleanup_fclose_ FILE *f = NULL;
	char line[4096];

	if (m->core->opts.main_fs)
		return m->core->opts.main_fs;
	if (!m->main_fs_buf[0]) {
		f = fopen("/proc/cmdline", "re");
		if (!f || !fgets(line, sizeof(line), f) ||
		    main_fs_from_cmdline(line, m->main_fs_buf, sizeof(m->main_fs_buf)) < 0)
			snprintf(m->main_fs_buf, sizeof(m->main_fs_buf), "/");
	}
	return m->main_fs_buf;
}

static int resize_child(void *arg)
{
	struct maitred_resize *rs = arg;

	if (rs->kind == MAIN_FS_EXT4) {
		uint64_t count = rs->count;
		return ioctl(rs->fd, EXT4_IOC_RESIZE_FS, &count) < 0 ? -errno : 0;
	}
	struct btrfs_ioctl_vol_args args = { 0 };
	snprintf(args.name, sizeof(args.name), "1:%llu", (unsigned long long)rs->target);
	return ioctl(rs->fd, BTRFS_IOC_RESIZE, &args) < 0 ? -errno : 0;
}

static void on_resized(int result, void *userdata)
{
	struct maitred_resize *rs = userdata;
	double secs = (double)(now_usec() - rs->started) / 1e6;

	if (result < 0)
		log_warning("ResizeFilesystem: resizing %s to %llu bytes failed after %.1f s: %s", rs->fs,
			    (unsigned long long)rs->target, secs, strerror(-result));
	else
		log_info("ResizeFilesystem: %s resized to %llu bytes in %.1f s", rs->fs, (unsigned long long)rs->target,
			 secs);
	worker_free(rs->worker);
	rs->worker = NULL;
	safe_close(rs->fd);
	rs->fd = -1;
}

/* btrfs_ioctl_resize refuses any new size under 256 MiB with EINVAL
 * (SZ_256M in fs/btrfs/ioctl.c), to grow or to shrink; checked on a loop
 * device: 256 MiB is accepted, 256 MiB - 1 byte and 200 MiB are not. */
#define BTRFS_MIN_RESIZE (UINT64_C(256) << 20)

/* The smallest size ResizeFilesystem may ask for: ext4 only grows online,
 * so its current size; btrfs the larger of the kernel's floor and what is
 * in use (a lower bound: the kernel may still find no room to move the
 * chunks and fail the shrink). */
static uint64_t minimum_size(const struct main_fs_info *info)
{
	if (info->kind == MAIN_FS_EXT4)
		return info->size;
	return info->used > BTRFS_MIN_RESIZE ? info->used : BTRFS_MIN_RESIZE;
}

/* Probes the main filesystem; on failure fails call and returns <0. */
static int probe(struct rpc_call *call, const char *method, const char *fs, struct main_fs_info *info)
{
	int r = main_fs_probe(fs, info);

	if (r == -ENOENT) {
		log_info("%s from %s: %s is not a mount point", method, rpc_call_peer(call), fs);
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "the main filesystem %s is not a mount point", fs);
	} else if (r == -EXDEV) {
		rpc_call_fail(call, RPC_FAILED_PRECONDITION, "the main filesystem %s spans several btrfs devices", fs);
	} else if (r < 0) {
		log_info("%s from %s: cannot read the size of %s: %s", method, rpc_call_peer(call), fs, strerror(-r));
		rpc_call_fail(call, RPC_INTERNAL, "cannot read the size of %s (%s): %s", fs, info->source,
			      strerror(-r));
	} else if (info->kind == MAIN_FS_OTHER) {
		log_info("%s from %s: %s is %s: not resizable", method, rpc_call_peer(call), fs, info->fstype);
		rpc_call_fail(call, RPC_FAILED_PRECONDITION,
			      "the main filesystem %s is %s: only ext4 and btrfs can be resized online", fs,
			      info->fstype);
		r = -EOPNOTSUPP;
	}
	return r;
}

void maitred_resize_filesystem(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__ResizeFilesystemRequest *req = (const VmTools__ResizeFilesystemRequest *)request;
	VmTools__ResizeFilesystemResponse resp = VM_TOOLS__RESIZE_FILESYSTEM_RESPONSE__INIT;
	struct vmtools_fs *m = userdata;
	struct maitred_resize *rs = &m->resize;
	const char *fs = maitred_main_fs(m);
	const char *peer = rpc_call_peer(call);
	struct main_fs_info info;
	uint64_t size = req->size;
	int r;

	if (rs->worker) {
		log_info("ResizeFilesystem from %s: %llu bytes: a resize to %llu bytes is still running", peer,
			 (unsigned long long)size, (unsigned long long)rs->target);
		resp.status = VM_TOOLS__RESIZE_FILESYSTEM_RESPONSE__RESIZE_STATUS__ALREADY_IN_PROGRESS;
		return rpc_call_reply(call, &resp.base);
	}
	if (probe(call, "ResizeFilesystem", fs, &info) < 0)
		return;
	/* The resize ioctl would wait for the thaw in its worker. */
	if (maitred_refuse_if_frozen(m->core, call))
		return;
	if (size > info.device_size)
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT,
				     "size %llu bytes is larger than the device %s (%llu bytes)",
				     (unsigned long long)size, info.source, (unsigned long long)info.device_size);
	if (info.kind == MAIN_FS_EXT4) {
		/* Whole blocks; the kernel cannot shrink a mounted ext4. */
		uint64_t count = size / info.block_size;
		if (count * info.block_size < info.size) {
			log_info("ResizeFilesystem from %s: %llu bytes: refused, ext4 cannot shrink while mounted",
				 peer, (unsigned long long)size);
			return rpc_call_fail(call, RPC_FAILED_PRECONDITION,
					     "ext4 cannot shrink while mounted: %llu bytes asked, %s is %llu bytes "
					     "(the minimum, see GetResizeBounds)",
					     (unsigned long long)size, fs, (unsigned long long)info.size);
		}
		rs->count = count;
		size = count * info.block_size;
	} else if (size < BTRFS_MIN_RESIZE) {
		log_info("ResizeFilesystem from %s: %llu bytes: refused, below btrfs's 256 MiB", peer,
			 (unsigned long long)size);
		return rpc_call_fail(call, RPC_FAILED_PRECONDITION,
				     "btrfs cannot be resized below 256 MiB: %llu bytes asked, the minimum for %s "
				     "is %llu bytes (see GetResizeBounds)",
				     (unsigned long long)size, fs, (unsigned long long)minimum_size(&info));
	} else if (size < info.used)
		return rpc_call_fail(call, RPC_FAILED_PRECONDITION,
				     "size %llu bytes is less than the %llu bytes in use on %s",
				     (unsigned long long)size, (unsigned long long)info.used, fs);

	rs->fd = open(fs, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rs->fd < 0) {
		r = -errno;
		resp.status = VM_TOOLS__RESIZE_FILESYSTEM_RESPONSE__RESIZE_STATUS__FAILED;
		log_info("ResizeFilesystem from %s: FAILED: open %s: %s", peer, fs, strerror(-r));
		return rpc_call_reply(call, &resp.base);
	}
	rs->kind = info.kind;
	rs->target = size;
	rs->started = now_usec();
	snprintf(rs->fs, sizeof(rs->fs), "%s", fs);
	r = worker_start(m->core->loop, resize_child, rs, rs->fd, on_resized, rs, &rs->worker);
	if (r < 0) {
		rs->fd = safe_close(rs->fd);
		resp.status = VM_TOOLS__RESIZE_FILESYSTEM_RESPONSE__RESIZE_STATUS__FAILED;
		log_info("ResizeFilesystem from %s: FAILED: could not start the resize: %s", peer, strerror(-r));
		return rpc_call_reply(call, &resp.base);
	}
	log_info("ResizeFilesystem from %s: STARTED: %s (%s on %s) from %llu to %llu bytes", peer, fs, info.fstype,
		 info.source, (unsigned long long)info.size, (unsigned long long)size);
	resp.status = VM_TOOLS__RESIZE_FILESYSTEM_RESPONSE__RESIZE_STATUS__STARTED;
	rpc_call_reply(call, &resp.base);
}

void maitred_get_resize_status(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	VmTools__GetResizeStatusResponse resp = VM_TOOLS__GET_RESIZE_STATUS_RESPONSE__INIT;
	struct vmtools_fs *m = userdata;
	struct main_fs_info info;

	if (probe(call, "GetResizeStatus", maitred_main_fs(m), &info) < 0)
		return;
	resp.resize_in_progress = m->resize.worker != NULL;
	resp.current_size = info.size;
	resp.target_size = m->resize.target;
	rpc_call_reply(call, &resp.base);
}

void maitred_get_resize_bounds(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	VmTools__GetResizeBoundsResponse resp = VM_TOOLS__GET_RESIZE_BOUNDS_RESPONSE__INIT;
	struct vmtools_fs *m = userdata;
	struct main_fs_info info;

	if (probe(call, "GetResizeBounds", maitred_main_fs(m), &info) < 0)
		return;
	resp.minimum_size = minimum_size(&info);
	rpc_call_reply(call, &resp.base);
}
