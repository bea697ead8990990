/* Pub/sub and bulk publishing against es-sidecar: topics per event type and
 * fixed, metadata query parameters percent-encoded, hostile names carried
 * safely or refused, CloudEvents, partial bulk failure mapped to the right
 * entries, linger, and flush and close with a partial batch pending. */
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "client_util.h"
#include "peer.h"
#include "test.h"

typedef struct run {
  uv_loop_t loop;
  insc s;
  es_client *c;
} run;

static int run_start(run *r, es_sidecar_options *so, es_client_options *o) {
  tally_reset();
  uv_loop_init(&r->loop);
  if (insc_start(&r->loop, &r->s, so) != 0)
    return -1;
  o->endpoint = r->s.url;
  return es_client_init(&r->loop, &r->c, o);
}

static void run_end(run *r) {
  close_client(&r->loop, r->c);
  insc_stop(&r->loop, &r->s);
  CHECK_EQ_INT(close_loop(&r->loop), 0);
}

/* Calls f(line, arg) for every line the sidecar recorded. */
static void each_line(run *r, void (*f)(cJSON *line, void *arg), void *arg) {
  FILE *fp = fopen(r->s.out, "r");
  char *line = NULL;
  size_t cap = 0;
  if (fp == NULL)
    return;
  while (getline(&line, &cap, fp) > 0) {
    cJSON *j = cJSON_Parse(line);
    f(j, arg);
    cJSON_Delete(j);
  }
  free(line);
  fclose(fp);
}

static const char *str(const cJSON *j, const char *k) {
  const char *v = cJSON_GetStringValue(cJSON_GetObjectItem(j, k));
  return v ? v : "";
}

static void pubsub_options(es_client_options *o) {
  base_options(o, NULL);
  o->target = ES_TARGET_PUBSUB;
}

/* ---- topics -------------------------------------------------------------- */

typedef struct topic_count {
  int orders, users, other;
  int bad_kind;
} topic_count;

static void count_topics(cJSON *j, void *arg) {
  topic_count *t = arg;
  if (strcmp(str(j, "kind"), "publish") != 0 ||
      strcmp(str(j, "pubsub"), "pubsub") != 0 ||
      strcmp(str(j, "content_type"), "application/json") != 0)
    t->bad_kind++;
  if (strcmp(str(j, "topic"), "orders") == 0)
    t->orders++;
  else if (strcmp(str(j, "topic"), "users") == 0)
    t->users++;
  else
    t->other++;
}

static void test_topic_per_event_type(void) {
  es_sidecar_options so;
  es_client_options o;
  topic_count t = {0};
  run r;
  int i;

  es_sidecar_options_init(&so);
  pubsub_options(&o);
  ASSERT(run_start(&r, &so, &o) == 0);
  for (i = 0; i < 30; i++)
    CHECK_EQ_INT(publish_typed(r.c, i, i % 3 ? "orders" : "users", NULL), 0);
  run_until_n(&r.loop, &T.total, 30, 5000);
  CHECK(exactly_once(30));
  CHECK_EQ_INT(T.ok, 30);
  each_line(&r, count_topics, &t);
  CHECK_EQ_INT(t.orders, 20);
  CHECK_EQ_INT(t.users, 10);
  CHECK_EQ_INT(t.other, 0);
  CHECK_EQ_INT(t.bad_kind, 0);
  run_end(&r);
  insc_free(&r.s);
}

static void count_fixed(cJSON *j, void *arg) {
  int *n = arg;
  *n += strcmp(str(j, "topic"), "all-events") == 0;
}

