/* http_bench: the HTTP client alone against a real server, next to wrk in
 * the same run. Sends N POSTs of a 300-byte JSON body over C keep-alive
 * connections (pipelined, depth D) and prints requests per second and CPU
 * seconds per request; with --wrk, runs `wrk -t1 -cC` with the same body
 * against the same server and prints the ratio.
 *
 *   http_bench --nginx [-n N] [-c 1,8] [-d DEPTH] [--wrk]
 *   http_bench --endpoint http://127.0.0.1:PORT/path [...]
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "eventstore.h"
#include "http.h"
#include "body300.h"
#include "nginx.h"
#include "procstat.h"

typedef struct run {
  es__http_pool *pool;
  es__http_request *reqs;
  char head[256];
  long n, next, done, failed;
} run;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void submit_next(run *r);

static void on_done(es__http_request *req, int err,
                    const es__http_response *res) {
  run *r = req->data;
  r->done++;
  if (err != 0 || res->status >= 300)
    r->failed++;
  submit_next(r);
}

static void submit_next(run *r) {
  if (r->next < r->n) {
    es__http_request *q = &r->reqs[r->next++];
    q->head = r->head;
    q->head_len = strlen(r->head);
    q->body = body300;
    q->body_len = sizeof(body300) - 1;
    q->cb = on_done;
    q->data = r;
    es__http_pool_submit(r->pool, q);
  }
}

static int closed;
static void on_closed(void *a) {
  (void)a;
  closed = 1;
}

/* Returns requests per second; *cpu gets CPU seconds per request. */
static double bench_client(const char *url, const char *path, long n,
                           unsigned conns, unsigned depth, double *cpu,
                           long *failed) {
  uv_loop_t loop;
  es__http_pool_options o;
  run r;
  long i, window = (long)conns * depth * 2;
  double t0, c0, t1, c1;

  memset(&r, 0, sizeof(r));
  uv_loop_init(&loop);
  es__http_pool_options_init(&o);
  o.max_connections = conns;
  o.pipeline_depth = depth;
  if (es__http_pool_new(&loop, url, &o, &r.pool) != 0) {
    fprintf(stderr, "bad endpoint %s\n", url);
    exit(2);
  }
  snprintf(r.head, sizeof(r.head),
           "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
           "Content-Length: %zu\r\n\r\n",
           path, es__http_pool_host(r.pool), sizeof(body300) - 1);
  r.n = n;
  r.reqs = calloc((size_t)n, sizeof(*r.reqs));
  t0 = now_s();
  c0 = procstat_cpu_s(RUSAGE_SELF);
  for (i = 0; i < window; i++)
    submit_next(&r);
  while (r.done < n)
    uv_run(&loop, UV_RUN_ONCE);
  t1 = now_s();
  c1 = procstat_cpu_s(RUSAGE_SELF);
  closed = 0;
  es__http_pool_close(r.pool, ES_ECANCELED, on_closed, NULL);
  while (!closed)
    uv_run(&loop, UV_RUN_ONCE);
  uv_loop_close(&loop);
  free(r.reqs);
  *cpu = (c1 - c0) / (double)n;
  *failed = r.failed;
  return (double)n / (t1 - t0);
}

/* Runs wrk; returns requests per second, *cpu gets wrk's CPU seconds per
 * request (from wait4). */
