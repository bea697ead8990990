/* The publish pipeline against es-sidecar on loopback: the wire format of
 * the guide's examples, every fault mode, readiness, a sidecar killed and
 * restarted mid-run, an unregistered binding, a wrong token, both overflow
 * policies, close from inside a callback, flush deadlines, four publishing
 * threads, fire-and-forget logging, deadlines, auth header refresh. Every
 * test counts callbacks per event: exactly one for each accepted event. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <uv.h>

#include "eventstore.h"
#include "nginx.h"
#include "peer.h"
#include "sidecar.h"
#include "sidecar_proc.h"
#include "client_util.h"
#include "test.h"

/* ---- wire format ------------------------------------------------------- */

static void test_wire_format_examples(void) {
  uv_loop_t loop;
  es_sidecar_options so;
  insc s;
  es_client *c;
  es_client_options o;
  es_header auth[1] = {{"Authorization", "Bearer s3cret"}};
  static const char *examples[][3] = {
      {"processor_events", "batch_processed",
       "{\"batch_size\":50,\"event_types\":[\"a\",\"b\"]}"},
      {"processing_results", "event_processed", "{\"status\":\"ok\"}"},
      {"system_metrics", "metrics_collected",
       "{\"load1\":0.5,\"hostname\":\"h\"}"},
  };
  static const char *customs[] = {
      "{\"processor_type\":\"kafka_batch\",\"batch_id\":\"abc123\","
      "\"created_timestamp\":1764860000}",
      "{\"handler\":\"kafka_binding\",\"created_timestamp\":1764860000}",
      "{\"source\":\"metrics_collector\",\"hostname\":\"box\","
      "\"created_timestamp\":1764860000}",
  };
  FILE *f;
  char *line = NULL;
  size_t cap = 0;
  int i, n = 0;

  tally_reset();
  uv_loop_init(&loop);
  es_sidecar_options_init(&so);
  so.token = "tok";
  ASSERT(insc_start(&loop, &s, &so) == 0);
  base_options(&o, s.url);
  o.api_token = "tok";
  o.headers = auth;
  o.n_headers = 1;
  o.application_name = "my-app";
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  CHECK_EQ_STR(es_client_binding(c), "eventstore");
  for (i = 0; i < 3; i++) {
    es_event *ev;
    cJSON *d = cJSON_Parse(examples[i][2]), *cu = cJSON_Parse(customs[i]);
    ASSERT(es_event_new(&ev, examples[i][0], examples[i][1], d) == 0);
    CHECK_EQ_INT(
        es_publish_event_simple(c, ev, cu, on_done, (void *)(uintptr_t)i), 0);
    es_event_free(ev);
    cJSON_Delete(d);
    cJSON_Delete(cu);
  }
  run_until_n(&loop, &T.total, 3, 5000);
  CHECK_EQ_INT(T.ok, 3);
  CHECK(exactly_once(3));
  f = fopen(s.out, "r");
  ASSERT(f != NULL);
  while (getline(&line, &cap, f) > 0) {
    es_event *ev;
    cJSON *d = cJSON_Parse(examples[n][2]), *cu = cJSON_Parse(customs[n]);
    cJSON *got = cJSON_Parse(line), *want_body;
    char *want;
    /* the event as the library's own enrich + serialize gives it */
    es_event_new(&ev, examples[n][0], examples[n][1], d);
    es_event_set_metadata_string(ev, "application_name", "my-app");
    es_event_enrich_simple(ev, cu);
    es_event_set_metadata_string(ev, "application_name", "my-app");
    es_event_to_json(ev, 0, &want, NULL);
    want_body = cJSON_Parse(want);
    CHECK_EQ_STR(cJSON_GetObjectItem(got, "kind")->valuestring, "binding");
    CHECK_EQ_STR(cJSON_GetObjectItem(got, "name")->valuestring, "eventstore");
    CHECK_EQ_STR(cJSON_GetObjectItem(got, "operation")->valuestring, "create");
    CHECK_EQ_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "metadata"),
                                     "content-type")
                     ->valuestring,
                 "application/json");
    CHECK_EQ_STR(cJSON_GetObjectItem(cJSON_GetObjectItem(got, "metadata"),
                                     "Authorization")
                     ->valuestring,
                 "Bearer s3cret");
    CHECK(cJSON_Compare(cJSON_GetObjectItem(got, "body"), want_body, 1));
    es_free(want);
    cJSON_Delete(want_body);
    cJSON_Delete(got);
    cJSON_Delete(d);
    cJSON_Delete(cu);
    es_event_free(ev);
    n++;
  }
  free(line);
  fclose(f);
  CHECK_EQ_INT(n, 3);
  close_client(&loop, c);
  insc_stop(&loop, &s);
  CHECK_EQ_INT(close_loop(&loop), 0);
  insc_free(&s);
}