static void test_fixed_topic(void) {
  es_sidecar_options so;
  es_client_options o;
  run r;
  int i, n = 0;

  es_sidecar_options_init(&so);
  pubsub_options(&o);
  o.topic = "all-events";
  ASSERT(run_start(&r, &so, &o) == 0);
  for (i = 0; i < 10; i++)
    CHECK_EQ_INT(publish_typed(r.c, i, i % 2 ? "a" : "b", NULL), 0);
  run_until_n(&r.loop, &T.total, 10, 5000);
  CHECK_EQ_INT(T.ok, 10);
  each_line(&r, count_fixed, &n);
  CHECK_EQ_INT(n, 10);
  run_end(&r);
  insc_free(&r.s);
}

/* ---- metadata and hostile names ------------------------------------------ */

typedef struct md_check {
  int lines, ok;
} md_check;

static void check_metadata(cJSON *j, void *arg) {
  md_check *m = arg;
  const cJSON *md = cJSON_GetObjectItem(j, "metadata");
  m->lines++;
  m->ok += strcmp(str(md, "rawPayload"), "true") == 0 &&
           strcmp(str(md, "ttlInSeconds"), "60") == 0 &&
           strcmp(str(md, "odd key/?#"), "v&=?#\xc3\xa9 x+y") == 0 &&
           strcmp(str(j, "topic"), "a/b?c#d \xc3\xa9") == 0 &&
           strcmp(str(j, "pubsub"), "my pubsub/x") == 0;
}

static void test_metadata_and_hostile_names(void) {
  es_sidecar_options so;
  es_client_options o;
  static const es_header md[] = {{"rawPayload", "true"},
                                 {"ttlInSeconds", "60"},
                                 {"odd key/?#", "v&=?#\xc3\xa9 x+y"}};
  md_check m = {0, 0};
  run r;
  uv_loop_t loop;
  es_client *c;

  es_sidecar_options_init(&so);
  so.components = "eventstore,my pubsub/x";
  pubsub_options(&o);
  o.pubsub_name = "my pubsub/x";
  o.publish_metadata = md;
  o.n_publish_metadata = 3;
  ASSERT(run_start(&r, &so, &o) == 0);
  CHECK_EQ_INT(publish_typed(r.c, 0, "a/b?c#d \xc3\xa9", NULL), 0);
  CHECK_EQ_INT(publish_typed(r.c, 1, "a/b?c#d \xc3\xa9", NULL), 0);
  /* names that cannot be carried are refused before anything is queued */
  CHECK_EQ_INT(publish_typed(r.c, 2, "..", NULL), ES_EINVAL);
  CHECK_EQ_INT(publish_typed(r.c, 2, "a\r\nb", NULL), ES_EINVAL);
  run_until_n(&r.loop, &T.total, 2, 5000);
  CHECK_EQ_INT(T.ok, 2);
  CHECK_EQ_INT(T.total, 2);
  each_line(&r, check_metadata, &m);
  CHECK_EQ_INT(m.lines, 2);
  CHECK_EQ_INT(m.ok, 2);
  run_end(&r);
  insc_free(&r.s);

  /* refused at init: a fixed topic or component that changes the path */
  uv_loop_init(&loop);
  pubsub_options(&o);
  o.endpoint = "http://127.0.0.1:1";
  o.topic = "..";
  CHECK_EQ_INT(es_client_init(&loop, &c, &o), ES_EINVAL);
  o.topic = NULL;
  o.pubsub_name = ".";
  CHECK_EQ_INT(es_client_init(&loop, &c, &o), ES_EINVAL);
  o.pubsub_name = "ok";
  o.bulk = 1;
  o.target = ES_TARGET_BINDING; /* bulk needs pub/sub */
  CHECK_EQ_INT(es_client_init(&loop, &c, &o), ES_EINVAL);
  CHECK_EQ_INT(close_loop(&loop), 0);
}

