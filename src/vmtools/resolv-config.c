/* SetResolvConfig, and the resolv_config of ConfigureNetwork: validated
 * entries, written atomically to --resolv-conf (default /etc/resolv.conf).
 * A symlink there is followed one level (an image may point /etc/resolv.conf
 * at /run/resolv.conf); a read-only /etc makes us write /run/resolv.conf. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/escape.h"
#include "base/log.h"
#include "common.pb-c.h"
#include "guest-config.h"
#include "guest.pb-c.h"
#include "vmtools.h"

#define RUN_RESOLV_CONF "/run/resolv.conf"

int maitred_resolv_check(const VmTools__ResolvConfig *rc, char *err, size_t errlen)
{
	return guest_check_resolv(rc->nameservers, rc->n_nameservers, rc->search_domains, rc->n_search_domains, err,
				  errlen);
}

int maitred_resolv_write(const char *resolv_conf, const VmTools__ResolvConfig *rc, const char **ret_path)
{
	static char target[PATH_MAX];
	_cleanup_free_ char *text = NULL;
	const char *path = resolv_conf;
	ssize_t n;
	int r;

	r = guest_render_resolv(rc->nameservers, rc->n_nameservers, rc->search_domains, rc->n_search_domains, &text);
	if (r < 0)
		return r;
	n = readlink(path, target, sizeof(target) - 1);
	if (n > 0 && target[0] == '/') {
		target[n] = 0;
		path = target;
	}
	r = guest_write_file_atomic(path, text, strlen(text), 0644);
	if (r == -EROFS && strcmp(resolv_conf, "/etc/resolv.conf") == 0) {
		path = RUN_RESOLV_CONF;
		r = guest_write_file_atomic(path, text, strlen(text), 0644);
	}
	if (r < 0)
		return r;
	*ret_path = path;
	return 0;
}

void maitred_set_resolv_config(struct rpc_call *call, const ProtobufCMessage *request, void *userdata)
{
	const VmTools__SetResolvConfigRequest *req = (const VmTools__SetResolvConfigRequest *)request;
	VmTools__EmptyMessage resp = VM_TOOLS__EMPTY_MESSAGE__INIT;
	const struct maitred_options *opts = &((struct vmtools_net *)userdata)->core->opts;
	const char *path = NULL;
	char err[256];
	int r;

	if (!req->resolv_config) {
		log_info("SetResolvConfig from %s: INVALID_ARGUMENT: no resolv_config", rpc_call_peer(call));
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "resolv_config is missing");
	}
	if (maitred_resolv_check(req->resolv_config, err, sizeof(err)) < 0) {
		log_info("SetResolvConfig from %s: INVALID_ARGUMENT: %s", rpc_call_peer(call), ESCAPED(err));
		return rpc_call_fail(call, RPC_INVALID_ARGUMENT, "%s", err);
	}
	r = maitred_resolv_write(opts->resolv_conf, req->resolv_config, &path);
	if (r < 0) {
		log_info("SetResolvConfig from %s: could not write %s: %s", rpc_call_peer(call), opts->resolv_conf,
			 strerror(-r));
		return rpc_call_fail(call, RPC_INTERNAL, "could not write %s: %s", opts->resolv_conf, strerror(-r));
	}
	log_info("SetResolvConfig from %s: OK: %s has %zu nameserver(s), %zu search domain(s)", rpc_call_peer(call),
		 path, req->resolv_config->n_nameservers, req->resolv_config->n_search_domains);
	rpc_call_reply(call, &resp.base);
}
