/* An existing libuv TCP server that publishes one event per connection from
 * its handler, fire-and-forget, and measures what that costs the handler.
 * To be self-contained it also drives itself: it opens CONNECTIONS client
 * connections to its own loopback port, each sends a line and reads the
 * answer. It prints its own handler latency next to the library's stats.
 * Exits 1 when any event failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "eventstore.h"

#define MAX_CONNECTIONS 100000
#define CONCURRENT 8

static int CONNECTIONS = 500; /* embed_in_server [CONNECTIONS] */

typedef struct server {
  uv_loop_t *loop;
  uv_tcp_t listener;
  es_client *client;
  int port;
  uint64_t handler_ns[MAX_CONNECTIONS], publish_ns[MAX_CONNECTIONS];
  int handled, started, finished, failed;
} server;

static server S;

typedef struct conn {
  uv_tcp_t tcp;
  uv_write_t w;
  int is_client;
} conn;

static void on_published(es_client *c, const es_publish_result *r, void *d) {
  (void)c;
  (void)d;
  if (r->status != 0)
    S.failed++;
}

static void free_conn(uv_handle_t *h) {
  free(h->data);
}

static void after_reply(uv_write_t *w, int status) {
  (void)status;
  uv_close((uv_handle_t *)w->handle, free_conn);
}

static void alloc_cb(uv_handle_t *h, size_t n, uv_buf_t *b) {
  static char slab[4096];
  (void)h;
  (void)n;
  *b = uv_buf_init(slab, sizeof(slab));
}

static void start_client(void);
static void on_closed(es_client *c);

/* The server's handler: the part of the server whose latency matters. */
static void server_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  conn *c = s->data;
  static uv_buf_t reply = {"ok\n", 3};
  uint64_t t0, t1, t2;
  (void)b;
  if (n <= 0) {
    if (n < 0)
      uv_close((uv_handle_t *)s, free_conn);
    return;
  }
  t0 = uv_hrtime();
  {
    char json[192];
    int len = snprintf(json, sizeof(json),
                       "{\"event_type\":\"connections\",\"event_name\":"
                       "\"connection_handled\",\"data\":{\"n\":%d,"
                       "\"bytes\":%zd}}",
                       S.handled, n);
    t1 = uv_hrtime();
    es_publish_json(S.client, "connections", "connection_handled", json,
                    (size_t)len, on_published, NULL);
    t2 = uv_hrtime();
  }
  uv_read_stop(s);
  uv_write(&c->w, s, &reply, 1, after_reply);
  if (S.handled < CONNECTIONS) {
    S.publish_ns[S.handled] = t2 - t1;
    S.handler_ns[S.handled] = uv_hrtime() - t0;
  }
  S.handled++;
}

static void on_connection(uv_stream_t *l, int status) {
  conn *c;
  if (status < 0)
    return;
  c = calloc(1, sizeof(*c));
  uv_tcp_init(S.loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) == 0)
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, server_read);
  else
    uv_close((uv_handle_t *)&c->tcp, free_conn);
}

/* ---- the driver: clients of the server above ---- */

static void client_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  (void)b;
  if (n == 0)
    return;
  uv_close((uv_handle_t *)s, free_conn);
  if (++S.finished == CONNECTIONS) {
    uv_close((uv_handle_t *)&S.listener, NULL);
    es_client_close(S.client, on_closed);
  } else {
    start_client();
  }
}

static void client_wrote(uv_write_t *w, int status) {
  if (status == 0)
    uv_read_start(w->handle, alloc_cb, client_read);
}

static void client_connected(uv_connect_t *req, int status) {
  conn *c = req->data;
  static uv_buf_t hello = {"hello\n", 6};
  free(req);
  if (status < 0) {
    fprintf(stderr, "embed_in_server: connect: %s\n", uv_strerror(status));
    exit(1);
  }
  uv_write(&c->w, (uv_stream_t *)&c->tcp, &hello, 1, client_wrote);
}

static void start_client(void) {
  struct sockaddr_in a;
  conn *c;
  uv_connect_t *req;
  if (S.started >= CONNECTIONS)
    return;
  S.started++;
  c = calloc(1, sizeof(*c));
  req = calloc(1, sizeof(*req));
  uv_tcp_init(S.loop, &c->tcp);
  c->tcp.data = c;
  req->data = c;
  uv_ip4_addr("127.0.0.1", S.port, &a);
  uv_tcp_connect(req, &c->tcp, (struct sockaddr *)&a, client_connected);
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

static es_stats final_stats;
static void on_closed(es_client *c) {
  es_client_stats(c, &final_stats);
}

int main(int argc, char **argv) {
  uv_loop_t loop;
  struct sockaddr_in a;
  struct sockaddr_storage ss;
  int len = sizeof(ss), i, rc;

  if (argc > 1)
    CONNECTIONS = atoi(argv[1]);
  if (CONNECTIONS < 1 || CONNECTIONS > MAX_CONNECTIONS) {
    fprintf(stderr, "usage: embed_in_server [CONNECTIONS (1-100000)]\n");
    return 2;
  }
  uv_loop_init(&loop);
  S.loop = &loop;
  rc = es_client_init(&loop, &S.client, NULL);
  if (rc != 0) {
    fprintf(stderr, "embed_in_server: %s\n", es_strerror(rc));
    return 1;
  }
  uv_tcp_init(&loop, &S.listener);
  uv_ip4_addr("127.0.0.1", 0, &a);
  uv_tcp_bind(&S.listener, (struct sockaddr *)&a, 0);
  uv_listen((uv_stream_t *)&S.listener, 128, on_connection);
  uv_tcp_getsockname(&S.listener, (struct sockaddr *)&ss, &len);
  S.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  for (i = 0; i < CONCURRENT; i++)
    start_client();
  /* the library's final counters are read in the close callback */
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  qsort(S.handler_ns, CONNECTIONS, sizeof(uint64_t), cmp_u64);
  qsort(S.publish_ns, CONNECTIONS, sizeof(uint64_t), cmp_u64);
  printf("embed_in_server: %d connections handled, %d events failed\n",
         S.handled, S.failed);
  printf("  server handler time      p50 %6.2f us  p99 %6.2f us\n",
         S.handler_ns[CONNECTIONS / 2] / 1e3,
         S.handler_ns[CONNECTIONS * 99 / 100] / 1e3);
  printf("  of which publish call    p50 %6.2f us  p99 %6.2f us\n",
         S.publish_ns[CONNECTIONS / 2] / 1e3,
         S.publish_ns[CONNECTIONS * 99 / 100] / 1e3);
  printf("  library: %llu delivered, %llu failed, delivery latency p50 %llu "
         "us p99 %llu us, %llu requests\n",
         (unsigned long long)final_stats.succeeded,
         (unsigned long long)final_stats.failed,
         (unsigned long long)final_stats.latency_p50_us,
         (unsigned long long)final_stats.latency_p99_us,
         (unsigned long long)final_stats.requests);
  return S.failed == 0 && S.handled == CONNECTIONS ? 0 : 1;
}