static void check_cloudevent(cJSON *j, void *arg) {
  int *ok = arg;
  const cJSON *b = cJSON_GetObjectItem(j, "body");
  *ok +=
      strcmp(str(j, "content_type"), "application/cloudevents+json") == 0 &&
      strcmp(str(b, "specversion"), "1.0") == 0 && strlen(str(b, "id")) > 0 &&
      strcmp(str(b, "source"), "tests") == 0 &&
      strcmp(str(b, "type"), "orders") == 0 && strlen(str(b, "time")) == 20 &&
      strcmp(str(b, "datacontenttype"), "application/json") == 0 &&
      strcmp(str(cJSON_GetObjectItem(b, "data"), "event_type"), "orders") == 0;
}

static void test_cloudevents(void) {
  es_sidecar_options so;
  es_client_options o;
  run r;
  int ok = 0;

  es_sidecar_options_init(&so);
  pubsub_options(&o);
  o.cloudevents = 1;
  o.cloudevents_source = "tests";
  ASSERT(run_start(&r, &so, &o) == 0);
  CHECK_EQ_INT(publish_typed(r.c, 0, "orders", NULL), 0);
  CHECK_EQ_INT(publish_typed(r.c, 1, "orders", NULL), 0);
  run_until_n(&r.loop, &T.total, 2, 5000);
  CHECK_EQ_INT(T.ok, 2);
  each_line(&r, check_cloudevent, &ok);
  CHECK_EQ_INT(ok, 2);
  run_end(&r);
  insc_free(&r.s);
}

/* ---- bulk ---------------------------------------------------------------- */

/* es-sidecar fails every 3rd entry; with one attempt those complete with
 * the sidecar's per-entry error, the others succeed, and exactly the
 * succeeded ones are in the sidecar's output. */
static void test_bulk_partial_failure(void) {
  es_sidecar_options so;
  es_client_options o;
  run r;
  static int seen[MAXEV];
  int i, n = 300, failed = 0, wrong = 0;
  es_stats st;

  es_sidecar_options_init(&so);
  so.bulk_fail_every = 3;
  pubsub_options(&o);
  o.bulk = 1;
  o.bulk_max_events = 50;
  o.max_attempts = 1;
  ASSERT(run_start(&r, &so, &o) == 0);
  for (i = 0; i < n; i++)
    CHECK_EQ_INT(publish_typed(r.c, i, "orders", NULL), 0);
  run_until_n(&r.loop, &T.total, n, 10000);
  CHECK(exactly_once(n));
  es_client_stats(r.c, &st);
  CHECK(st.requests <= 8); /* 300 events in batches of 50 */
  run_end(&r);
  memset(seen, 0, sizeof(seen));
  read_output(r.s.out, seen, n, NULL);
  for (i = 0; i < n; i++) {
    if (T.status[i] != 0) {
      failed++;
      wrong += T.status[i] != ES_EATTEMPTS || T.http[i] != 500 || seen[i] != 0;
    } else {
      wrong += seen[i] != 1;
    }
  }
  CHECK_EQ_INT(failed, n / 3);
  CHECK_EQ_INT(wrong, 0);
  CHECK_EQ_STR(T.last_message, "injected failure");
  fprintf(stderr, "bulk: %d events in %llu requests, %d failed entries\n", n,
          (unsigned long long)st.requests, failed);
  insc_free(&r.s);
}

/* The same with retries: every entry ends delivered, once. */
static void test_bulk_partial_failure_retried(void) {
  es_sidecar_options so;
  es_client_options o;
  run r;
  static int seen[MAXEV];
  int i, n = 300, bad = 0;

  es_sidecar_options_init(&so);
  so.bulk_fail_every = 4;
  pubsub_options(&o);
  o.bulk = 1;
  o.bulk_max_events = 40;
  ASSERT(run_start(&r, &so, &o) == 0);
  for (i = 0; i < n; i++)
    CHECK_EQ_INT(publish_typed(r.c, i, i % 2 ? "a" : "b", NULL), 0);
  run_until_n(&r.loop, &T.total, n, 10000);
  CHECK(exactly_once(n));
  CHECK_EQ_INT(T.ok, n);
  run_end(&r);
  memset(seen, 0, sizeof(seen));
  read_output(r.s.out, seen, n, NULL);
  for (i = 0; i < n; i++)
    bad += seen[i] != 1;
  CHECK_EQ_INT(bad, 0);
  insc_free(&r.s);
}

