#include "client_util.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "peer.h"
#include "test.h"

tally T;
uv_mutex_t tally_lock;

void tally_reset(void) {
  memset(&T, 0, sizeof(T));
}

void on_done(es_client *c, const es_publish_result *r, void *data) {
  int i = (int)(uintptr_t)data;
  (void)c;
  uv_mutex_lock(&tally_lock);
  T.calls[i]++;
  T.status[i] = r->status;
  T.attempts[i] = r->attempts;
  T.http[i] = r->http_status;
  T.latency_us[i] = r->latency_us;
  T.total++;
  T.ok += r->status == 0;
  if (r->message)
    snprintf(T.last_message, sizeof(T.last_message), "%s", r->message);
  uv_mutex_unlock(&tally_lock);
}

/* Every accepted event completed exactly once. */
int exactly_once(int n) {
  int i, bad = 0;
  for (i = 0; i < n; i++)
    if (T.calls[i] != 1)
      bad++;
  if (bad)
    fprintf(stderr, "%d events without exactly one callback\n", bad);
  return bad == 0;
}

void on_closed(es_client *c) {
  (void)c;
  T.closed++;
}

int publish_typed(es_client *c, int i, const char *type, const char *name) {
  char data[64];
  es_event *ev;
  cJSON *d;
  int rc;
  snprintf(data, sizeof(data), "{\"i\":%d}", i);
  d = cJSON_Parse(data);
  rc = es_event_new(&ev, type, name ? name : "numbered", d);
  cJSON_Delete(d);
  if (rc != 0)
    return rc;
  rc = es_publish_event_simple(c, ev, NULL, on_done, (void *)(uintptr_t)i);
  es_event_free(ev);
  if (rc == 0)
    T.accepted++;
  return rc;
}

void close_client(uv_loop_t *loop, es_client *c) {
  int before = T.closed;
  es_client_close(c, on_closed);
  CHECK_EQ_INT(T.closed, before);
  run_until_n(loop, &T.closed, before + 1, 20000);
  CHECK_EQ_INT(T.closed, before + 1);
}

/* An in-process es-sidecar on the test's loop. */

int insc_start(uv_loop_t *loop, insc *s, es_sidecar_options *o) {
  static int k;
  snprintf(s->out, sizeof(s->out), "/tmp/es-test-client-%d-%d.out",
           (int)getpid(), ++k);
  unlink(s->out);
  o->port = 0;
  o->out_path = s->out;
  o->handle_signals = 0;
  if (es_sidecar_start(loop, o, &s->sc) != 0)
    return -1;
  snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d",
           es_sidecar_port(s->sc));
  return 0;
}

void insc_stop(uv_loop_t *loop, insc *s) {
  es_sidecar_stop(s->sc);
  uv_run(loop, UV_RUN_NOWAIT);
}

void insc_free(insc *s) {
  es_sidecar_free(s->sc);
  unlink(s->out);
}

/* The "i" of every event line in a sidecar output file: seen[i] counts. */
int read_output(const char *path, int *seen, int n, cJSON **first) {
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  int lines = 0;
  if (f == NULL)
    return 0;
  while (getline(&line, &cap, f) > 0) {
    cJSON *j = cJSON_Parse(line);
    const cJSON *body = cJSON_GetObjectItem(j, "body"), *d;
    lines++;
    if (cJSON_GetObjectItem(body, "specversion") != NULL)
      body = cJSON_GetObjectItem(body, "data"); /* a CloudEvent */
    d = cJSON_GetObjectItem(cJSON_GetObjectItem(body, "data"), "i");
    if (cJSON_IsNumber(d) && d->valueint >= 0 && d->valueint < n && seen)
      seen[d->valueint]++;
    if (first && *first == NULL)
      *first = j;
    else
      cJSON_Delete(j);
  }
  free(line);
  fclose(f);
  return lines;
}

void base_options(es_client_options *o, const char *url) {
  es_client_options_init(o);
  o->endpoint = url;
  o->retry_backoff_ms = 5;
  o->retry_backoff_max_ms = 50;
  o->ready_timeout_ms = 2000;
}

int publish_i(es_client *c, int i, const char *name) {
  return publish_typed(c, i, "test_events", name);
}
