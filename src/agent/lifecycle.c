/* maitred's lifecycle: the pure transition function (see lifecycle.h). */
#include "lifecycle.h"

#include <stddef.h>

const char *maitred_state_name(enum maitred_state s)
{
	static const char *const names[] = {
		[MAITRED_BOOTING] = "booting",	 [MAITRED_BOOT_JOBS] = "boot-jobs",
		[MAITRED_SERVING] = "serving",	 [MAITRED_STOPPING] = "stopping",
		[MAITRED_POWERING_OFF] = "powering-off", [MAITRED_FAILED] = "failed",
		[MAITRED_DONE] = "done",
	};
	return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "?";
}

static unsigned enter(enum maitred_state *state, enum maitred_state next, unsigned actions)
{
	*state = next;
	return actions;
}

unsigned maitred_lifecycle_step(enum maitred_state *state, enum maitred_input in)
{
	enum maitred_state s = *state;
	int running = s == MAITRED_BOOTING || s == MAITRED_BOOT_JOBS || s == MAITRED_SERVING;

	switch (in) {
	case MAITRED_RUN_BOOT_JOBS:
		return s == MAITRED_BOOTING ? enter(state, MAITRED_BOOT_JOBS, MAITRED_DO_RUN_BOOT_JOBS) : 0;
	case MAITRED_BOOT_JOBS_DONE:
		return s == MAITRED_BOOTING || s == MAITRED_BOOT_JOBS ? enter(state, MAITRED_SERVING, MAITRED_DO_SERVE)
								      : 0;
	case MAITRED_LISTEN_FAILED:
		return s == MAITRED_SERVING ? enter(state, MAITRED_FAILED, MAITRED_DO_EXIT_FAILED) : 0;
	case MAITRED_STOP: return running ? enter(state, MAITRED_STOPPING, MAITRED_DO_STOP) : 0;
	case MAITRED_POWER_OFF:
		if (running)
			return enter(state, MAITRED_POWERING_OFF, MAITRED_DO_POWER_OFF);
		return s == MAITRED_POWERING_OFF ? MAITRED_DO_REFUSE_SHUTDOWN : 0;
	case MAITRED_SERVER_STOPPED:
		return s == MAITRED_STOPPING ? enter(state, MAITRED_DONE, MAITRED_DO_EXIT) : 0;
	case MAITRED_POWER_OFF_DONE:
		return s == MAITRED_POWERING_OFF ? enter(state, MAITRED_DONE, MAITRED_DO_EXIT) : 0;
	}
	return 0;
}