/* ---- fault modes ------------------------------------------------------- */

/* tick_us: the client's max_tick_us (0: the default). */
static void run_fault(const char *what, es_sidecar_options *so, int n,
                      int expect_dups, uint64_t tick_us) {
  uv_loop_t loop;
  insc s;
  es_client *c;
  es_client_options o;
  static int seen[MAXEV];
  int i, missing = 0, lines;
  es_stats st;

  tally_reset();
  uv_loop_init(&loop);
  ASSERT(insc_start(&loop, &s, so) == 0);
  base_options(&o, s.url);
  o.max_attempts = 20;
  if (tick_us != 0)
    o.max_tick_us = tick_us;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  for (i = 0; i < n; i++)
    CHECK_EQ_INT(publish_i(c, i, NULL), 0);
  run_until_n(&loop, &T.total, n, 30000);
  es_client_stats(c, &st);
  CHECK(exactly_once(n));
  CHECK_EQ_INT(T.ok, n);
  CHECK_EQ_INT(st.accepted, (uint64_t)n);
  CHECK_EQ_INT(st.succeeded, (uint64_t)n);
  close_client(&loop, c);
  insc_stop(&loop, &s);
  CHECK_EQ_INT(close_loop(&loop), 0);
  memset(seen, 0, sizeof(seen));
  lines = read_output(s.out, seen, n, NULL);
  for (i = 0; i < n; i++)
    missing += seen[i] == 0;
  CHECK_EQ_INT(missing, 0);
  if (!expect_dups)
    CHECK_EQ_INT(lines, n);
  fprintf(stderr,
          "%s: %d events, %d callbacks, %llu requests, %llu retries, %d "
          "lines in the sidecar (%d duplicates)\n",
          what, n, T.total, (unsigned long long)st.requests,
          (unsigned long long)st.retries, lines, lines - n);
  insc_free(&s);
}

static void test_fault_fail_every(void) {
  es_sidecar_options so;
  es_sidecar_options_init(&so);
  so.fail_every = 3;
  run_fault("--fail-every 3", &so, 300, 0, 0);
}

static void test_fault_close_every(void) {
  es_sidecar_options so;
  es_sidecar_options_init(&so);
  so.close_every = 7;
  run_fault("--close-every 7", &so, 300, 1, 0);
}

/* With a 1 us budget every loop iteration stops after its first piece of
 * work: reads pause and resume, writes wait, while the sidecar closes
 * connections under them. Every event still ends once. */
static void test_fault_close_every_tiny_tick(void) {
  es_sidecar_options so;
  es_sidecar_options_init(&so);
  so.close_every = 7;
  run_fault("--close-every 7, max_tick_us 1", &so, 300, 1, 1);
}

static void test_fault_delay(void) {
  es_sidecar_options so;
  es_sidecar_options_init(&so);
  so.delay_ms = 30;
  run_fault("--delay-ms 30", &so, 300, 0, 0);
}

static void test_fault_retry_after(void) {
  es_sidecar_options so;
  int i, honoured = 0, retried = 0;
  es_sidecar_options_init(&so);
  so.retry_after_every = 10;
  so.retry_after_secs = 1;
  run_fault("--retry-after-every 10", &so, 100, 0, 0);
  for (i = 0; i < 100; i++)
    if (T.attempts[i] > 1) {
      retried++;
      honoured += T.latency_us[i] >= 1000000;
    }
  CHECK(retried >= 10);
  CHECK_EQ_INT(honoured, retried);
}

static void test_fault_keepalive_max(void) {
  es_sidecar_options so;
  es_sidecar_options_init(&so);
  so.keepalive_max = 3;
  run_fault("--keepalive-max 3", &so, 300, 1, 0);
}

static void test_fault_chunked(void) {
  es_sidecar_options so;
  es_sidecar_options_init(&so);
  so.chunked = 1;
  run_fault("--chunked", &so, 300, 0, 0);
}

/* ---- readiness, restart ------------------------------------------------ */

static void start_cb(uv_timer_t *t) {
  sidecar_proc *p = t->data;
  int port = p->port;
  if (sidecar_proc_start(p, port, NULL) != 0)
    fprintf(stderr, "could not start es-sidecar\n");
}

