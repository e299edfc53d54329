#include "target.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "base/macro.h"

int vsh_target_prepare(const VmTools__Vsh__SetupConnectionRequest *req, const struct vsh_policy *policy,
		       struct exec_target *t, char *err, size_t err_size)
{
	_cleanup_free_ struct exec_env_var *env = NULL;

	*t = (struct exec_target){ 0 };
	if (req->n_env) {
		env = calloc(req->n_env, sizeof(*env));
		if (!env) {
			snprintf(err, err_size, "out of memory");
			return -ENOMEM;
		}
		for (size_t i = 0; i < req->n_env; i++)
			env[i] = (struct exec_env_var){ req->env[i]->key, req->env[i]->value };
	}
	struct exec_request x = {
		.user = req->user,
		.default_user = policy->default_user,
		.allow_user_switch = policy->allow_user_switch,
		.argv = req->argv,
		.n_argv = req->n_argv,
		.env = env,
		.n_env = req->n_env,
		/* The original sets TERM always, and the user's entry wins. */
		.term = "linux",
		.cwd = req->cwd,
		.cwd_pid = req->cwd_pid,
	};
	return exec_target_prepare(&x, t, err, err_size);
}
