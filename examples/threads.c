/* Worker threads publishing while the loop thread runs the client: the
 * publish functions may be called from any thread; callbacks arrive on the
 * loop thread. Exits 1 when any event failed. */
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>

#include <uv.h>

#include "eventstore.h"

#define MAX_WORKERS 64

static int WORKERS = 4, PER_WORKER = 1000; /* threads [WORKERS [PER_WORKER]] */

typedef struct shared {
  es_client *client;
  uv_async_t workers_done;
  int finished; /* workers done (under lock) */
  uv_mutex_t lock;
  long ok, failed; /* loop thread only */
} shared;

static void on_published(es_client *client, const es_publish_result *r,
                         void *data) {
  shared *s = es_client_get_data(client);
  (void)data;
  if (r->status == 0)
    s->ok++;
  else
    s->failed++;
}

static void worker(void *arg) {
  shared *s = arg;
  int i;
  for (i = 0; i < PER_WORKER; i++) {
    char json[160];
    int n = snprintf(json, sizeof(json),
                     "{\"event_type\":\"jobs\",\"event_name\":\"job_done\","
                     "\"data\":{\"job\":%d}}",
                     i);
    /* the hot path: an already serialized event */
    while (es_publish_json(s->client, "jobs", "job_done", json, (size_t)n,
                           on_published, NULL) == ES_EQUEUEFULL)
      uv_sleep(1);
  }
  uv_mutex_lock(&s->lock);
  s->finished++;
  uv_mutex_unlock(&s->lock);
  uv_async_send(&s->workers_done);
}

static void on_workers_done(uv_async_t *h) {
  shared *s = h->data;
  int all;
  uv_mutex_lock(&s->lock);
  all = s->finished == WORKERS;
  uv_mutex_unlock(&s->lock);
  if (all) {
    uv_close((uv_handle_t *)h, NULL);
    es_client_close(s->client, NULL); /* drains the queue first */
  }
}

int main(int argc, char **argv) {
  uv_loop_t loop;
  uv_thread_t t[MAX_WORKERS];
  shared s = {0};
  int i, rc;

  if (argc > 1)
    WORKERS = atoi(argv[1]);
  if (argc > 2)
    PER_WORKER = atoi(argv[2]);
  if (WORKERS < 1 || WORKERS > MAX_WORKERS || PER_WORKER < 1) {
    fprintf(stderr, "usage: threads [WORKERS (1-64) [EVENTS_PER_WORKER]]\n");
    return 2;
  }
  uv_loop_init(&loop);
  uv_mutex_init(&s.lock);
  rc = es_client_init(&loop, &s.client, NULL);
  if (rc != 0) {
    fprintf(stderr, "threads: %s\n", es_strerror(rc));
    return 1;
  }
  es_client_set_data(s.client, &s);
  /* keeps the loop running until the workers are done */
  uv_async_init(&loop, &s.workers_done, on_workers_done);
  s.workers_done.data = &s;
  for (i = 0; i < WORKERS; i++)
    uv_thread_create(&t[i], worker, &s);
  uv_run(&loop, UV_RUN_DEFAULT);
  for (i = 0; i < WORKERS; i++)
    uv_thread_join(&t[i]);
  uv_loop_close(&loop);
  uv_mutex_destroy(&s.lock);
  printf("threads: %d workers published %ld events, %ld failed\n", WORKERS,
         s.ok, s.failed);
  return s.failed == 0 && s.ok == (long)WORKERS * PER_WORKER ? 0 : 1;
}
