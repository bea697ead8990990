/* curl_bench: the usual alternative a C programmer would reach for, measured
 * like the library: N POSTs of the same 300-byte binding body with
 * libcurl's multi_socket interface on a libuv loop, C connections kept
 * alive (libcurl does not pipeline HTTP/1.1), events/s and CPU us/event.
 *
 *   curl_bench URL N CONNS      (URL "nginx": start nginx for the run) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <uv.h>

#include "body300.h"
#include "nginx.h"
#include "procstat.h"

typedef struct sock_ctx {
  uv_poll_t poll;
  curl_socket_t fd;
} sock_ctx;

static uv_loop_t loop;
static uv_timer_t timeout;
static CURLM *multi;
static struct curl_slist *headers;
static char url[256];
static long n_total, started, done, failed;

static size_t discard(char *p, size_t s, size_t n, void *u) {
  (void)p;
  (void)u;
  return s * n;
}

static void start_one(CURL *e) {
  if (e == NULL) {
    e = curl_easy_init();
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body300);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)sizeof(body300) - 1);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
  }
  started++;
  curl_multi_add_handle(multi, e);
}

static void check_done(void) {
  CURLMsg *m;
  int pending;
  while ((m = curl_multi_info_read(multi, &pending)) != NULL) {
    if (m->msg == CURLMSG_DONE) {
      CURL *e = m->easy_handle;
      long code = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
      if (m->data.result != CURLE_OK || code >= 300)
        failed++;
      done++;
      curl_multi_remove_handle(multi, e);
      if (started < n_total)
        start_one(e); /* the same handle: its connection is reused */
      else
        curl_easy_cleanup(e);
    }
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  sock_ctx *c = h->data;
  int flags = 0, running;
  if (status < 0)
    flags = CURL_CSELECT_ERR;
  if (events & UV_READABLE)
    flags |= CURL_CSELECT_IN;
  if (events & UV_WRITABLE)
    flags |= CURL_CSELECT_OUT;
  curl_multi_socket_action(multi, c->fd, flags, &running);
  check_done();
}

static void on_timeout(uv_timer_t *t) {
  int running;
  (void)t;
  curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done();
}

static int timer_cb(CURLM *m, long ms, void *u) {
  (void)m;
  (void)u;
  if (ms < 0)
    uv_timer_stop(&timeout);
  else
    uv_timer_start(&timeout, on_timeout, (uint64_t)ms, 0);
  return 0;
}

static void free_ctx(uv_handle_t *h) {
  free(h->data);
}

static int socket_cb(CURL *e, curl_socket_t s, int action, void *u,
                     void *socketp) {
  sock_ctx *c = socketp;
  (void)e;
  (void)u;
  if (action == CURL_POLL_REMOVE) {
    if (c != NULL) {
      uv_poll_stop(&c->poll);
      uv_close((uv_handle_t *)&c->poll, free_ctx);
      curl_multi_assign(multi, s, NULL);
    }
    return 0;
  }
  if (c == NULL) {
    c = calloc(1, sizeof(*c));
    c->fd = s;
    uv_poll_init_socket(&loop, &c->poll, s);
    c->poll.data = c;
    curl_multi_assign(multi, s, c);
  }
  uv_poll_start(&c->poll,
                ((action & CURL_POLL_IN) ? UV_READABLE : 0) |
                    ((action & CURL_POLL_OUT) ? UV_WRITABLE : 0),
                on_poll);
  return 0;
}

int main(int argc, char **argv) {
  nginx ngx;
  long conns, i;
  double t0, c0, t1, c1;

  if (argc != 4) {
    fprintf(stderr, "usage: curl_bench URL|nginx N CONNS\n");
    return 2;
  }
  if (strcmp(argv[1], "nginx") == 0) {
    if (nginx_start(&ngx, NULL) != 0)
      return 1;
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/v1.0/bindings/eventstore",
             ngx.port);
  } else {
    snprintf(url, sizeof(url), "%s", argv[1]);
  }
  n_total = atol(argv[2]);
  conns = atol(argv[3]);
  curl_global_init(CURL_GLOBAL_DEFAULT);
  uv_loop_init(&loop);
  uv_timer_init(&loop, &timeout);
  multi = curl_multi_init();
  curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
  curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, conns);
  headers = curl_slist_append(NULL, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Expect:");
  t0 = (double)uv_hrtime() / 1e9;
  c0 = procstat_cpu_s(RUSAGE_SELF);
  for (i = 0; i < conns && i < n_total; i++)
    start_one(NULL);
  while (done < n_total)
    uv_run(&loop, UV_RUN_ONCE);
  t1 = (double)uv_hrtime() / 1e9;
  c1 = procstat_cpu_s(RUSAGE_SELF);
  printf("events_per_s=%.0f cpu_us_per_event=%.3f failed=%ld\n",
         (double)n_total / (t1 - t0), (c1 - c0) / (double)n_total * 1e6,
         failed);
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  uv_close((uv_handle_t *)&timeout, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  curl_global_cleanup();
  if (strcmp(argv[1], "nginx") == 0)
    nginx_stop(&ngx);
  return failed != 0;
}
