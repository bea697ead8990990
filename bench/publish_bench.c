/* publish_bench: the library as a user sees it.
 *
 *   publish_bench throughput URL N CONNS [bulk N] [enrich]
 *       events/s and CPU us/event publishing N events (300 bytes each) to
 *       URL (nginx or es-sidecar), single binding requests or bulk batches;
 *       pre-serialized (es_publish_json) unless "enrich" (full
 *       enrichment and serialization with es_publish_event_simple).
 *   publish_bench caller N
 *       the time of one es_publish_event_simple call, median and p99: on
 *       the loop thread (the loop draining the dry run every 1000 calls,
 *       and again while the queue only grows), from another thread while
 *       the loop runs, and in background mode.
 *   publish_bench stall URL N [loop]
 *       the longest stretch of work (not waiting) in one loop iteration
 *       while another thread publishes N events at full rate, or (loop)
 *       while the loop itself publishes them, 64 per iteration.
 *   publish_bench memory N LIMIT
 *       bytes per queued event with the sidecar down, and peak RSS after
 *       offering N events to a client whose queue limit is LIMIT.
 *
 * Each prints one line "key=value ..." that scripts/bench puts in a table. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <uv.h>

#include "eventstore.h"
#include "nginx.h"
#include "procstat.h"

static const char event300[] =
    "{\"metadata\":{\"application_name\":\"default\",\"created_timestamp\":"
    "1764860000,\"workflow_type\":null,\"workflow_id\":null,"
    "\"workflow_run_id\":null,\"workflow_state\":\"unknown\",\"activity_type\":"
    "null,\"activity_id\":null,\"attempt\":null,\"topic_name\":"
    "\"processor_events\",\"processor_id\":\"kafka-batch-1\"},\"event_type\":"
    "\"processor_events\",\"event_name\":\"batch_processed\",\"data\":{"
    "\"batch_size\":50}}";

static double now_s(void) {
  return (double)uv_hrtime() / 1e9;
}

static long done, failed;
static void on_done(es_client *c, const es_publish_result *r, void *d) {
  (void)c;
  (void)d;
  done++;
  if (r->status != 0)
    failed++;
}

static es_event *make_event(cJSON **custom) {
  es_event *ev;
  cJSON *data = cJSON_Parse("{\"batch_size\":50,\"event_types\":"
                            "[\"orders.created\",\"orders.paid\"]}");
  es_event_new(&ev, "processor_events", "batch_processed", data);
  cJSON_Delete(data);
  *custom = cJSON_Parse("{\"processor_id\":\"kafka-batch-1\"}");
  return ev;
}

/* ---- throughput --------------------------------------------------------- */

typedef struct feeder {
  es_client *c;
  long n, sent;
  int enrich;
  es_event *ev;
  cJSON *custom;
  uv_idle_t idle;
} feeder;

/* Keeps the queue topped up from the loop thread, a slice per iteration. */
static void feed(uv_idle_t *h) {
  feeder *f = h->data;
  int k, rc;
  for (k = 0; k < 2048 && f->sent < f->n; k++) {
    rc = f->enrich
             ? es_publish_event_simple(f->c, f->ev, f->custom, on_done, NULL)
             : es_publish_json(f->c, "processor_events", "batch_processed",
                               event300, sizeof(event300) - 1, on_done, NULL);
    if (rc == ES_EQUEUEFULL)
      break;
    if (rc != 0) {
      fprintf(stderr, "publish: %s\n", es_strerror(rc));
      exit(1);
    }
    f->sent++;
  }
  if (f->sent >= f->n)
    uv_idle_stop(h);
}

