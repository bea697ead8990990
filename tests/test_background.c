/* Background mode: exactly one completion per accepted event in both
 * delivery modes with several publishing threads; the descriptor wakes a
 * poll(2) loop; sync flush and close honour their timeouts with the sidecar
 * down; sync calls from inside a completion are refused, not deadlocked; no
 * thread or descriptor is left after close. The sidecar is an es-sidecar
 * process. */
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include <uv.h>

#include "eventstore.h"
#include "nginx.h"
#include "peer.h"
#include "sidecar_proc.h"
#include "test.h"

#define THREADS 4
#define PER_THREAD 2500
#define N (THREADS * PER_THREAD)

static int calls[N], status_of[N];
static uv_mutex_t lock;
static int total, busy_close, busy_flush;
static uv_thread_t main_thread;

static int count_threads(void) {
  DIR *d = opendir("/proc/self/task");
  struct dirent *e;
  int n = 0;
  while (d && (e = readdir(d)) != NULL)
    n += e->d_name[0] != '.';
  if (d)
    closedir(d);
  return n;
}

static void on_done(es_client *c, const es_publish_result *r, void *data) {
  int i = (int)(intptr_t)data;
  (void)c;
  uv_mutex_lock(&lock);
  calls[i]++;
  status_of[i] = r->status;
  total++;
  uv_mutex_unlock(&lock);
}

typedef struct worker {
  es_client *c;
  int first, refused;
} worker;

static void worker_main(void *arg) {
  worker *w = arg;
  int i;
  for (i = w->first; i < w->first + PER_THREAD; i++) {
    char json[96];
    int n = snprintf(json, sizeof(json),
                     "{\"event_type\":\"bg\",\"event_name\":\"e\","
                     "\"data\":{\"i\":%d}}",
                     i);
    int rc;
    while ((rc = es_publish_json(w->c, "bg", "e", json, (size_t)n, on_done,
                                 (void *)(intptr_t)i)) == ES_EQUEUEFULL)
      uv_sleep(1);
    if (rc != 0)
      w->refused++;
  }
}

static int total_now(void) {
  int t;
  uv_mutex_lock(&lock);
  t = total;
  uv_mutex_unlock(&lock);
  return t;
}

static void reset(void) {
  memset(calls, 0, sizeof(calls));
  memset(status_of, 0, sizeof(status_of));
  total = 0;
}

static void options(es_client_options *o, const char *url) {
  es_client_options_init(o);
  o->endpoint = url;
  o->retry_backoff_ms = 5;
  o->retry_backoff_max_ms = 50;
}

