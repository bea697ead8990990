#include "sidecar_proc.h"

#include <signal.h>
#include <sys/prctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef ES_SIDECAR_PATH
#error "ES_SIDECAR_PATH must name the es-sidecar binary"
#endif

static int counter;

int sidecar_proc_start(sidecar_proc *s, int port, const char *const *args) {
  char portarg[16];
  const char *argv[40];
  int n = 0, i;

  if (s->out[0] == '\0') {
    snprintf(s->out, sizeof(s->out), "/tmp/es-test-sidecar-%d-%d.out",
             (int)getpid(), ++counter);
    unlink(s->out);
  }
  snprintf(s->port_file, sizeof(s->port_file),
           "/tmp/es-test-sidecar-%d-%d.port", (int)getpid(), ++counter);
  unlink(s->port_file);
  snprintf(portarg, sizeof(portarg), "%d", port);
  argv[n++] = ES_SIDECAR_PATH;
  argv[n++] = "--port";
  argv[n++] = portarg;
  argv[n++] = "--port-file";
  argv[n++] = s->port_file;
  argv[n++] = "--out";
  argv[n++] = s->out;
  for (i = 0; args && args[i] && n < 38; i++)
    argv[n++] = args[i];
  argv[n] = NULL;
  s->pid = fork();
  if (s->pid < 0)
    return -1;
  if (s->pid == 0) {
    /* If the test dies, so does its sidecar (and ctest's pipe closes). */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    execv(ES_SIDECAR_PATH, (char **)argv);
    _exit(127);
  }
  for (i = 0; i < 500; i++) {
    FILE *f = fopen(s->port_file, "r");
    struct timespec ts = {0, 10 * 1000 * 1000};
    if (f != NULL) {
      int ok = fscanf(f, "%d", &s->port) == 1;
      fclose(f);
      if (ok)
        return 0;
    }
    if (waitpid(s->pid, NULL, WNOHANG) == s->pid) {
      s->pid = 0;
      return -1;
    }
    nanosleep(&ts, NULL);
  }
  return -1;
}

static void sidecar_proc_signal(sidecar_proc *s, int sig) {
  if (s->pid > 0) {
    kill(s->pid, sig);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
  }
}

void sidecar_proc_stop(sidecar_proc *s) {
  sidecar_proc_signal(s, SIGTERM);
}

void sidecar_proc_kill(sidecar_proc *s) {
  sidecar_proc_signal(s, SIGKILL);
}

int sidecar_proc_lines(const sidecar_proc *s) {
  FILE *f = fopen(s->out, "r");
  int n = 0, ch;
  if (f == NULL)
    return 0;
  while ((ch = fgetc(f)) != EOF)
    n += ch == '\n';
  fclose(f);
  return n;
}

void sidecar_proc_cleanup(sidecar_proc *s) {
  sidecar_proc_stop(s);
  unlink(s->out);
  unlink(s->port_file);
}
