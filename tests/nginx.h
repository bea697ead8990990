/* Starts Debian's nginx on a free loopback port with a temporary
 * configuration, for tests and benchmarks against a real server nobody here
 * wrote. */
#ifndef ES_TEST_NGINX_H
#define ES_TEST_NGINX_H

#include <sys/types.h>

typedef struct nginx {
  char dir[256];
  int port;
  pid_t pid;
} nginx;

/* Returns 0 when nginx runs and accepts connections, 77 when nginx is not
 * installed (the test is skipped), -1 on failure. extra goes inside the
 * http {} block (e.g. "keepalive_requests 50;"). */
int nginx_start(nginx *n, const char *extra);
void nginx_stop(nginx *n);
/* A free loopback TCP port (bound then released). */
int free_port(void);

#endif