static void test_sidecar_started_late(void) {
  uv_loop_t loop;
  uv_timer_t t;
  sidecar_proc p;
  es_client *c;
  es_client_options o;
  char url[64];
  int i;

  tally_reset();
  memset(&p, 0, sizeof(p));
  p.port = free_port();
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", p.port);
  uv_loop_init(&loop);
  base_options(&o, url);
  o.ready_timeout_ms = 5000;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  for (i = 0; i < 20; i++)
    CHECK_EQ_INT(publish_i(c, i, NULL), 0);
  uv_timer_init(&loop, &t);
  t.data = &p;
  uv_timer_start(&t, start_cb, 400, 0);
  run_until_n(&loop, &T.total, 20, 10000);
  CHECK(exactly_once(20));
  CHECK_EQ_INT(T.ok, 20);
  for (i = 0; i < 20; i++)
    CHECK_EQ_INT(T.attempts[i], 1); /* waited for readiness, no retries */
  CHECK_EQ_INT(sidecar_proc_lines(&p), 20);
  uv_close((uv_handle_t *)&t, NULL);
  close_client(&loop, c);
  CHECK_EQ_INT(close_loop(&loop), 0);
  sidecar_proc_cleanup(&p);
}

typedef struct restart_ctx {
  sidecar_proc *p;
  uv_loop_t *loop;
  es_client *c;
  int next, n, killed, restarted;
  uv_timer_t feed;
} restart_ctx;

static void feed_cb(uv_timer_t *t) {
  restart_ctx *x = t->data;
  int k;
  for (k = 0; k < 50 && x->next < x->n; k++)
    if (publish_i(x->c, x->next, NULL) == 0)
      x->next++;
  if (x->next >= x->n / 3 && !x->killed) {
    sidecar_proc_kill(x->p);
    x->killed = 1;
  } else if (x->killed && !x->restarted && x->next >= x->n / 2) {
    sidecar_proc_start(x->p, x->p->port, NULL);
    x->restarted = 1;
  }
  if (x->next >= x->n)
    uv_timer_stop(t);
}