static double bench_wrk(const char *url, unsigned conns, int secs,
                        double *cpu) {
  char script[] = "/tmp/es-bench-wrk-XXXXXX.lua", cstr[16], dstr[16], line[512];
  int fd = mkstemps(script, 4), pipefd[2], status;
  FILE *f;
  pid_t pid;
  struct rusage ru;
  double rps = 0, total = 0;

  if (fd < 0)
    return 0;
  f = fdopen(fd, "w");
  fprintf(f,
          "wrk.method = \"POST\"\nwrk.body = '%s'\n"
          "wrk.headers[\"Content-Type\"] = \"application/json\"\n",
          body300);
  fclose(f);
  snprintf(cstr, sizeof(cstr), "-c%u", conns);
  snprintf(dstr, sizeof(dstr), "-d%ds", secs);
  if (pipe(pipefd) != 0)
    return 0;
  pid = fork();
  if (pid == 0) {
    dup2(pipefd[1], 1);
    close(pipefd[0]);
    execlp("wrk", "wrk", "-t1", cstr, dstr, "-s", script, url, (char *)NULL);
    _exit(127);
  }
  close(pipefd[1]);
  f = fdopen(pipefd[0], "r");
  while (fgets(line, sizeof(line), f)) {
    double v;
    if (sscanf(line, " %lf requests in", &v) == 1)
      total = v;
    if (sscanf(line, "Requests/sec: %lf", &v) == 1)
      rps = v;
  }
  fclose(f);
  wait4(pid, &status, 0, &ru);
  unlink(script);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    fprintf(stderr, "wrk failed (is it installed? scripts/install-deps "
                    "--bench)\n");
    return 0;
  }
  *cpu = total > 0 ? ((double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                      (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6) /
                         total
                   : 0;
  return rps;
}

int main(int argc, char **argv) {
  const char *endpoint = NULL, *conns_s = "1,8";
  char url[256], path[256] = "/v1.0/bindings/eventstore", wurl[512];
  long n = 200000;
  unsigned depth = 16;
  int use_nginx = 0, use_wrk = 0, i;
  nginx ngx;

  signal(SIGPIPE, SIG_IGN);
  for (i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--nginx") == 0)
      use_nginx = 1;
    else if (strcmp(argv[i], "--wrk") == 0)
      use_wrk = 1;
    else if (strcmp(argv[i], "--endpoint") == 0 && i + 1 < argc)
      endpoint = argv[++i];
    else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
      n = atol(argv[++i]);
    else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
      conns_s = argv[++i];
    else if (strcmp(argv[i], "-d") == 0 && i + 1 < argc)
      depth = (unsigned)atoi(argv[++i]);
    else {
      fprintf(stderr, "usage: http_bench (--nginx | --endpoint URL) [-n N] "
                      "[-c 1,8] [-d DEPTH] [--wrk]\n");
      return 2;
    }
  }
  if (use_nginx) {
    if (nginx_start(&ngx, NULL) != 0) {
      fprintf(stderr, "nginx not available (scripts/install-deps --bench)\n");
      return 1;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ngx.port);
  } else if (endpoint != NULL) {
    const char *p = strchr(endpoint + 7, '/');
    if (p) {
      snprintf(path, sizeof(path), "%s", p);
      snprintf(url, sizeof(url), "%.*s", (int)(p - endpoint), endpoint);
    } else {
      snprintf(url, sizeof(url), "%s", endpoint);
    }
  } else {
    fprintf(stderr, "need --nginx or --endpoint\n");
    return 2;
  }
  snprintf(wurl, sizeof(wurl), "%s%s", url, path);
  printf("| connections | client req/s | client CPU us/req |%s\n",
         use_wrk ? " wrk req/s | wrk CPU us/req | ratio (client/wrk) |" : "");
  printf("|---|---|---|%s\n", use_wrk ? "---|---|---|" : "");
  for (const char *c = conns_s; c && *c;) {
    unsigned conns = (unsigned)atoi(c);
    double cpu = 0, wcpu = 0, rps, wrps = 0;
    long failed = 0;
    rps = bench_client(url, path, n, conns, depth, &cpu, &failed);
    if (use_wrk)
      wrps = bench_wrk(wurl, conns, 4, &wcpu);
    printf("| %u (depth %u) | %.0f | %.2f |", conns, depth, rps, cpu * 1e6);
    if (use_wrk)
      printf(" %.0f | %.2f | %.2f |", wrps, wcpu * 1e6,
             wrps > 0 ? rps / wrps : 0);
    printf("\n");
    if (failed)
      fprintf(stderr, "%ld requests failed\n", failed);
    fflush(stdout);
    c = strchr(c, ',');
    if (c)
      c++;
  }
  if (use_nginx)
    nginx_stop(&ngx);
  return 0;
}