static int throughput(const char *url, long n, unsigned conns, unsigned bulk,
                      int enrich) {
  uv_loop_t loop;
  es_client_options o;
  feeder f;
  double t0, c0, t1, c1;

  memset(&f, 0, sizeof(f));
  uv_loop_init(&loop);
  es_client_options_init(&o);
  o.endpoint = url;
  o.max_connections = conns;
  o.pipeline_depth = 32;
  o.check_registration = 0; /* nginx has no /v1.0/metadata */
  o.ready_timeout_ms = 0;
  if (bulk > 1) {
    o.target = ES_TARGET_PUBSUB;
    o.bulk = 1;
    o.bulk_max_events = bulk;
    o.linger_ms = 1;
  }
  if (es_client_init(&loop, &f.c, &o) != 0)
    return 1;
  f.n = n;
  f.enrich = enrich;
  f.ev = make_event(&f.custom);
  uv_idle_init(&loop, &f.idle);
  f.idle.data = &f;
  uv_idle_start(&f.idle, feed);
  t0 = now_s();
  c0 = procstat_cpu_s(RUSAGE_SELF);
  while (done < n)
    uv_run(&loop, UV_RUN_ONCE);
  t1 = now_s();
  c1 = procstat_cpu_s(RUSAGE_SELF);
  uv_close((uv_handle_t *)&f.idle, NULL);
  es_client_close(f.c, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  es_event_free(f.ev);
  cJSON_Delete(f.custom);
  printf("events_per_s=%.0f cpu_us_per_event=%.3f failed=%ld\n",
         (double)n / (t1 - t0), (c1 - c0) / (double)n * 1e6, failed);
  return failed != 0;
}

/* ---- caller cost -------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

typedef struct timing {
  es_client *c;
  long n;
  uint64_t *ns;
  uv_loop_t *drain; /* on the loop thread: run it after every batch */
  uv_async_t done;  /* from another thread: says it has finished */
} timing;

/* Times n calls. With drain set, the caller's loop runs after every 1000
 * calls until the dry run has completed them: the steady state of a loop
 * that publishes as it works. Without, the queue only grows. */
static void time_calls(void *arg) {
  timing *t = arg;
  cJSON *custom;
  es_event *ev = make_event(&custom);
  long i;
  for (i = 0; i < t->n; i++) {
    uint64_t a = uv_hrtime();
    es_publish_event_simple(t->c, ev, custom, NULL, NULL);
    t->ns[i] = uv_hrtime() - a;
    if (t->drain != NULL && i % 1000 == 999) {
      es_stats st;
      do {
        uv_run(t->drain, UV_RUN_NOWAIT);
        es_client_stats(t->c, &st);
      } while (st.queued_events > 0);
    }
  }
  es_event_free(ev);
  cJSON_Delete(custom);
}

static void time_calls_thread(void *arg) {
  timing *t = arg;
  time_calls(t);
  uv_async_send(&t->done);
}

static void timing_done(uv_async_t *a) {
  uv_close((uv_handle_t *)a, NULL);
}

static void percentiles(timing *t, double *med, double *p99) {
  qsort(t->ns, (size_t)t->n, sizeof(uint64_t), cmp_u64);
  *med = t->ns[t->n / 2] / 1e3;
  *p99 = t->ns[t->n * 99 / 100] / 1e3;
}