static void test_sidecar_killed_and_restarted(void) {
  uv_loop_t loop;
  sidecar_proc p;
  es_client *c;
  es_client_options o;
  restart_ctx x;
  char url[64];
  static int seen[MAXEV];
  int i, lost = 0, n = 3000;

  tally_reset();
  memset(&p, 0, sizeof(p));
  ASSERT(sidecar_proc_start(&p, 0, NULL) == 0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", p.port);
  uv_loop_init(&loop);
  base_options(&o, url);
  o.max_attempts = 0; /* until the deadline */
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  memset(&x, 0, sizeof(x));
  x.p = &p;
  x.c = c;
  x.n = n;
  uv_timer_init(&loop, &x.feed);
  x.feed.data = &x;
  uv_timer_start(&x.feed, feed_cb, 1, 5);
  run_until_n(&loop, &T.total, n, 30000);
  CHECK(x.killed && x.restarted);
  CHECK(exactly_once(n));
  CHECK_EQ_INT(T.ok, n);
  uv_close((uv_handle_t *)&x.feed, NULL);
  close_client(&loop, c);
  CHECK_EQ_INT(close_loop(&loop), 0);
  sidecar_proc_stop(&p);
  memset(seen, 0, sizeof(seen));
  read_output(p.out, seen, n, NULL);
  for (i = 0; i < n; i++)
    lost += T.status[i] == 0 && seen[i] == 0;
  CHECK_EQ_INT(lost, 0); /* no acknowledged event lost */
  sidecar_proc_cleanup(&p);
}

/* ---- registration, auth ----------------------------------------------- */

static int log_warnings, log_lines;
static char log_last[1024];
static char *log_all;
static size_t log_all_len;

static void capture_log(es_log_level level, const char *msg, void *arg) {
  size_t n = strlen(msg);
  (void)arg;
  log_lines++;
  if (level >= ES_LOG_WARN)
    log_warnings++;
  snprintf(log_last, sizeof(log_last), "%s", msg);
  log_all = realloc(log_all, log_all_len + n + 2);
  memcpy(log_all + log_all_len, msg, n);
  log_all[log_all_len + n] = '\n';
  log_all_len += n + 1;
  log_all[log_all_len] = '\0';
}

static void log_reset(void) {
  log_warnings = log_lines = 0;
  log_last[0] = '\0';
  free(log_all);
  log_all = NULL;
  log_all_len = 0;
}

static int registered_answers[2];
static int registered_calls;
static void on_registered(es_client *c, int registered, void *data) {
  (void)c;
  registered_answers[(uintptr_t)data] = registered;
  registered_calls++;
}

static void test_unregistered_binding(void) {
  uv_loop_t loop;
  es_sidecar_options so;
  insc s;
  es_client *c;
  es_client_options o;
  int i;

  tally_reset();
  log_reset();
  uv_loop_init(&loop);
  es_sidecar_options_init(&so);
  ASSERT(insc_start(&loop, &s, &so) == 0);
  base_options(&o, s.url);
  o.binding_name = "nope";
  o.log_cb = capture_log;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  for (i = 0; i < 10; i++)
    CHECK_EQ_INT(publish_i(c, i, NULL), 0);
  run_until_n(&loop, &T.total, 10, 5000);
  CHECK(exactly_once(10));
  for (i = 0; i < 10; i++) {
    CHECK_EQ_INT(T.status[i], ES_ENOTREGISTERED);
    CHECK_EQ_INT(T.attempts[i], 0);
  }
  CHECK_EQ_INT(log_warnings, 1);
  CHECK(strstr(log_last, "not registered") != NULL);
  /* and the question, asked directly */
  registered_calls = 0;
  CHECK_EQ_INT(es_client_is_component_registered(c, "eventstore", on_registered,
                                                 (void *)0),
               0);
  CHECK_EQ_INT(
      es_client_is_component_registered(c, "nope", on_registered, (void *)1),
      0);
  CHECK_EQ_INT(registered_calls, 0);
  run_until_n(&loop, &registered_calls, 2, 5000);
  CHECK_EQ_INT(registered_answers[0], 1);
  CHECK_EQ_INT(registered_answers[1], 0);
  close_client(&loop, c);
  insc_stop(&loop, &s);
  CHECK_EQ_INT(close_loop(&loop), 0);
  CHECK_EQ_INT(read_output(s.out, NULL, 0, NULL), 0);
  insc_free(&s);
}

static void test_wrong_token(void) {
  uv_loop_t loop;
  es_sidecar_options so;
  insc s;
  es_client *c;
  es_client_options o;
  int i;

  tally_reset();
  log_reset();
  uv_loop_init(&loop);
  es_sidecar_options_init(&so);
  so.token = "right";
  ASSERT(insc_start(&loop, &s, &so) == 0);
  base_options(&o, s.url);
  o.api_token = "wrong-token-value";
  o.log_cb = capture_log;
  o.log_level = ES_LOG_DEBUG;
  o.ready_timeout_ms = 200; /* healthz answers 401 too */
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  for (i = 0; i < 5; i++)
    CHECK_EQ_INT(publish_i(c, i, NULL), 0);
  run_until_n(&loop, &T.total, 5, 5000);
  CHECK(exactly_once(5));
  for (i = 0; i < 5; i++) {
    CHECK_EQ_INT(T.status[i], ES_EUNAUTHORIZED);
    CHECK_EQ_INT(T.http[i], 401);
    CHECK_EQ_INT(T.attempts[i], 1); /* no retry */
  }
  CHECK_EQ_STR(T.last_message, "invalid api token");
  CHECK(log_all == NULL || strstr(log_all, "wrong-token-value") == NULL);
  close_client(&loop, c);
  insc_stop(&loop, &s);
  CHECK_EQ_INT(close_loop(&loop), 0);
  insc_free(&s);
}

/* The provider hands out a new token valid for 150 ms each time; events
 * published over 600 ms carry several different tokens; none is logged. */
static int provider_calls;
static void provider(es_client *c, void *arg) {
  char value[64];
  es_header h;
  (void)arg;
  provider_calls++;
  snprintf(value, sizeof(value), "Bearer token-%d", provider_calls);
  h.name = "Authorization";
  h.value = value;
  es_client_auth_done(c, 0, &h, 1, 150);
}

static int feed_next;
static void feed_slowly(uv_timer_t *t) {
  es_client *c = t->data;
  if (feed_next < 30)
    publish_i(c, feed_next++, NULL);
  else
    uv_timer_stop(t);
}

static void test_header_provider(void) {
  uv_loop_t loop;
  uv_timer_t t;
  es_sidecar_options so;
  insc s;
  es_client *c;
  es_client_options o;
  FILE *f;
  char *line = NULL;
  size_t cap = 0;
  int distinct = 0;
  char last[64] = "";

  tally_reset();
  log_reset();
  provider_calls = 0;
  uv_loop_init(&loop);
  es_sidecar_options_init(&so);
  ASSERT(insc_start(&loop, &s, &so) == 0);
  base_options(&o, s.url);
  o.header_provider = provider;
  o.log_cb = capture_log;
  o.log_level = ES_LOG_DEBUG;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  uv_timer_init(&loop, &t);
  t.data = c;
  feed_next = 0;
  uv_timer_start(&t, feed_slowly, 0, 20);
  run_until_n(&loop, &T.total, 30, 10000);
  CHECK(exactly_once(30));
  CHECK_EQ_INT(T.ok, 30);
  CHECK(provider_calls >= 3);
  f = fopen(s.out, "r");
  ASSERT(f != NULL);
  while (getline(&line, &cap, f) > 0) {
    cJSON *j = cJSON_Parse(line);
    const char *tok =
        cJSON_GetObjectItem(cJSON_GetObjectItem(j, "metadata"), "Authorization")
            ->valuestring;
    if (strcmp(tok, last) != 0) {
      distinct++;
      snprintf(last, sizeof(last), "%s", tok);
    }
    cJSON_Delete(j);
  }
  free(line);
  fclose(f);
  CHECK(distinct >= 3);
  CHECK(log_all == NULL || strstr(log_all, "token-") == NULL);
  uv_close((uv_handle_t *)&t, NULL);
  close_client(&loop, c);
  insc_stop(&loop, &s);
  CHECK_EQ_INT(close_loop(&loop), 0);
  insc_free(&s);
}

/* ---- queue limits ------------------------------------------------------ */

static void overflow_run(es_overflow_policy policy) {
  uv_loop_t loop;
  es_client *c;
  es_client_options o;
  es_stats st;
  char url[64];
  int i, rc, accepted = 0, full = 0;

  tally_reset();
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port());
  uv_loop_init(&loop);
  base_options(&o, url); /* nobody listens */
  o.max_queue_events = 10;
  o.overflow = policy;
  o.close_timeout_ms = 0;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  for (i = 0; i < 15; i++) {
    rc = publish_i(c, i, NULL);
    accepted += rc == 0;
    full += rc == ES_EQUEUEFULL;
  }
  es_client_stats(c, &st);
  CHECK_EQ_INT(st.queued_events, 10);
  uv_run(&loop, UV_RUN_NOWAIT);
  if (policy == ES_OVERFLOW_REJECT_NEW) {
    CHECK_EQ_INT(accepted, 10);
    CHECK_EQ_INT(full, 5);
    CHECK_EQ_INT(st.rejected, 5);
    CHECK_EQ_INT(T.total, 0);
  } else {
    CHECK_EQ_INT(accepted, 15);
    CHECK_EQ_INT(full, 0);
    CHECK_EQ_INT(T.total, 5);
    for (i = 0; i < 5; i++)
      CHECK_EQ_INT(T.status[i], ES_EDROPPED);
    es_client_stats(c, &st);
    CHECK_EQ_INT(st.dropped, 5);
  }
  close_client(&loop, c);
  CHECK(exactly_once(accepted));
  for (i = accepted - 10; i < accepted; i++)
    CHECK_EQ_INT(T.status[i], ES_ECANCELED);
  CHECK_EQ_INT(close_loop(&loop), 0);
}

