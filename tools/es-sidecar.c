/* es-sidecar: a small local stand-in for daprd that speaks the subset of the
 * Dapr HTTP API libeventstore uses (output bindings, pub/sub, bulk publish,
 * metadata, health), records every event it receives as one JSON line, and
 * injects faults on request. For development, demos and tests; it listens
 * on loopback unless told otherwise.
 *
 * Built on libuv, llhttp (request mode) and cJSON only. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <llhttp.h>
#include <uv.h>

#include "sidecar.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: es-sidecar [options]\n"
          "  --port N              TCP port on the listen address (default "
          "3500; 0 picks a free one)\n"
          "  --host ADDR           listen address (default 127.0.0.1)\n"
          "  --unix PATH           listen on a Unix socket instead\n"
          "  --port-file FILE      write the bound port there once listening\n"
          "  --components a,b      registered components (default "
          "eventstore,pubsub)\n"
          "  --token T             require header dapr-api-token: T (401 "
          "otherwise)\n"
          "  --out FILE            append received events there (default "
          "stdout)\n"
          "  --fail-every N        answer every N-th event with a 500\n"
          "  --close-every N       drop the connection at every N-th event "
          "(after recording it)\n"
          "  --delay-ms D          answer each request D ms late\n"
          "  --retry-after-every N answer every N-th event with 429 and "
          "Retry-After\n"
          "  --retry-after-secs S  the Retry-After value (default 1)\n"
          "  --keepalive-max N     Connection: close after N requests on a "
          "connection\n"
          "  --chunked             send bodies chunked (successes become 200 "
          "{})\n"
          "  --bulk-fail-every N   fail every N-th entry of bulk requests\n"
          "  --max-body BYTES      largest request body accepted (default 16 "
          "MiB)\n"
          "  --print FILE          print a recorded output file readably and "
          "exit\n"
          "On SIGINT or SIGTERM it prints its counters as JSON to stderr and "
          "exits 0.\n");
}

/* --print FILE: one readable line per recorded event. */
static int print_records(const char *path) {
  static const char *std[] = {
      "application_name", "created_timestamp", "workflow_type", "workflow_id",
      "workflow_run_id",  "workflow_state",    "activity_type", "activity_id",
      "attempt",          "topic_name"};
  FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  long n = 0;

  if (f == NULL) {
    fprintf(stderr, "es-sidecar: cannot open %s\n", path);
    return 1;
  }
  while (getline(&line, &cap, f) > 0) {
    cJSON *j = cJSON_Parse(line), *body, *md, *item;
    const char *kind, *where;
    char custom[1024] = "";
    size_t used = 0, k;
    if (j == NULL)
      continue;
    kind = cJSON_GetStringValue(cJSON_GetObjectItem(j, "kind"));
    where = cJSON_GetStringValue(cJSON_GetObjectItem(j, "name"));
    if (where == NULL)
      where = cJSON_GetStringValue(cJSON_GetObjectItem(j, "topic"));
    body = cJSON_GetObjectItem(j, "body");
    /* CloudEvents carry the event in "data" */
    if (cJSON_GetObjectItem(body, "specversion") &&
        cJSON_IsObject(cJSON_GetObjectItem(body, "data")))
      body = cJSON_GetObjectItem(body, "data");
    md = cJSON_GetObjectItem(body, "metadata");
    cJSON_ArrayForEach(item, md) {
      int is_std = 0;
      char *v;
      for (k = 0; k < sizeof(std) / sizeof(std[0]); k++)
        is_std |= strcmp(item->string, std[k]) == 0;
      if (is_std)
        continue;
      v = cJSON_PrintUnformatted(item);
      used += (size_t)snprintf(
          custom + used, used < sizeof(custom) ? sizeof(custom) - used : 0,
          "%s%s=%s", used ? " " : "", item->string, v ? v : "?");
      if (used >= sizeof(custom))
        used = sizeof(custom) - 1;
      free(v);
    }
    printf("%-8s %-22s %s/%s%s%s\n", kind ? kind : "?", where ? where : "?",
           cJSON_GetStringValue(cJSON_GetObjectItem(body, "event_type"))
               ? cJSON_GetStringValue(cJSON_GetObjectItem(body, "event_type"))
               : "?",
           cJSON_GetStringValue(cJSON_GetObjectItem(body, "event_name"))
               ? cJSON_GetStringValue(cJSON_GetObjectItem(body, "event_name"))
               : "?",
           used ? "  " : "", custom);
    cJSON_Delete(j);
    n++;
  }
  free(line);
  if (f != stdin)
    fclose(f);
  printf("(%ld events)\n", n);
  return 0;
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out) {
  char *end;
  unsigned long v;

  if (s == NULL || *s == '\0')
    return -1;
  errno = 0;
  v = strtoul(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max || s[0] == '-')
    return -1;
  *out = v;
  return 0;
}

