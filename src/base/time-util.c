#include "time-util.h"

#include <sys/resource.h>
#include <time.h>

uint64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * USEC_PER_SEC + (uint64_t)ts.tv_nsec / 1000;
}

static uint64_t timeval_usec(const struct timeval *tv)
{
	return (uint64_t)tv->tv_sec * USEC_PER_SEC + (uint64_t)tv->tv_usec;
}

void cpu_usec(uint64_t *ret_user, uint64_t *ret_system)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	*ret_user = timeval_usec(&ru.ru_utime);
	*ret_system = timeval_usec(&ru.ru_stime);
}