static void test_overflow_reject_new(void) {
  overflow_run(ES_OVERFLOW_REJECT_NEW);
}

static void test_overflow_drop_oldest(void) {
  overflow_run(ES_OVERFLOW_DROP_OLDEST);
}

static void test_queue_bytes_limit(void) {
  uv_loop_t loop;
  es_client *c;
  es_client_options o;
  es_stats st;
  char url[64];
  int i, accepted = 0;

  tally_reset();
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port());
  uv_loop_init(&loop);
  base_options(&o, url);
  o.max_queue_bytes = 4000; /* each event is ~300 bytes */
  o.close_timeout_ms = 0;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  for (i = 0; i < 50; i++)
    accepted += publish_i(c, i, NULL) == 0;
  es_client_stats(c, &st);
  CHECK(accepted > 5 && accepted < 20);
  CHECK(st.queued_bytes <= 4000);
  close_client(&loop, c);
  CHECK(exactly_once(accepted));
  CHECK_EQ_INT(close_loop(&loop), 0);
}

/* ---- close, flush, deadline ------------------------------------------- */

static es_client *close_me;
static void close_in_callback(es_client *c, const es_publish_result *r,
                              void *data) {
  on_done(c, r, data);
  es_client_close(c, on_closed);
  es_client_close(c, on_closed); /* twice: harmless */
  CHECK_EQ_INT(publish_i(c, 999, NULL), ES_ECLOSED);
  T.accepted--; /* publish_i counted nothing, but be explicit */
  T.accepted++;
}

static void test_close_from_callback(void) {
  uv_loop_t loop;
  es_sidecar_options so;
  insc s;
  es_client *c;
  es_client_options o;
  es_event *ev;
  int i;

  tally_reset();
  uv_loop_init(&loop);
  es_sidecar_options_init(&so);
  so.delay_ms = 5;
  ASSERT(insc_start(&loop, &s, &so) == 0);
  base_options(&o, s.url);
  o.close_timeout_ms = 0; /* cancel the rest at once */
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  close_me = c;
  ASSERT(es_event_new(&ev, "t", "n", NULL) == 0);
  CHECK_EQ_INT(es_publish_event(c, ev, close_in_callback, (void *)0), 0);
  for (i = 1; i < 200; i++)
    CHECK_EQ_INT(es_publish_event(c, ev, on_done, (void *)(uintptr_t)i), 0);
  es_event_free(ev);
  run_until_n(&loop, &T.closed, 1, 10000);
  CHECK_EQ_INT(T.closed, 1);
  CHECK(exactly_once(200));
  for (i = 1; i < 200; i++)
    CHECK(T.status[i] == 0 || T.status[i] == ES_ECANCELED);
  insc_stop(&loop, &s);
  CHECK_EQ_INT(close_loop(&loop), 0);
  insc_free(&s);
}