static void run_mode(es_delivery delivery) {
  sidecar_proc p;
  es_client *c;
  es_client_options o;
  uv_thread_t th[THREADS];
  worker w[THREADS];
  char url[64];
  int i, bad = 0, fds = count_fds(), threads = count_threads();

  reset();
  memset(&p, 0, sizeof(p));
  ASSERT(sidecar_proc_start(&p, 0, NULL) == 0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", p.port);
  options(&o, url);
  ASSERT(es_client_start_background(&c, &o, delivery) == 0);
  CHECK_EQ_INT(count_threads(), threads + 1);
  if (delivery == ES_DELIVER_BY_POLL)
    CHECK(es_client_fd(c) >= 0);
  else
    CHECK_EQ_INT(es_client_fd(c), ES_EINVAL);
  for (i = 0; i < THREADS; i++) {
    w[i].c = c;
    w[i].first = i * PER_THREAD;
    w[i].refused = 0;
    uv_thread_create(&th[i], worker_main, &w[i]);
  }
  if (delivery == ES_DELIVER_BY_POLL) {
    /* the caller's own loop: poll(2) on the descriptor */
    struct pollfd pfd = {es_client_fd(c), POLLIN, 0};
    uint64_t start = uv_hrtime();
    while (total_now() < N && uv_hrtime() - start < 20000000000ULL) {
      int ready = poll(&pfd, 1, 1000);
      if (ready > 0)
        CHECK(es_client_poll(c, 100) > 0 || total_now() == N);
    }
    /* drained: the descriptor is not readable any more */
    pfd.revents = 0;
    CHECK_EQ_INT(poll(&pfd, 1, 0), 0);
  } else {
    uint64_t start = uv_hrtime();
    while (total_now() < N && uv_hrtime() - start < 20000000000ULL)
      uv_sleep(5);
    CHECK_EQ_INT(es_client_poll(c, 0), ES_EINVAL);
  }
  for (i = 0; i < THREADS; i++) {
    uv_thread_join(&th[i]);
    CHECK_EQ_INT(w[i].refused, 0);
  }
  CHECK_EQ_INT(es_client_flush_sync(c, 5000), 0);
  CHECK_EQ_INT(es_client_close_sync(c, 5000), 0);
  for (i = 0; i < N; i++)
    bad += calls[i] != 1 || status_of[i] != 0;
  CHECK_EQ_INT(bad, 0);
  CHECK_EQ_INT(total_now(), N);
  CHECK_EQ_INT(sidecar_proc_lines(&p), N);
  sidecar_proc_cleanup(&p);
  CHECK_EQ_INT(count_threads(), threads);
  CHECK_EQ_INT(count_fds(), fds);
}

static void test_library_thread_delivery(void) {
  run_mode(ES_DELIVER_ON_LIBRARY_THREAD);
}

static void test_poll_delivery(void) {
  run_mode(ES_DELIVER_BY_POLL);
}

/* Sidecar down: flush_sync and close_sync return at their timeouts. */
static void test_sync_timeouts_sidecar_down(void) {
  es_client *c;
  es_client_options o;
  char url[64];
  uint64_t t0, ms;
  int i, fds = count_fds(), threads = count_threads();

  reset();
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", free_port());
  options(&o, url);
  o.ready_timeout_ms = 0;
  ASSERT(es_client_start_background(&c, &o, ES_DELIVER_BY_POLL) == 0);
  for (i = 0; i < 10; i++)
    CHECK_EQ_INT(
        es_publish_json(c, "t", "n", "{}", 2, on_done, (void *)(intptr_t)i), 0);
  t0 = uv_hrtime();
  CHECK_EQ_INT(es_client_flush_sync(c, 200), ES_ETIMEDOUT);
  ms = (uv_hrtime() - t0) / 1000000;
  CHECK(ms >= 190 && ms < 700);
  t0 = uv_hrtime();
  CHECK_EQ_INT(es_client_close_sync(c, 300), ES_ETIMEDOUT);
  ms = (uv_hrtime() - t0) / 1000000;
  CHECK(ms >= 290 && ms < 1000);
  fprintf(stderr,
          "sidecar down: flush_sync(200) and close_sync(300) took "
          "their time; close %llu ms\n",
          (unsigned long long)ms);
  /* close_sync ran the waiting completions on this thread */
  CHECK_EQ_INT(total_now(), 10);
  for (i = 0; i < 10; i++)
    CHECK_EQ_INT(status_of[i], ES_ECANCELED);
  CHECK_EQ_INT(count_threads(), threads);
  CHECK_EQ_INT(count_fds(), fds);
}

/* From inside a completion: refused with ES_EBUSY, never a deadlock. */
static void refusing_cb(es_client *c, const es_publish_result *r, void *d) {
  int bc = es_client_close_sync(c, 1000), bf = es_client_flush_sync(c, 1000);
  uv_mutex_lock(&lock);
  busy_close = bc;
  busy_flush = bf;
  uv_mutex_unlock(&lock);
  on_done(c, r, d);
}

static void refuse_mode(es_delivery delivery) {
  sidecar_proc p;
  es_client *c;
  es_client_options o;
  char url[64];

  reset();
  busy_close = busy_flush = 0;
  memset(&p, 0, sizeof(p));
  ASSERT(sidecar_proc_start(&p, 0, NULL) == 0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", p.port);
  options(&o, url);
  ASSERT(es_client_start_background(&c, &o, delivery) == 0);
  CHECK_EQ_INT(es_publish_json(c, "t", "n", "{}", 2, refusing_cb, (void *)0),
               0);
  if (delivery == ES_DELIVER_BY_POLL) {
    struct pollfd pfd = {es_client_fd(c), POLLIN, 0};
    CHECK_EQ_INT(poll(&pfd, 1, 5000), 1);
    CHECK_EQ_INT(es_client_poll(c, 0), 1);
  } else {
    CHECK_EQ_INT(es_client_flush_sync(c, 5000), 0);
  }
  CHECK_EQ_INT(total_now(), 1);
  uv_mutex_lock(&lock);
  CHECK_EQ_INT(busy_close, ES_EBUSY);
  CHECK_EQ_INT(busy_flush, ES_EBUSY);
  uv_mutex_unlock(&lock);
  CHECK_EQ_INT(es_client_close_sync(c, 5000), 0);
  sidecar_proc_cleanup(&p);
}

static void test_sync_from_callback_refused(void) {
  refuse_mode(ES_DELIVER_ON_LIBRARY_THREAD);
  refuse_mode(ES_DELIVER_BY_POLL);
}

/* Every descriptor the library opens (sockets, eventfd, loop internals) is
 * close-on-exec: a child the program starts inherits none of them. */
static void test_descriptors_cloexec(void) {
  sidecar_proc p;
  es_client *c;
  es_client_options o;
  char url[64];
  DIR *d;
  struct dirent *e;
  int checked = 0, leaky = 0;
  static unsigned char before[65536];

  /* only descriptors opened from here on count: the environment's own
   * (inherited from whoever started the test) are not ours to judge */
  memset(before, 0, sizeof(before));
  d = opendir("/proc/self/fd");
  while (d && (e = readdir(d)) != NULL)
    if (e->d_name[0] != '.' && atoi(e->d_name) < 65536)
      before[atoi(e->d_name)] = 1;
  if (d)
    closedir(d);
  reset();
  memset(&p, 0, sizeof(p));
  ASSERT(sidecar_proc_start(&p, 0, NULL) == 0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", p.port);
  options(&o, url);
  ASSERT(es_client_start_background(&c, &o, ES_DELIVER_BY_POLL) == 0);
  CHECK_EQ_INT(es_publish_json(c, "t", "n", "{}", 2, on_done, (void *)0), 0);
  CHECK_EQ_INT(es_client_flush_sync(c, 5000), 0); /* a connection is open */
  d = opendir("/proc/self/fd");
  while (d && (e = readdir(d)) != NULL) {
    int fd = atoi(e->d_name), flags;
    if (e->d_name[0] == '.' || fd == dirfd(d) || (fd < 65536 && before[fd]))
      continue;
    flags = fcntl(fd, F_GETFD);
    checked++;
    if (flags >= 0 && !(flags & FD_CLOEXEC)) {
      fprintf(stderr, "descriptor %d is not close-on-exec\n", fd);
      leaky++;
    }
  }
  if (d)
    closedir(d);
  CHECK(checked >= 3); /* eventfd, epoll, the connection, ... */
  CHECK_EQ_INT(leaky, 0);
  es_client_poll(c, 0);
  CHECK_EQ_INT(es_client_close_sync(c, 5000), 0);
  sidecar_proc_cleanup(&p);
}

static void test_misuse(void) {
  uv_loop_t loop;
  es_client *c;
  es_client_options o;

  CHECK_EQ_INT(es_client_start_background(NULL, NULL, ES_DELIVER_BY_POLL),
               ES_EINVAL);
  CHECK_EQ_INT(es_client_start_background(&c, NULL, (es_delivery)7), ES_EINVAL);
  options(&o, "https://127.0.0.1:1");
  CHECK_EQ_INT(es_client_start_background(&c, &o, ES_DELIVER_BY_POLL),
               ES_EUNSUPPORTED);
  /* an embedded client is not a background one */
  uv_loop_init(&loop);
  options(&o, "http://127.0.0.1:1");
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  CHECK_EQ_INT(es_client_poll(c, 0), ES_EINVAL);
  CHECK_EQ_INT(es_client_flush_sync(c, 10), ES_EINVAL);
  CHECK_EQ_INT(es_client_close_sync(c, 10), ES_EINVAL);
  es_client_close(c, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  CHECK_EQ_INT(uv_loop_close(&loop), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  uv_mutex_init(&lock);
  main_thread = uv_thread_self();
  unsetenv("DAPR_HTTP_ENDPOINT");
  RUN(test_misuse);
  RUN(test_library_thread_delivery);
  RUN(test_poll_delivery);
  RUN(test_sync_timeouts_sidecar_down);
  RUN(test_sync_from_callback_refused);
  RUN(test_descriptors_cloexec);
  return TEST_DONE();
}
