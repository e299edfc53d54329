/* A LaunchProcessRequest turned into what the supervisor starts, for the
 * RPC and for boot jobs alike. */
#include <stdio.h>
#include <string.h>

#include "base/strv.h"
#include "maitred.h"

int launch_job_from_request(const VmTools__LaunchProcessRequest *req, struct launch_job *ret)
{
	struct launch_job j = { 0 };

	/* protobuf-c's argv has no terminator: a copy of the pointers has. */
	j.argv = calloc(req->n_argv + 1, sizeof(char *));
	j.env = calloc(req->n_env + 1, sizeof(char *));
	if (!j.argv || !j.env)
		goto fail;
	memcpy(j.argv, req->argv, req->n_argv * sizeof(char *));
	for (size_t i = 0; i < req->n_env; i++) {
		const char *k = req->env[i]->key, *v = req->env[i]->value;
		if (asprintf(&j.env[i], "%s=%s", k ? k : "", v ? v : "") < 0) {
			j.env[i] = NULL;
			goto fail;
		}
	}
	j.spec = (struct job_spec){
		.argv = j.argv, .env = j.env, .respawn = req->respawn, .use_console = req->use_console
	};
	*ret = j;
	return 0;
fail:
	launch_job_clear(&j);
	return -ENOMEM;
}

void launch_job_clear(struct launch_job *j)
{
	free(j->argv); /* the strings belong to the request */
	strv_free(j->env);
	*j = (struct launch_job){ 0 };
}