static int flush_calls, flush_status;
static size_t flush_remaining;
static void on_flush(es_client *c, int status, size_t remaining, void *data) {
  (void)c;
  (void)data;
  flush_calls++;
  flush_status = status;
  flush_remaining = remaining;
}

static void test_flush_with_deadline(void) {
  uv_loop_t loop;
  es_sidecar_options so;
  insc s;
  es_client *c;
  es_client_options o;
  uint64_t t0;
  int i;

  tally_reset();
  uv_loop_init(&loop);
  es_sidecar_options_init(&so);
  so.delay_ms = 400;
  ASSERT(insc_start(&loop, &s, &so) == 0);
  base_options(&o, s.url);
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  for (i = 0; i < 5; i++)
    CHECK_EQ_INT(publish_i(c, i, NULL), 0);
  flush_calls = 0;
  t0 = uv_hrtime();
  CHECK_EQ_INT(es_client_flush(c, 100, on_flush, NULL), 0);
  CHECK_EQ_INT(flush_calls, 0);
  run_until_n(&loop, &flush_calls, 1, 5000);
  CHECK_EQ_INT(flush_status, ES_ETIMEDOUT);
  CHECK_EQ_INT(flush_remaining, 5);
  CHECK((uv_hrtime() - t0) / 1000000 < 350);
  CHECK_EQ_INT(es_client_flush(c, 5000, on_flush, NULL), 0);
  run_until_n(&loop, &flush_calls, 2, 6000);
  CHECK_EQ_INT(flush_status, 0);
  CHECK_EQ_INT(flush_remaining, 0);
  CHECK_EQ_INT(T.ok, 5);
  /* nothing pending: still called back later, not from inside */
  CHECK_EQ_INT(es_client_flush(c, 0, on_flush, NULL), 0);
  CHECK_EQ_INT(flush_calls, 2);
  run_until_n(&loop, &flush_calls, 3, 1000);
  CHECK_EQ_INT(flush_status, 0);
  close_client(&loop, c);
  insc_stop(&loop, &s);
  CHECK_EQ_INT(close_loop(&loop), 0);
  insc_free(&s);
}

static void test_event_deadline(void) {
  uv_loop_t loop;
  es_client *c;
  es_client_options o;
  char url[64];
  uint64_t t0;

  tally_reset();
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port());
  uv_loop_init(&loop);
  base_options(&o, url);
  o.ready_timeout_ms = 0;
  o.event_timeout_ms = 300;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  t0 = uv_hrtime();
  CHECK_EQ_INT(publish_i(c, 0, NULL), 0);
  run_until_n(&loop, &T.total, 1, 5000);
  CHECK_EQ_INT(T.status[0], ES_ETIMEDOUT);
  CHECK((uv_hrtime() - t0) / 1000000 >= 290);
  CHECK((uv_hrtime() - t0) / 1000000 < 2000);
  close_client(&loop, c);
  CHECK_EQ_INT(close_loop(&loop), 0);
}

/* Fire-and-forget: no callback, so each failure is logged once, with the
 * event's type and name, the error, the HTTP status and the sidecar's
 * errorCode and message. */
static void test_fire_and_forget_logged(void) {
  uv_loop_t loop;
  es_sidecar_options so;
  insc s;
  es_client *c;
  es_client_options o;
  es_event *ev;
  es_stats st;
  int i, waited = 0;

  log_reset();
  uv_loop_init(&loop);
  es_sidecar_options_init(&so);
  so.fail_every = 1;
  ASSERT(insc_start(&loop, &s, &so) == 0);
  base_options(&o, s.url);
  o.max_attempts = 2;
  o.log_cb = capture_log;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  ASSERT(es_event_new(&ev, "metrics", "cpu_sampled", NULL) == 0);
  for (i = 0; i < 7; i++)
    CHECK_EQ_INT(es_publish_event(c, ev, NULL, NULL), 0);
  es_event_free(ev);
  do {
    uv_run(&loop, UV_RUN_ONCE);
    es_client_stats(c, &st);
  } while (st.failed < 7 && ++waited < 100000);
  CHECK_EQ_INT(st.failed, 7);
  CHECK_EQ_INT(log_warnings, 7);
  CHECK(strstr(log_last, "metrics/cpu_sampled") != NULL);
  CHECK(strstr(log_last, "ES_EATTEMPTS") != NULL);
  CHECK(strstr(log_last, "HTTP 500") != NULL);
  CHECK(strstr(log_last, "ERR_INVOKE_OUTPUT_BINDING") != NULL);
  CHECK(strstr(log_last, "injected failure") != NULL);
  close_client(&loop, c);
  insc_stop(&loop, &s);
  CHECK_EQ_INT(close_loop(&loop), 0);
  insc_free(&s);
}

