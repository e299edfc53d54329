#include "status.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int files_grpc_code(int r)
{
	switch (r < 0 ? -r : r) {
	case 0: return FILES_GRPC_OK;
	case ENOENT: return FILES_GRPC_NOT_FOUND;
	case EEXIST: return FILES_GRPC_ALREADY_EXISTS;
	case EACCES:
	case EPERM: return FILES_GRPC_PERMISSION_DENIED;
	case ENOSPC:
	case EDQUOT:
	case EMFILE: return FILES_GRPC_RESOURCE_EXHAUSTED;
	case ENOTDIR:
	case EISDIR:
	case ENOTEMPTY:
	case EBUSY:
	case EROFS: return FILES_GRPC_FAILED_PRECONDITION;
	case EINVAL: return FILES_GRPC_INVALID_ARGUMENT;
	case FILES_EDIGEST: return FILES_GRPC_DATA_LOSS;
	default: return FILES_GRPC_INTERNAL;
	}
}

int files_fail(struct files_err *err, int r, const char *fmt, ...)
{
	if (err) {
		va_list ap;
		va_start(ap, fmt);
		(void)vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
		va_end(ap);
	}
	return r;
}

int files_fail_path(struct files_err *err, int r, const char *path)
{
	if (err && !err->msg[0])
		return files_fail(err, r, "%s: %s", path, strerror(r < 0 ? -r : r));
	return r;
}
