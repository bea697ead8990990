/* es-sidecar as a separate process, for tests that kill and restart it or
 * start it late. */
#ifndef ES_TEST_SIDECAR_PROC_H
#define ES_TEST_SIDECAR_PROC_H

#include <sys/types.h>

typedef struct sidecar_proc {
  pid_t pid;
  int port;
  char out[128]; /* its --out file */
  char port_file[128];
} sidecar_proc;

/* Starts es-sidecar with the extra arguments (NULL-terminated), on `port`
 * (0: a free one). Waits until it listens. Returns 0 or -1. */
int sidecar_proc_start(sidecar_proc *s, int port, const char *const *args);
/* SIGTERM and wait (its counters go to the test's stderr). */
void sidecar_proc_stop(sidecar_proc *s);
/* SIGKILL and wait: nothing is flushed or answered. */
void sidecar_proc_kill(sidecar_proc *s);
/* Lines in its --out file. */
int sidecar_proc_lines(const sidecar_proc *s);
/* Removes its files. */
void sidecar_proc_cleanup(sidecar_proc *s);

#endif