/* ---- threads ----------------------------------------------------------- */

typedef struct worker {
  es_client *c;
  int first, n, refused;
} worker;

static void worker_main(void *arg) {
  worker *w = arg;
  int i;
  for (i = w->first; i < w->first + w->n; i++) {
    char json[128];
    int len = snprintf(json, sizeof(json),
                       "{\"event_type\":\"t\",\"event_name\":\"n\","
                       "\"data\":{\"i\":%d}}",
                       i);
    int rc;
    /* alternate the two paths: enrich+serialize and pre-serialized */
    if (i % 2 == 0) {
      rc = es_publish_json(w->c, "t", "n", json, (size_t)len, on_done,
                           (void *)(uintptr_t)i);
    } else {
      es_event *ev;
      cJSON *d = cJSON_CreateObject();
      cJSON_AddNumberToObject(d, "i", i);
      es_event_new(&ev, "t", "n", d);
      cJSON_Delete(d);
      rc = es_publish_event(w->c, ev, on_done, (void *)(uintptr_t)i);
      es_event_free(ev);
    }
    if (rc != 0)
      w->refused++;
  }
}

static void keep_alive_cb(uv_timer_t *t) {
  (void)t;
}

static void four_threads(uint64_t tick_us) {
  uv_loop_t loop;
  es_sidecar_options so;
  insc s;
  es_client *c;
  es_client_options o;
  uv_thread_t th[4];
  worker w[4];
  uv_timer_t keep; /* keeps the loop running while workers publish */
  static int seen[MAXEV];
  int i, missing = 0, n = 4 * 4000;

  tally_reset();
  uv_loop_init(&loop);
  es_sidecar_options_init(&so);
  ASSERT(insc_start(&loop, &s, &so) == 0);
  base_options(&o, s.url);
  if (tick_us != 0)
    o.max_tick_us = tick_us;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  uv_timer_init(&loop, &keep);
  uv_timer_start(&keep, keep_alive_cb, 10, 10);
  for (i = 0; i < 4; i++) {
    w[i].c = c;
    w[i].first = i * 4000;
    w[i].n = 4000;
    w[i].refused = 0;
    uv_thread_create(&th[i], worker_main, &w[i]);
  }
  run_until_n(&loop, &T.total, n, 30000);
  for (i = 0; i < 4; i++) {
    uv_thread_join(&th[i]);
    CHECK_EQ_INT(w[i].refused, 0);
  }
  CHECK(exactly_once(n));
  CHECK_EQ_INT(T.ok, n);
  uv_close((uv_handle_t *)&keep, NULL);
  close_client(&loop, c);
  insc_stop(&loop, &s);
  CHECK_EQ_INT(close_loop(&loop), 0);
  memset(seen, 0, sizeof(seen));
  read_output(s.out, seen, n, NULL);
  for (i = 0; i < n; i++)
    missing += seen[i] != 1;
  CHECK_EQ_INT(missing, 0);
  insc_free(&s);
}

static void test_four_threads(void) {
  four_threads(0);
}

/* The same with a 1 us budget: the dispatcher, the writes and the reads
 * give way after every piece of work, and the dispatcher also whenever a
 * publisher holds the lock. */
static void test_four_threads_tiny_tick(void) {
  four_threads(1);
}

/* ---- stats --------------------------------------------------------------- */

static int stats_calls;
static es_stats last_stats;
static void on_stats(es_client *c, const es_stats *st, void *arg) {
  (void)c;
  (void)arg;
  stats_calls++;
  last_stats = *st;
}

static void test_periodic_stats(void) {
  uv_loop_t loop;
  es_sidecar_options so;
  insc s;
  es_client *c;
  es_client_options o;
  es_stats st;
  int i, never = 0;

  tally_reset();
  stats_calls = 0;
  uv_loop_init(&loop);
  es_sidecar_options_init(&so);
  so.delay_ms = 2;
  ASSERT(insc_start(&loop, &s, &so) == 0);
  base_options(&o, s.url);
  o.stats_cb = on_stats;
  o.stats_interval_ms = 50;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  for (i = 0; i < 100; i++)
    CHECK_EQ_INT(publish_i(c, i, NULL), 0);
  es_client_stats(c, &st);
  CHECK_EQ_INT(st.accepted, 100);
  CHECK_EQ_INT(st.queued_events, 100);
  CHECK(st.queued_bytes > 100 * 200);
  run_until_n(&loop, &T.total, 100, 5000);
  run_until_n(&loop, &never, 1, 180); /* a few more periods */
  CHECK(stats_calls >= 2);
  CHECK_EQ_INT(last_stats.succeeded, 100);
  CHECK_EQ_INT(last_stats.queued_events, 0);
  CHECK_EQ_INT(last_stats.in_flight, 0);
  CHECK(last_stats.open_connections >= 1);
  CHECK(last_stats.latency_p50_us > 0);
  CHECK(last_stats.latency_p99_us >= last_stats.latency_p50_us);
  CHECK_EQ_INT(last_stats.requests, 100);
  close_client(&loop, c);
  insc_stop(&loop, &s);
  CHECK_EQ_INT(close_loop(&loop), 0);
  insc_free(&s);
}

