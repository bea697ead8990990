#include "nginx.h"

#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static const char *nginx_path(void) {
  static const char *paths[] = {"/usr/sbin/nginx", "/usr/bin/nginx",
                                "/usr/local/sbin/nginx"};
  size_t i;
  for (i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
    if (access(paths[i], X_OK) == 0)
      return paths[i];
  return NULL;
}

int free_port(void) {
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    if (fd >= 0)
      close(fd);
    return -1;
  }
  port = ntohs(a.sin_port);
  close(fd);
  return port;
}

static int can_connect(int port) {
  struct sockaddr_in a;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), ok;
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
  close(fd);
  return ok;
}

int nginx_start(nginx *n, const char *extra) {
  const char *bin = nginx_path();
  char conf[512], *argv[6];
  FILE *f;
  int attempt, i;

  memset(n, 0, sizeof(*n));
  if (bin == NULL)
    return 77;
  snprintf(n->dir, sizeof(n->dir), "/tmp/es-nginx-XXXXXX");
  if (mkdtemp(n->dir) == NULL)
    return -1;
  for (attempt = 0; attempt < 5; attempt++) {
    n->port = free_port();
    snprintf(conf, sizeof(conf), "%s/nginx.conf", n->dir);
    f = fopen(conf, "w");
    if (f == NULL)
      return -1;
    fprintf(f,
            "daemon off;\nmaster_process off;\nworker_processes 1;\n"
            "pid %s/nginx.pid;\nerror_log %s/error.log warn;\n"
            "events { worker_connections 1024; }\n"
            "http {\n  access_log off;\n"
            "  client_body_temp_path %s/body;\n  proxy_temp_path %s/proxy;\n"
            "  fastcgi_temp_path %s/fcgi;\n  uwsgi_temp_path %s/uwsgi;\n"
            "  scgi_temp_path %s/scgi;\n"
            "  %s\n  keepalive_timeout 60s;\n"
            "  client_body_buffer_size 1m;\n"
            "  %s\n"
            "  server {\n    listen 127.0.0.1:%d;\n"
            "    location / { return 204; }\n"
            "    location = /json { default_type application/json; "
            "return 200 '{\"ok\":true}'; }\n"
            "    location = /err { default_type application/json; "
            "return 500 '{\"errorCode\":\"ERR_X\",\"message\":\"m\"}'; }\n"
            "  }\n}\n",
            n->dir, n->dir, n->dir, n->dir, n->dir, n->dir, n->dir,
            extra && strstr(extra, "keepalive_requests")
                ? ""
                : "keepalive_requests 1000000;",
            extra ? extra : "", n->port);
    fclose(f);
    argv[0] = (char *)bin;
    argv[1] = "-c";
    argv[2] = conf;
    argv[3] = "-p";
    argv[4] = n->dir;
    argv[5] = NULL;
    if (posix_spawn(&n->pid, bin, NULL, NULL, argv, environ) != 0)
      return -1;
    for (i = 0; i < 200; i++) {
      int status;
      struct timespec ts = {0, 10 * 1000 * 1000};
      if (can_connect(n->port))
        return 0;
      if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
        n->pid = 0;
        break; /* it exited: port taken meanwhile? try another */
      }
      nanosleep(&ts, NULL);
    }
    if (n->pid != 0) {
      kill(n->pid, SIGKILL);
      waitpid(n->pid, NULL, 0);
      n->pid = 0;
    }
  }
  return -1;
}

void nginx_stop(nginx *n) {
  char cmd[600];
  if (n->pid > 0) {
    kill(n->pid, SIGTERM);
    waitpid(n->pid, NULL, 0);
    n->pid = 0;
  }
  if (n->dir[0] != '\0' && strncmp(n->dir, "/tmp/es-nginx-", 14) == 0) {
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", n->dir);
    if (system(cmd) != 0)
      fprintf(stderr, "could not remove %s\n", n->dir);
  }
}
