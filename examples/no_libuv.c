/* A program without libuv: it includes only eventstore.h, starts the client
 * in background mode with completions delivered by poll, publishes from
 * main and from two pthreads, drains completions through the client's
 * descriptor with poll(2), and shuts down cleanly. Exits 1 when any event
 * failed. */
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "eventstore.h"

#define PER_THREAD 500

static es_client *client;
static long ok, failed; /* only touched by the main thread, in es_client_poll */

static void on_published(es_client *c, const es_publish_result *r, void *d) {
  (void)c;
  (void)d;
  if (r->status == 0)
    ok++;
  else {
    failed++;
    fprintf(stderr, "no_libuv: %s/%s failed: %s\n", r->event_type,
            r->event_name, es_strerror(r->status));
  }
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg, i;
  for (i = 0; i < PER_THREAD; i++) {
    char json[128];
    int n = snprintf(json, sizeof(json),
                     "{\"event_type\":\"jobs\",\"event_name\":\"job_done\","
                     "\"data\":{\"worker\":%d,\"job\":%d}}",
                     id, i);
    while (es_publish_json(client, "jobs", "job_done", json, (size_t)n,
                           on_published, NULL) == ES_EQUEUEFULL)
      ; /* the queue drains on the library's thread */
  }
  return NULL;
}

int main(void) {
  pthread_t t[2];
  struct pollfd pfd;
  es_event *ev;
  cJSON *data;
  long expected = 2 * PER_THREAD + 1;
  int rc, i;

  rc = es_client_start_background(&client, NULL, ES_DELIVER_BY_POLL);
  if (rc != 0) {
    fprintf(stderr, "no_libuv: %s\n", es_strerror(rc));
    return 1;
  }
  for (i = 0; i < 2; i++)
    pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);

  /* one from main, with enrichment */
  data = cJSON_Parse("{\"started\":true}");
  es_event_new(&ev, "app", "started", data);
  if (es_publish_event_simple(client, ev, NULL, on_published, NULL) != 0)
    failed++;
  es_event_free(ev);
  cJSON_Delete(data);

  /* the program's own event loop: poll(2) on the client's descriptor */
  pfd.fd = es_client_fd(client);
  pfd.events = POLLIN;
  while (ok + failed < expected) {
    if (poll(&pfd, 1, 5000) <= 0) {
      fprintf(stderr, "no_libuv: no completion for 5 s\n");
      break;
    }
    es_client_poll(client, 0);
  }
  for (i = 0; i < 2; i++)
    pthread_join(t[i], NULL);
  rc = es_client_close_sync(client, 5000);
  printf("no_libuv: %ld published, %ld failed, close: %s\n", ok, failed,
         es_err_name(rc));
  return failed == 0 && ok == expected && rc == 0 ? 0 : 1;
}
