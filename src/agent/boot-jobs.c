/* Runs the boot jobs in order before the server starts: a wait_for_exit job
 * holds back the jobs after it and the server, as in the original; bad
 * files are logged with file:line and skipped. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>

#include "base/log.h"
#include "base/read-file.h"
#include "base/wait-status.h"
#include "init/jobs.h"
#include "init/textproto.h"
#include "agent.h"

#define JOB_FILE_MAX (1024 * 1024)

struct boot_jobs {
	struct maitred *m;
	struct boot_jobs **slot;
	char **paths;
	size_t n, next;
	void (*done)(void *userdata);
	void *userdata;
};

static void boot_jobs_next(struct boot_jobs *b);

static const char *base_name(const char *p)
{
	const char *s = strrchr(p, '/');
	return s ? s + 1 : p;
}

static void job_exited(pid_t pid, int status, void *userdata)
{
	struct boot_jobs *b = userdata;
	const char *name = base_name(b->paths[b->next - 1]);

	log_info("Job %s %s", name, wait_status_str(status, (char[WAIT_STATUS_STR_MAX]){ 0 }));
	boot_jobs_next(b);
}

/* A job file whole; -EFBIG past JOB_FILE_MAX. */
static int read_file(const char *path, char **ret, size_t *ret_len)
{
	char *text = NULL;
	int r = read_file_head(path, JOB_FILE_MAX, &text, ret_len);

	if (r == 1) {
		free(text);
		return -EFBIG;
	}
	if (r < 0)
		return r;
	*ret = text;
	return 0;
}

/* Starts one job; returns true when the caller must wait for it. */
static bool boot_jobs_start(struct boot_jobs *b, const char *path)
{
	VmTools__LaunchProcessRequest *req = NULL;
	struct spawn_error se;
	struct textproto_error err;
	char *text = NULL;
	size_t len = 0;
	pid_t pid;
	int r;

	r = read_file(path, &text, &len);
	if (r < 0) {
		log_error_errno(r, "Unable to read file %s", path);
		return false;
	}
	r = textproto_parse_launch(text, len, &req, &err);
	free(text);
	if (r < 0) {
		log_error("%s:%u: %s; job skipped", path, err.line, err.message);
		return false;
	}
	bool wait = false;
	if (req->n_argv == 0)
		log_error("No argv in proto file %s; job skipped", path);
	else if (req->respawn && req->wait_for_exit)
		log_error("%s: respawn and wait_for_exit cannot both be true; job skipped", path);
	else {
		struct launch_job job;
		r = launch_job_from_request(req, &job);
		if (r == 0) {
			r = supervisor_launch(b->m->supervisor, &job.spec, req->wait_for_exit ? job_exited : NULL, b,
					      &pid, &se);
			launch_job_clear(&job);
		}
		if (r == 0) {
			log_info("Successfully launched job: %s (pid %d)", base_name(path), (int)pid);
			wait = req->wait_for_exit;
		} else if (r == SPAWN_FAILED)
			log_error("Failed to launch job: %s: %s: %s", base_name(path), spawn_stage_name(se.stage),
				  strerror(se.error));
		else
			log_error_errno(r, "Failed to launch job: %s", base_name(path));
	}
	vm_tools__launch_process_request__free_unpacked(req, NULL);
	return wait;
}

static void boot_jobs_next(struct boot_jobs *b)
{
	/* Stopping (or powering off) while a job was waited for: start no more. */
	if (maitred_state_is_ending(b->m->state) && b->next < b->n) {
		log_info("stopping: %zu boot jobs not started", b->n - b->next);
		b->next = b->n;
	}
	while (b->next < b->n)
		if (boot_jobs_start(b, b->paths[b->next++]))
			return; /* resumed by job_exited */
	void (*done)(void *) = b->done;
	void *userdata = b->userdata;
	maitred_boot_jobs_free(b->slot);
	done(userdata);
}

void maitred_boot_jobs_free(struct boot_jobs **slot)
{
	struct boot_jobs *b = TAKE_PTR(*slot);
	if (b) {
		jobs_list_free(b->paths);
		free(b);
	}
}

void maitred_run_boot_jobs(struct maitred *m, const char *dir, struct boot_jobs **slot, void (*done)(void *userdata),
			   void *userdata)
{
	struct boot_jobs *b = calloc(1, sizeof(*b));
	int r;

	if (!b) {
		log_error("cannot run the boot jobs in %s: out of memory; serving without them", dir);
		done(userdata);
		return;
	}
	*b = (struct boot_jobs){ .m = m, .slot = slot, .done = done, .userdata = userdata };
	*slot = b;
	r = jobs_list(dir, &b->paths, &b->n);
	if (r < 0) {
		log_error_errno(r, "cannot list boot jobs in %s", dir);
		b->paths = NULL;
		b->n = 0;
	}
	boot_jobs_next(b);
}
