/* What this process uses, for the tests and the benchmarks that report it. */
#ifndef ES_TEST_PROCSTAT_H
#define ES_TEST_PROCSTAT_H

#include <sys/resource.h>

/* User + system CPU seconds of who (RUSAGE_SELF, RUSAGE_THREAD, ...). */
double procstat_cpu_s(int who);
/* Resident set size now, from /proc/self/statm (0 if unreadable). */
long procstat_rss_kb(void);
/* The largest resident set size so far. */
long procstat_peak_rss_kb(void);

#endif