/* ---- bad arguments ----------------------------------------------------- */

static void test_refusals(void) {
  uv_loop_t loop;
  es_client *c;
  es_client_options o;
  es_event *ev;
  cJSON *bad = cJSON_Parse("{\"attempt\":\"x\"}");
  char url[64];

  tally_reset();
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port());
  uv_loop_init(&loop);
  CHECK_EQ_INT(es_client_init(NULL, &c, NULL), ES_EINVAL);
  base_options(&o, "https://127.0.0.1:1");
  CHECK_EQ_INT(es_client_init(&loop, &c, &o), ES_EUNSUPPORTED);
  base_options(&o, "http://bad host");
  CHECK_EQ_INT(es_client_init(&loop, &c, &o), ES_EBADURL);
  base_options(&o, url);
  o.binding_name = "..";
  CHECK_EQ_INT(es_client_init(&loop, &c, &o), ES_EINVAL);
  base_options(&o, url);
  o.api_token = "a\r\nX-Injected: 1";
  CHECK_EQ_INT(es_client_init(&loop, &c, &o), ES_EINVAL);
  base_options(&o, url);
  o.max_event_bytes = 200;
  o.close_timeout_ms = 0;
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  ASSERT(es_event_new(&ev, "t", "n", NULL) == 0);
  CHECK_EQ_INT(es_publish_event(NULL, ev, on_done, NULL), ES_EINVAL);
  CHECK_EQ_INT(es_publish_event(c, NULL, on_done, NULL), ES_EINVAL);
  CHECK_EQ_INT(es_publish_event(c, ev, on_done, NULL), ES_E2BIG);
  CHECK_EQ_INT(es_publish_event_simple(c, ev, bad, on_done, NULL), ES_EINVAL);
  CHECK_EQ_INT(es_publish_json(c, "t", "n", "{\"a\":", 5, on_done, NULL),
               ES_EPARSE);
  CHECK_EQ_INT(es_publish_json(c, "t", "n", "[1]", 3, on_done, NULL),
               ES_EINVAL);
  CHECK_EQ_INT(
      es_publish_json(c, "t", "n", "{\"a\":\"\xff\"}", 9, on_done, NULL),
      ES_EUTF8);
  CHECK_EQ_INT(es_publish_json(c, "", "n", "{}", 2, on_done, NULL), ES_EINVAL);
  CHECK_EQ_INT(es_publish_json(c, "t", "n\n", "{}", 2, on_done, NULL),
               ES_EINVAL);
  CHECK_EQ_INT(es_client_flush(c, 0, NULL, NULL), ES_EINVAL);
  uv_run(&loop, UV_RUN_NOWAIT);
  CHECK_EQ_INT(T.total, 0); /* refused calls never call back */
  close_client(&loop, c);
  CHECK_EQ_INT(es_client_flush(NULL, 0, on_flush, NULL), ES_EINVAL);
  es_event_free(ev);
  cJSON_Delete(bad);
  CHECK_EQ_INT(close_loop(&loop), 0);
}

int main(void) {
  int fds;
  signal(SIGPIPE, SIG_IGN);
  uv_mutex_init(&tally_lock);
  unsetenv("DAPR_HTTP_ENDPOINT");
  unsetenv("DAPR_API_TOKEN");
  unsetenv("EVENT_STORE_NAME");
  fds = count_fds();
  RUN(test_refusals);
  RUN(test_wire_format_examples);
  RUN(test_fault_fail_every);
  RUN(test_fault_close_every);
  RUN(test_fault_close_every_tiny_tick);
  RUN(test_fault_delay);
  RUN(test_fault_retry_after);
  RUN(test_fault_keepalive_max);
  RUN(test_fault_chunked);
  RUN(test_sidecar_started_late);
  RUN(test_sidecar_killed_and_restarted);
  RUN(test_unregistered_binding);
  RUN(test_wrong_token);
  RUN(test_header_provider);
  RUN(test_overflow_reject_new);
  RUN(test_overflow_drop_oldest);
  RUN(test_queue_bytes_limit);
  RUN(test_close_from_callback);
  RUN(test_flush_with_deadline);
  RUN(test_event_deadline);
  RUN(test_fire_and_forget_logged);
  RUN(test_four_threads);
  RUN(test_four_threads_tiny_tick);
  RUN(test_periodic_stats);
  CHECK_EQ_INT(count_fds(), fds);
  log_reset();
  return TEST_DONE();
}
