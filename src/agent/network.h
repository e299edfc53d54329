/* ConfigureNetwork's work, shared by vm_tools.Maitred/ConfigureNetwork and
 * valet.v1.Snapshot/Restored (its network field): IPv4 address, netmask
 * and default route on the interface through rtnetlink, loopback up, and
 * resolv.conf if the request has one. What was set is remembered in the
 * core (struct maitred's net) for OnHostNetworkChanged. */
#pragma once

#include <stddef.h>

#include "guest.pb-c.h"
#include "maitred.h"

/* A refusal or failure: the gRPC status code and its message. */
struct maitred_net_error {
	int code;
	char message[320];
};

/* The checks alone (maitred_network_configure() makes them too): 0, or
 * -EINVAL / -EBUSY (frozen) with *err filled. For a caller that must know
 * before it changes anything else. */
int maitred_network_check(const struct maitred *m, const VmTools__NetworkConfigRequest *req,
			  struct maitred_net_error *err);

/* Checks req, then applies it: nothing changes when the check fails
 * (INVALID_ARGUMENT, or FAILED_PRECONDITION for a resolv_config while the
 * file systems are frozen). -EINVAL or another -errno with *err filled.
 * On success *ret_resolv_path is where resolv.conf was written (NULL when
 * the request had none) and summary says what was set. */
int maitred_network_configure(struct maitred *m, const VmTools__NetworkConfigRequest *req,
			      const char **ret_resolv_path, char *summary, size_t summary_len,
			      struct maitred_net_error *err);

/* resolv.conf for SetResolvConfig and ConfigureNetwork: check (message in
 * err) and write to path (--resolv-conf); *ret_path is where it went. */
int maitred_resolv_check(const VmTools__ResolvConfig *rc, char *err, size_t errlen);
int maitred_resolv_write(const char *path, const VmTools__ResolvConfig *rc, const char **ret_path);
