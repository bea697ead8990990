/* Chaos: 100,000 events through es-sidecar while it drops connections,
 * fails, delays, answers 429 with Retry-After, and is SIGKILLed and
 * restarted several times. Asserts: one callback per accepted event; every
 * event reported delivered is in the sidecar's output (no acknowledged
 * event lost); an event recorded twice had more than one attempt
 * (duplicates only follow a failure after the request was written); the
 * queue and RSS stay within bounds.
 *
 * Soak mode (not in CI): ES_SOAK_SECONDS=3600 publishes at a steady rate
 * for that long and prints RSS and open descriptors every minute. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <uv.h>

#include "eventstore.h"
#include "peer.h"
#include "procstat.h"
#include "sidecar_proc.h"
#include "test.h"

#define N_EVENTS 100000
#define QUEUE_LIMIT 20000

static unsigned char calls[N_EVENTS];
static unsigned char attempts_of[N_EVENTS];
static int status_of[N_EVENTS];
static long total, accepted, next_i;
static long soak_sent, soak_done, soak_failed;
static int soak;

typedef struct chaos {
  uv_loop_t loop;
  es_client *c;
  sidecar_proc p;
  uv_timer_t feed, killer, sampler;
  int kills, down;
  long max_rss_kb, base_rss_kb;
  uint64_t max_queued;
  uint64_t start_ns, soak_until_ns, next_report_ns;
} chaos;

static const char *const sidecar_args[] = {"--close-every",
                                           "97",
                                           "--fail-every",
                                           "43",
                                           "--delay-ms",
                                           "1",
                                           "--retry-after-every",
                                           "1009",
                                           NULL};

static void on_done(es_client *c, const es_publish_result *r, void *data) {
  long i = (long)(intptr_t)data;
  (void)c;
  if (soak) {
    soak_done++;
    soak_failed += r->status != 0;
    return;
  }
  if (calls[i] < 255)
    calls[i]++;
  status_of[i] = r->status;
  attempts_of[i] = r->attempts > 255 ? 255 : (unsigned char)r->attempts;
  total++;
}

static void feed_cb(uv_timer_t *t) {
  chaos *x = t->data;
  int k, burst = soak ? 20 : 2000;
  for (k = 0; k < burst; k++) {
    char json[96];
    long i = soak ? soak_sent : next_i;
    int n, rc;
    if (!soak && next_i >= N_EVENTS) {
      uv_timer_stop(t);
      return;
    }
    if (soak && uv_hrtime() >= x->soak_until_ns) {
      uv_timer_stop(t);
      return;
    }
    n = snprintf(json, sizeof(json),
                 "{\"event_type\":\"chaos\",\"event_name\":\"e\","
                 "\"data\":{\"i\":%ld}}",
                 i);
    rc = es_publish_json(x->c, "chaos", "e", json, (size_t)n, on_done,
                         (void *)(intptr_t)i);
    if (rc == ES_EQUEUEFULL)
      return; /* bounded: try again next tick */
    if (rc != 0) {
      fprintf(stderr, "publish: %s\n", es_strerror(rc));
      return;
    }
    if (soak)
      soak_sent++;
    else {
      accepted++;
      next_i++;
    }
  }
}

/* Kill the sidecar, bring it back 300 ms later, several times. */
static void killer_cb(uv_timer_t *t) {
  chaos *x = t->data;
  if (!x->down) {
    if (!soak && x->kills >= 5)
      return;
    sidecar_proc_kill(&x->p);
    x->down = 1;
    x->kills++;
    uv_timer_start(t, killer_cb, 300, 0);
  } else {
    if (sidecar_proc_start(&x->p, x->p.port, sidecar_args) != 0)
      fprintf(stderr, "could not restart es-sidecar\n");
    x->down = 0;
    uv_timer_start(t, killer_cb, soak ? 60000 : 1500, 0);
  }
}

static int count_open_fds(void) {
  return count_fds();
}

static void sampler_cb(uv_timer_t *t) {
  chaos *x = t->data;
  es_stats st;
  long r = procstat_rss_kb();
  es_client_stats(x->c, &st);
  if (r > x->max_rss_kb)
    x->max_rss_kb = r;
  if (st.queued_events > x->max_queued)
    x->max_queued = st.queued_events;
  if (soak && uv_hrtime() >= x->next_report_ns) {
    x->next_report_ns += 60ULL * 1000000000ULL;
    printf("soak t=%4.0fs rss=%ld KB fds=%d sent=%ld done=%ld failed=%ld "
           "queued=%llu retries=%llu kills=%d\n",
           (uv_hrtime() - x->start_ns) / 1e9, r, count_open_fds(), soak_sent,
           soak_done, soak_failed, (unsigned long long)st.queued_events,
           (unsigned long long)st.retries, x->kills);
    fflush(stdout);
  }
}

static int closed;
static void on_closed(es_client *c) {
  (void)c;
  closed = 1;
}

static int read_seen(const char *path, unsigned char *seen) {
  FILE *f = fopen(path, "r");
  char *line = NULL;
  size_t cap = 0;
  int lines = 0;
  if (f == NULL)
    return 0;
  while (getline(&line, &cap, f) > 0) {
    /* lines look like ...{"data":{"i":123}}... */
    char *p = strstr(line, "\"i\":");
    lines++;
    if (p != NULL) {
      long i = strtol(p + 4, NULL, 10);
      if (i >= 0 && i < N_EVENTS && seen[i] < 255)
        seen[i]++;
    }
  }
  free(line);
  fclose(f);
  return lines;
}