int main(int argc, char **argv) {
  es_sidecar_options o;
  const char *port_file = NULL;
  uv_loop_t loop;
  es_sidecar *sc;
  int i, rc;

  signal(SIGPIPE, SIG_IGN);
  es_sidecar_options_init(&o);
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    unsigned long n;
#define NEED_UINT(max, field)                                                  \
  do {                                                                         \
    if (parse_uint(v, (max), &n) != 0) {                                       \
      fprintf(stderr, "es-sidecar: %s needs a number\n", a);                   \
      return 2;                                                                \
    }                                                                          \
    (field) = n;                                                               \
    i++;                                                                       \
  } while (0)
    if (strcmp(a, "--port") == 0)
      NEED_UINT(65535, o.port);
    else if (strcmp(a, "--host") == 0 && v)
      o.host = v, i++;
    else if (strcmp(a, "--unix") == 0 && v)
      o.unix_path = v, i++;
    else if (strcmp(a, "--port-file") == 0 && v)
      port_file = v, i++;
    else if (strcmp(a, "--components") == 0 && v)
      o.components = v, i++;
    else if (strcmp(a, "--token") == 0 && v)
      o.token = v, i++;
    else if (strcmp(a, "--out") == 0 && v)
      o.out_path = v, i++;
    else if (strcmp(a, "--fail-every") == 0)
      NEED_UINT(1000000000, o.fail_every);
    else if (strcmp(a, "--close-every") == 0)
      NEED_UINT(1000000000, o.close_every);
    else if (strcmp(a, "--delay-ms") == 0)
      NEED_UINT(3600000, o.delay_ms);
    else if (strcmp(a, "--retry-after-every") == 0)
      NEED_UINT(1000000000, o.retry_after_every);
    else if (strcmp(a, "--retry-after-secs") == 0)
      NEED_UINT(3600, o.retry_after_secs);
    else if (strcmp(a, "--keepalive-max") == 0)
      NEED_UINT(1000000000, o.keepalive_max);
    else if (strcmp(a, "--bulk-fail-every") == 0)
      NEED_UINT(1000000000, o.bulk_fail_every);
    else if (strcmp(a, "--max-body") == 0)
      NEED_UINT(1UL << 30, o.max_body);
    else if (strcmp(a, "--chunked") == 0)
      o.chunked = 1;
    else if (strcmp(a, "--print") == 0 && v)
      return print_records(v);
    else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "es-sidecar: unknown or incomplete option %s\n", a);
      usage(stderr);
      return 2;
    }
#undef NEED_UINT
  }

  uv_loop_init(&loop);
  rc = es_sidecar_start(&loop, &o, &sc);
  if (rc != 0) {
    fprintf(stderr, "es-sidecar: cannot listen: %s\n", uv_strerror(rc));
    uv_loop_close(&loop);
    return 1;
  }
  if (o.unix_path)
    fprintf(stderr, "es-sidecar: listening on unix:%s\n", o.unix_path);
  else
    fprintf(stderr, "es-sidecar: listening on http://%s:%d\n", o.host,
            es_sidecar_port(sc));
  if (port_file != NULL) {
    /* Written whole under a temporary name, then renamed: a reader polling
     * for the file never sees half a number. */
    char tmp[4096];
    FILE *f;
    snprintf(tmp, sizeof(tmp), "%s.tmp", port_file);
    f = fopen(tmp, "we");
    if (f == NULL || fprintf(f, "%d\n", es_sidecar_port(sc)) < 0 ||
        fclose(f) != 0 || rename(tmp, port_file) != 0) {
      fprintf(stderr, "es-sidecar: cannot write %s\n", port_file);
      return 1;
    }
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  es_sidecar_print_counters(sc, stderr);
  es_sidecar_free(sc);
  rc = uv_loop_close(&loop);
  return rc == 0 ? 0 : 1;
}