/* A partial batch goes out when linger_ms has passed. */
static void test_linger_flushes_partial_batch(void) {
  es_sidecar_options so;
  es_client_options o;
  run r;
  es_stats st;
  uint64_t t0;
  int i;

  es_sidecar_options_init(&so);
  pubsub_options(&o);
  o.bulk = 1;
  o.linger_ms = 80;
  ASSERT(run_start(&r, &so, &o) == 0);
  /* let readiness and registration finish first */
  CHECK_EQ_INT(publish_typed(r.c, 0, "orders", NULL), 0);
  run_until_n(&r.loop, &T.total, 1, 5000);
  t0 = uv_hrtime();
  for (i = 1; i < 8; i++)
    CHECK_EQ_INT(publish_typed(r.c, i, "orders", NULL), 0);
  run_until_n(&r.loop, &T.total, 8, 5000);
  CHECK_EQ_INT(T.ok, 8);
  CHECK((uv_hrtime() - t0) / 1000000 >= 70);
  CHECK((uv_hrtime() - t0) / 1000000 < 1000);
  es_client_stats(r.c, &st);
  CHECK_EQ_INT(st.requests, 2); /* one for event 0, one for the batch */
  run_end(&r);
  insc_free(&r.s);
}

static int flushed;
static void on_flushed(es_client *c, int status, size_t remaining, void *d) {
  (void)c;
  (void)d;
  flushed = status == 0 && remaining == 0 ? 1 : -1;
}

/* Flush and close send a partial batch at once, whatever the linger. */
static void test_flush_and_close_send_partial_batch(void) {
  es_sidecar_options so;
  es_client_options o;
  run r;
  uint64_t t0;
  int i;

  es_sidecar_options_init(&so);
  pubsub_options(&o);
  o.bulk = 1;
  o.linger_ms = 60000;
  ASSERT(run_start(&r, &so, &o) == 0);
  t0 = uv_hrtime();
  for (i = 0; i < 5; i++)
    CHECK_EQ_INT(publish_typed(r.c, i, "orders", NULL), 0);
  flushed = 0;
  CHECK_EQ_INT(es_client_flush(r.c, 10000, on_flushed, NULL), 0);
  run_until_n(&r.loop, &flushed, 1, 5000);
  CHECK_EQ_INT(flushed, 1);
  CHECK_EQ_INT(T.ok, 5);
  CHECK((uv_hrtime() - t0) / 1000000 < 2000);
  for (i = 5; i < 9; i++)
    CHECK_EQ_INT(publish_typed(r.c, i, "orders", NULL), 0);
  t0 = uv_hrtime();
  run_end(&r); /* close: sends them, does not cancel them */
  CHECK((uv_hrtime() - t0) / 1000000 < 2000);
  CHECK(exactly_once(9));
  CHECK_EQ_INT(T.ok, 9);
  CHECK_EQ_INT(read_output(r.s.out, NULL, 0, NULL), 9);
  insc_free(&r.s);
}

int main(void) {
  int fds = count_fds();
  uv_mutex_init(&tally_lock);
  unsetenv("DAPR_HTTP_ENDPOINT");
  unsetenv("DAPR_API_TOKEN");
  RUN(test_topic_per_event_type);
  RUN(test_fixed_topic);
  RUN(test_metadata_and_hostile_names);
  RUN(test_cloudevents);
  RUN(test_bulk_partial_failure);
  RUN(test_bulk_partial_failure_retried);
  RUN(test_linger_flushes_partial_batch);
  RUN(test_flush_and_close_send_partial_batch);
  CHECK_EQ_INT(count_fds(), fds);
  return TEST_DONE();
}