static void test_chaos(void) {
  static chaos x;
  static unsigned char seen[N_EVENTS];
  es_client_options o;
  char url[64];
  long i, once = 0, lost = 0, dup = 0, dup_bad = 0, failed = 0, not_once = 0;
  double secs;
  int fds;
  long soak_seconds = getenv("ES_SOAK_SECONDS")
                          ? strtol(getenv("ES_SOAK_SECONDS"), NULL, 10)
                          : 0;

  soak = soak_seconds > 0;
  memset(&x, 0, sizeof(x));
  fds = count_fds();
  ASSERT(sidecar_proc_start(&x.p, 0, sidecar_args) == 0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", x.p.port);
  uv_loop_init(&x.loop);
  es_client_options_init(&o);
  o.endpoint = url;
  o.max_queue_events = QUEUE_LIMIT;
  o.max_queue_bytes = 16 * 1024 * 1024;
  o.max_attempts = 0; /* until the deadline */
  o.event_timeout_ms = 90000;
  o.retry_backoff_ms = 5;
  o.retry_backoff_max_ms = 200;
  o.max_connections = 4;
  o.pipeline_depth = 8;
  o.log_level = ES_LOG_ERROR;
  ASSERT(es_client_init(&x.loop, &x.c, &o) == 0);
  x.start_ns = uv_hrtime();
  x.soak_until_ns = x.start_ns + (uint64_t)soak_seconds * 1000000000ULL;
  x.next_report_ns = x.start_ns;
  x.base_rss_kb = procstat_rss_kb();
  uv_timer_init(&x.loop, &x.feed);
  uv_timer_init(&x.loop, &x.killer);
  uv_timer_init(&x.loop, &x.sampler);
  x.feed.data = x.killer.data = x.sampler.data = &x;
  uv_timer_start(&x.feed, feed_cb, 0, soak ? 10 : 1);
  uv_timer_start(&x.killer, killer_cb, soak ? 60000 : 700, 0);
  uv_timer_start(&x.sampler, sampler_cb, 50, soak ? 1000 : 50);
  if (soak) {
    while (uv_hrtime() < x.soak_until_ns || soak_done < soak_sent)
      uv_run(&x.loop, UV_RUN_ONCE);
  } else {
    while (total < N_EVENTS &&
           (uv_hrtime() - x.start_ns) < 110ULL * 1000000000ULL)
      uv_run(&x.loop, UV_RUN_ONCE);
  }
  secs = (uv_hrtime() - x.start_ns) / 1e9;
  uv_close((uv_handle_t *)&x.feed, NULL);
  uv_close((uv_handle_t *)&x.killer, NULL);
  uv_close((uv_handle_t *)&x.sampler, NULL);
  if (x.down)
    sidecar_proc_start(&x.p, x.p.port, sidecar_args);
  es_client_close(x.c, on_closed);
  while (!closed)
    uv_run(&x.loop, UV_RUN_ONCE);
  CHECK_EQ_INT(close_loop(&x.loop), 0);
  sidecar_proc_stop(&x.p);
  if (soak) {
    printf("soak done: %.0f s, %ld sent, %ld completed, %ld failed, %d kills, "
           "max RSS %ld KB, fds %d -> %d\n",
           secs, soak_sent, soak_done, soak_failed, x.kills, x.max_rss_kb, fds,
           count_fds());
    CHECK_EQ_INT(soak_done, soak_sent);
    CHECK_EQ_INT(count_fds(), fds);
    sidecar_proc_cleanup(&x.p);
    return;
  }
  memset(seen, 0, sizeof(seen));
  read_seen(x.p.out, seen);
  for (i = 0; i < N_EVENTS; i++) {
    if (calls[i] == 1)
      once++;
    else
      not_once++;
    if (status_of[i] != 0)
      failed++;
    if (status_of[i] == 0 && seen[i] == 0)
      lost++;
    if (seen[i] > 1) {
      dup++;
      if (attempts_of[i] < 2)
        dup_bad++;
    }
  }
  fprintf(stderr,
          "chaos: %ld accepted, %ld callbacks (%ld exactly once), %ld failed, "
          "%ld acknowledged but missing, %ld duplicates (%ld without a retry), "
          "%d sidecar kills, max queued %llu (limit %d), RSS %ld -> max %ld "
          "KB, %.1f s\n",
          accepted, total, once, failed, lost, dup, dup_bad, x.kills,
          (unsigned long long)x.max_queued, QUEUE_LIMIT, x.base_rss_kb,
          x.max_rss_kb, secs);
  CHECK_EQ_INT(accepted, N_EVENTS);
  CHECK_EQ_INT(total, accepted);
  CHECK_EQ_INT(not_once, 0);
  CHECK_EQ_INT(lost, 0);
  CHECK_EQ_INT(dup_bad, 0);
  CHECK_EQ_INT(failed, 0);
  CHECK(x.kills >= 3);
  CHECK(x.max_queued <= QUEUE_LIMIT);
  CHECK(x.max_rss_kb - x.base_rss_kb < 64 * 1024);
  CHECK_EQ_INT(count_fds(), fds);
  sidecar_proc_cleanup(&x.p);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  RUN(test_chaos);
  return TEST_DONE();
}
