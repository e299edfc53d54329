/* The agent: maitred's lifecycle (lifecycle.h) bound to the loop, the
 * server and the services registered with it. For main.c and the agent's
 * own files; a service sees only struct maitred (maitred.h) and registers
 * its method tables here. */
#pragma once

#include "base/notify.h"
#include "maitred.h"
#include "rpc/server.h"

/* Told once, when maitred begins its orderly end (a stop, or PID 1's
 * power-off), before the server stops accepting: a call that would
 * otherwise never end (a health Watch) ends itself here, so that the stop
 * does not wait for it. */
struct maitred_stop_hook {
	void (*fn)(void *userdata);
	void *userdata;
	struct maitred_stop_hook *next;
};

struct agent {
	struct maitred core; /* what the services see */
	struct rpc_server *server;
	/* The method tables served, linked through next (rpc/server-session.h). */
	struct rpc_service *services, *services_last;
	struct maitred_stop_hook *stop_hooks; /* maitred_add_stop_hook() */
	/* The names switched off (maitred_disable()), which the tables'
	 * disabled arrays point at. */
	char **switch_names;
	size_t n_switch_names;
	bool pid1;
	/* Not PID 1, but a systemd service: Shutdown powers the system off
	 * through systemd. */
	bool systemd_service;
	struct notify notify;		      /* the service manager, if any */
	struct vm_ready *vm_ready;	      /* while VmReady is being sent */
	struct boot_jobs *boot_jobs;	      /* while jobs are still being run */
	struct power_off_sequence *power_off; /* PID 1's power-off, once begun */
	char vm_ready_default[32];
	uint64_t started_usec, started_user_usec, started_sys_usec; /* for the "Serving after" log line */
};

/* Adds one method table (its next is set here) to what the server serves,
 * before the server is created (rpc_server_config_init() takes
 * a->services). -EEXIST when one of its paths is registered already:
 * nothing is added then. svc must outlive the server. */
int maitred_add_service(struct agent *a, struct rpc_service *svc);

/* h (which must outlive the agent's loop) is told when the orderly end
 * begins. */
void maitred_add_stop_hook(struct agent *a, struct maitred_stop_hook *h);

/* Method switches (switches.c), once every service is registered and
 * before the server is created. name is a service ("vm_tools.Maitred") or
 * one method ("vm_tools.Maitred/LaunchProcess"): its calls are refused with
 * PERMISSION_DENIED from their headers. -ENOENT when it names nothing
 * registered (a typo must not leave a method served), -ENOMEM. */
int maitred_disable(struct agent *a, const char *name);
void maitred_switches_free(struct agent *a);

/* Where the config file is read when --config is not given; a missing one
 * is fine. Not below /etc/maitred, where every file is a boot job. */
#define MAITRED_CONFIG_DEFAULT "/etc/valet/maitred.conf"

struct maitred_config_error {
	unsigned line; /* 1-based; 0: the file as a whole */
	char message[256];
};

/* The config file: one "disable NAME" per line, '#' to the end of a line
 * a comment, blank lines. Every line is applied (maitred_disable()) as it
 * is read; stops at the first bad one, filling *err: -EINVAL for a line
 * that is not "disable NAME", -ENOENT for a name that matches nothing.
 * maitred_config_load() reads the file first (-ENOENT when missing, with
 * err->line 0). */
int maitred_config_parse(struct agent *a, const char *text, struct maitred_config_error *err);
int maitred_config_load(struct agent *a, const char *path, struct maitred_config_error *err);

/* Feeds the lifecycle (lifecycle.h) one input and carries out what it
 * asks. call is the Shutdown call with MAITRED_POWER_OFF (or NULL). The
 * orderly stop when not PID 1 (MAITRED_STOP: Shutdown RPC, SIGTERM) stops
 * accepting, finishes the calls in flight, then leaves the loop. */
void maitred_input(struct agent *a, enum maitred_input in, struct rpc_call *call);

/* vm_tools.Maitred/Shutdown, the host asking the agent to end: as PID 1 a
 * power-off, under systemd the system's power-off, else a stop. userdata
 * is the struct agent. */
void maitred_shutdown(struct rpc_call *call, const ProtobufCMessage *request, void *userdata);
/* Frees what the lifecycle still holds once the loop has ended. */
void maitred_agent_free(struct agent *a);

/* Runs the boot jobs in dir, then calls done (maybe at once, maybe from
 * the loop once the last wait_for_exit job has ended). Always calls done:
 * what fails on the way (no memory, a bad file, a job that cannot start) is
 * logged and skipped, so that the agent still serves. *slot holds the run
 * while it lasts, NULL again before done is called. */
void maitred_run_boot_jobs(struct maitred *m, const char *dir, struct boot_jobs **slot, void (*done)(void *userdata),
			   void *userdata);
/* Drops the jobs not started yet (maitred stopped first). */
void maitred_boot_jobs_free(struct boot_jobs **slot);

/* PID 1's power-off sequence (MAITRED_DO_POWER_OFF): stop respawning and
 * serving, SIGTERM everyone, wait up to the grace period, SIGKILL the rest,
 * unmount, answer call (if any), then done(userdata), with which the
 * lifecycle moves on (MAITRED_POWER_OFF_DONE) so that main powers off.
 * -ENOMEM when it cannot start (nothing done, call not answered). */
int maitred_power_off_start(struct maitred *m, struct rpc_server *server, struct rpc_call *call,
			    void (*done)(void *userdata), void *userdata, struct power_off_sequence **slot);
void maitred_power_off_free(struct power_off_sequence **slot);

/* Re-executes maitred once with glibc's tcache off (its idle footprint
 * after a burst), leaving the environment as it found it. */
void maitred_tune_malloc(char **argv);

/* Tells the host the VM is ready (VmReady), if a target is set, retrying
 * with backoff until it answers or --vm-ready-timeout has passed. *slot
 * holds the attempts while they last. */
void maitred_notify_ready(struct maitred *m, struct vm_ready **slot);
void maitred_vm_ready_free(struct vm_ready **slot);
