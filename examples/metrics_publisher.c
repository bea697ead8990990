/* The guide's "standalone event publisher": collect real metrics of this
 * machine (load average, memory, uptime, hostname) every interval and
 * publish them fire-and-forget (no callback: failures are logged by the
 * library and counted). Exits 1 when any publish failed.
 *
 *   metrics_publisher [--interval-ms MS] [--count N]   (defaults 200, 3) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include <uv.h>

#include "eventstore.h"

typedef struct app {
  es_client *client;
  uv_timer_t timer;
  int left;
  int refused;
  es_stats final;
} app;

static cJSON *collect_metrics(void) {
  cJSON *m = cJSON_CreateObject();
  struct sysinfo si;
  double load[3];
  char host[256];

  if (getloadavg(load, 3) == 3) {
    cJSON_AddNumberToObject(m, "load1", load[0]);
    cJSON_AddNumberToObject(m, "load5", load[1]);
    cJSON_AddNumberToObject(m, "load15", load[2]);
  }
  if (sysinfo(&si) == 0) {
    cJSON_AddNumberToObject(m, "uptime_s", (double)si.uptime);
    cJSON_AddNumberToObject(m, "mem_total_bytes",
                            (double)si.totalram * si.mem_unit);
    cJSON_AddNumberToObject(m, "mem_free_bytes",
                            (double)si.freeram * si.mem_unit);
  }
  if (gethostname(host, sizeof(host)) == 0) {
    host[sizeof(host) - 1] = '\0';
    cJSON_AddStringToObject(m, "hostname", host);
  }
  return m;
}

static void on_closed(es_client *client) {
  app *a = es_client_get_data(client);
  es_client_stats(client, &a->final);
}

static void tick(uv_timer_t *t) {
  app *a = t->data;
  cJSON *metrics = collect_metrics(), *custom = cJSON_CreateObject();
  char host[256] = "unknown";
  es_event *ev;
  int rc;

  gethostname(host, sizeof(host) - 1);
  cJSON_AddStringToObject(custom, "source", "metrics_collector");
  cJSON_AddStringToObject(custom, "hostname", host);
  rc = es_event_new(&ev, "system_metrics", "metrics_collected", metrics);
  if (rc == 0)
    rc = es_publish_event_simple(a->client, ev, custom, NULL, NULL);
  if (rc != 0) {
    a->refused++;
    fprintf(stderr, "metrics_publisher: not accepted: %s\n", es_strerror(rc));
  }
  es_event_free(ev);
  cJSON_Delete(metrics);
  cJSON_Delete(custom);
  if (--a->left == 0) {
    uv_close((uv_handle_t *)t, NULL);
    es_client_close(a->client, on_closed); /* waits for what is queued */
  }
}

int main(int argc, char **argv) {
  uint64_t interval = 200;
  app a;
  uv_loop_t loop;
  int i, rc;

  memset(&a, 0, sizeof(a));
  a.left = 3;
  for (i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--interval-ms") == 0)
      interval = strtoull(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--count") == 0)
      a.left = atoi(argv[i + 1]);
  }
  if (a.left <= 0)
    a.left = 1;
  uv_loop_init(&loop);
  rc = es_client_init(&loop, &a.client, NULL);
  if (rc != 0) {
    fprintf(stderr, "metrics_publisher: %s\n", es_strerror(rc));
    return 1;
  }
  es_client_set_data(a.client, &a);
  uv_timer_init(&loop, &a.timer);
  a.timer.data = &a;
  uv_timer_start(&a.timer, tick, 0, interval);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  printf("metrics_publisher: %llu published, %llu failed\n",
         (unsigned long long)a.final.succeeded,
         (unsigned long long)a.final.failed);
  return a.refused || a.final.failed || a.final.succeeded == 0 ? 1 : 0;
}