static int caller(long n) {
  uv_loop_t loop;
  es_client_options o;
  timing t;
  uv_thread_t th;
  double med[4], p99[4];

  uv_loop_init(&loop);
  es_client_options_init(&o);
  o.endpoint = "http://127.0.0.1:9"; /* nothing is sent: dry run */
  o.dry_run = 1;
  o.max_queue_events = (size_t)n + 1;
  o.max_queue_bytes = (size_t)n * 1024;
  es_client_init(&loop, &t.c, &o);
  t.n = n;
  t.ns = calloc((size_t)n, sizeof(uint64_t));
  /* 0: on the loop thread, the loop draining between batches */
  t.drain = &loop;
  time_calls(&t);
  percentiles(&t, &med[0], &p99[0]);
  /* 1: on the loop thread while the queue grows (nothing drains: every
   * new event is fresh memory for the allocator) */
  t.drain = NULL;
  time_calls(&t);
  percentiles(&t, &med[1], &p99[1]);
  uv_run(&loop, UV_RUN_DEFAULT);
  /* 2: from another thread, while the loop runs */
  uv_async_init(&loop, &t.done, timing_done);
  uv_thread_create(&th, time_calls_thread, &t);
  uv_run(&loop, UV_RUN_DEFAULT); /* until the thread's async closes */
  uv_thread_join(&th);
  uv_run(&loop, UV_RUN_DEFAULT);
  percentiles(&t, &med[2], &p99[2]);
  es_client_close(t.c, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  /* 3: background mode: the caller has no loop; the library's thread runs */
  if (es_client_start_background(&t.c, &o, ES_DELIVER_BY_POLL) != 0)
    return 1;
  time_calls(&t);
  percentiles(&t, &med[3], &p99[3]);
  es_client_close_sync(t.c, 10000);
  printf("loop_median_us=%.3f loop_p99_us=%.3f grow_median_us=%.3f "
         "grow_p99_us=%.3f thread_median_us=%.3f thread_p99_us=%.3f "
         "bg_median_us=%.3f bg_p99_us=%.3f\n",
         med[0], p99[0], med[1], p99[1], med[2], p99[2], med[3], p99[3]);
  free(t.ns);
  return 0;
}

/* ---- loop stall --------------------------------------------------------- */

typedef struct stall {
  uv_loop_t *loop;
  uint64_t last_check_ns, last_idle_ns, max_ns, max_quiet_ns;
  uint64_t last_cpu_ns, max_cpu_ns;
  uint64_t feed_ns, feed_cpu_ns; /* the caller's own publishing, to leave out */
  long last_nivcsw, preempted, iterations;
  uint64_t *busy_ns; /* every iteration's busy time, for the p99 */
  long n_busy, cap_busy;
  int started;
} stall;

static uint64_t thread_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static long thread_nivcsw(void) {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_nivcsw;
}

/* Per loop iteration, from one check handle to the next, leaving out the
 * time the caller spent in its own publish calls (loop mode):
 * - busy: wall time minus the time libuv spent waiting in poll;
 * - cpu: the loop thread's CPU time (the work without the time the thread
 *   was preempted: 2 cores shared with nginx and, in thread mode, the
 *   publishing thread);
 * - whether the thread was preempted (involuntary context switches): the
 *   busy time of iterations that were not is the stall as the loop saw it,
 *   kernel work in the library's syscalls included. */
static void on_check(uv_check_t *h) {
  stall *s = h->data;
  uint64_t now = uv_hrtime(), idle = uv_metrics_idle_time(s->loop);
  uint64_t cpu = thread_cpu_ns();
  long nivcsw = thread_nivcsw();
  if (s->started) {
    uint64_t busy = (now - s->last_check_ns) - (idle - s->last_idle_ns);
    uint64_t work = cpu - s->last_cpu_ns;
    busy = busy > s->feed_ns ? busy - s->feed_ns : 0;
    work = work > s->feed_cpu_ns ? work - s->feed_cpu_ns : 0;
    s->iterations++;
    if (busy > s->max_ns)
      s->max_ns = busy;
    if (nivcsw != s->last_nivcsw)
      s->preempted++;
    else if (busy > s->max_quiet_ns)
      s->max_quiet_ns = busy;
    if (work > s->max_cpu_ns)
      s->max_cpu_ns = work;
    if (s->n_busy < s->cap_busy)
      s->busy_ns[s->n_busy++] = busy;
  }
  s->started = 1;
  s->feed_ns = s->feed_cpu_ns = 0;
  s->last_check_ns = now;
  s->last_idle_ns = idle;
  s->last_cpu_ns = cpu;
  s->last_nivcsw = nivcsw;
}

typedef struct pubthread {
  es_client *c;
  long n;
} pubthread;

static void publisher(void *arg) {
  pubthread *p = arg;
  long i = 0;
  while (i < p->n) {
    int rc = es_publish_json(p->c, "processor_events", "batch_processed",
                             event300, sizeof(event300) - 1, on_done, NULL);
    if (rc == 0)
      i++;
    else if (rc == ES_EQUEUEFULL)
      uv_sleep(1);
    else
      exit(1);
  }
}

/* Loop mode: the caller publishes from its loop, 64 events per iteration
 * (a busy server emitting events as it works), timed so that its own calls
 * are left out of the library's stall. */
typedef struct stall_feeder {
  es_client *c;
  long n, sent;
  stall *s;
  uv_idle_t idle;
} stall_feeder;

static void stall_feed(uv_idle_t *h) {
  stall_feeder *f = h->data;
  uint64_t t0 = uv_hrtime(), c0 = thread_cpu_ns();
  int k;
  for (k = 0; k < 64 && f->sent < f->n; k++) {
    int rc = es_publish_json(f->c, "processor_events", "batch_processed",
                             event300, sizeof(event300) - 1, on_done, NULL);
    if (rc == ES_EQUEUEFULL)
      break;
    if (rc != 0)
      exit(1);
    f->sent++;
  }
  if (f->sent >= f->n)
    uv_idle_stop(h);
  f->s->feed_cpu_ns += thread_cpu_ns() - c0;
  f->s->feed_ns += uv_hrtime() - t0;
}

static void keep(uv_timer_t *t) {
  (void)t;
}

static int loop_stall(const char *url, long n, int from_loop) {
  uv_loop_t loop;
  es_client_options o;
  es_client *c;
  uv_check_t check;
  uv_timer_t keepalive;
  uv_thread_t th;
  pubthread p;
  stall_feeder f;
  stall s;

  memset(&s, 0, sizeof(s));
  s.cap_busy = 4 * n;
  s.busy_ns = calloc((size_t)s.cap_busy, sizeof(uint64_t));
  uv_loop_init(&loop);
  uv_loop_configure(&loop, UV_METRICS_IDLE_TIME);
  s.loop = &loop;
  es_client_options_init(&o);
  o.endpoint = url;
  o.check_registration = 0;
  o.ready_timeout_ms = 0;
  o.max_connections = 8;
  o.pipeline_depth = 32;
  if (getenv("T"))
    o.max_tick_us = atoi(getenv("T"));
  es_client_init(&loop, &c, &o);
  uv_check_init(&loop, &check);
  check.data = &s;
  uv_check_start(&check, on_check);
  uv_timer_init(&loop, &keepalive);
  uv_timer_start(&keepalive, keep, 50, 50);
  if (from_loop) {
    memset(&f, 0, sizeof(f));
    f.c = c;
    f.n = n;
    f.s = &s;
    uv_idle_init(&loop, &f.idle);
    f.idle.data = &f;
    uv_idle_start(&f.idle, stall_feed);
  } else {
    p.c = c;
    p.n = n;
    uv_thread_create(&th, publisher, &p);
  }
  while (done < n)
    uv_run(&loop, UV_RUN_ONCE);
  if (from_loop)
    uv_close((uv_handle_t *)&f.idle, NULL);
  else
    uv_thread_join(&th);
  uv_close((uv_handle_t *)&check, NULL);
  uv_close((uv_handle_t *)&keepalive, NULL);
  es_client_close(c, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  qsort(s.busy_ns, (size_t)s.n_busy, sizeof(uint64_t), cmp_u64);
  printf("max_loop_stall_us=%.1f p99_loop_stall_us=%.1f "
         "p999_loop_stall_us=%.1f max_unpreempted_stall_us=%.1f "
         "max_loop_cpu_us=%.1f iterations=%ld preempted=%ld events=%ld "
         "failed=%ld\n",
         s.max_ns / 1e3, s.n_busy ? s.busy_ns[s.n_busy * 99 / 100] / 1e3 : 0.0,
         s.n_busy ? s.busy_ns[s.n_busy * 999 / 1000] / 1e3 : 0.0,
         s.max_quiet_ns / 1e3, s.max_cpu_ns / 1e3, s.iterations, s.preempted, n,
         failed);
  free(s.busy_ns);
  return 0;
}

/* ---- memory ------------------------------------------------------------- */

static int memory(long n, long limit) {
  uv_loop_t loop;
  es_client_options o;
  es_client *c;
  es_stats st;
  long i, accepted = 0, rejected = 0, before, after;
  double per_event_rss, per_event_overhead;

  uv_loop_init(&loop);
  es_client_options_init(&o);
  o.endpoint = "http://127.0.0.1:9"; /* discard port: nobody listens */
  o.max_queue_events = (size_t)limit;
  o.max_queue_bytes = (size_t)1 << 40;
  o.ready_timeout_ms = 600000; /* events wait: the sidecar is "down" */
  o.close_timeout_ms = 0;
  es_client_init(&loop, &c, &o);
  before = procstat_rss_kb();
  for (i = 0; i < n; i++) {
    int rc = es_publish_json(c, "processor_events", "batch_processed", event300,
                             sizeof(event300) - 1, on_done, NULL);
    if (rc == 0)
      accepted++;
    else if (rc == ES_EQUEUEFULL)
      rejected++;
    if (i == limit - 1) {
      after = procstat_rss_kb();
      es_client_stats(c, &st);
      per_event_rss = (double)(after - before) * 1024 / (double)accepted;
      per_event_overhead = (double)st.queued_bytes / (double)st.queued_events -
                           (double)(sizeof(event300) - 1);
      printf("queued=%llu bytes_per_event_rss=%.0f serialized_bytes=%zu "
             "queue_bytes_per_event=%.0f\n",
             (unsigned long long)st.queued_events, per_event_rss,
             sizeof(event300) - 1 + 8,
             per_event_overhead + (double)(sizeof(event300) - 1));
    }
  }
  printf("offered=%ld accepted=%ld rejected=%ld peak_rss_mb=%.1f\n", n,
         accepted, rejected, procstat_peak_rss_kb() / 1024.0);
  es_client_close(c, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return 0;
}

int main(int argc, char **argv) {
  /* URL "nginx": start Debian's nginx (answering 204) for this run. */
  static nginx ngx;
  static char url[64];
  int rc;
  if (argc >= 3 && strcmp(argv[2], "nginx") == 0 &&
      (strcmp(argv[1], "throughput") == 0 || strcmp(argv[1], "stall") == 0)) {
    if (nginx_start(&ngx, NULL) != 0) {
      fprintf(stderr, "nginx not available (scripts/install-deps --bench)\n");
      return 1;
    }
    snprintf(url, sizeof(url), "http://127.0.0.1:%d", ngx.port);
    argv[2] = url;
    rc = main(argc, argv);
    nginx_stop(&ngx);
    return rc;
  }
  if (argc >= 5 && strcmp(argv[1], "throughput") == 0) {
    unsigned bulk = 1;
    int enrich = 0, i;
    for (i = 5; i < argc; i++) {
      if (strcmp(argv[i], "bulk") == 0 && i + 1 < argc)
        bulk = (unsigned)atoi(argv[++i]);
      else if (strcmp(argv[i], "enrich") == 0)
        enrich = 1;
    }
    return throughput(argv[2], atol(argv[3]), (unsigned)atoi(argv[4]), bulk,
                      enrich);
  }
  if (argc == 3 && strcmp(argv[1], "caller") == 0)
    return caller(atol(argv[2]));
  if ((argc == 4 || argc == 5) && strcmp(argv[1], "stall") == 0)
    return loop_stall(argv[2], atol(argv[3]),
                      argc == 5 && strcmp(argv[4], "loop") == 0);
  if (argc == 4 && strcmp(argv[1], "memory") == 0)
    return memory(atol(argv[2]), atol(argv[3]));
  fprintf(stderr, "usage: see the comment at the top of publish_bench.c\n");
  return 2;
}
