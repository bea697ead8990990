/* The HTTP/1.1 client: every kind of answer a server may send, cut at every
 * byte boundary, pipelined, and every failure with its code and with
 * whether the request may have been processed. Peers: a scripted peer in
 * this process, and es-sidecar's engine (TCP and Unix socket). */
#include <arpa/inet.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <signal.h>
#include <unistd.h>

#include "eventstore.h"
#include "http.h"
#include "peer.h"
#include "sidecar.h"
#include "test.h"

typedef struct result {
  es__http_request req;
  char head[512];
  int calls;
  int err;
  int status;
  int written;
  int keep_alive;
  int64_t retry_after_ms;
  char body[8192];
  size_t body_len;
  int *done_counter;
} result;

static void result_cb(es__http_request *req, int err,
                      const es__http_response *res) {
  result *r = req->data;
  r->calls++;
  r->err = err;
  r->written = req->written;
  if (res != NULL) {
    r->status = res->status;
    r->keep_alive = res->keep_alive;
    r->retry_after_ms = res->retry_after_ms;
    r->body_len =
        res->body_len < sizeof(r->body) ? res->body_len : sizeof(r->body) - 1;
    if (r->body_len > 0)
      memcpy(r->body, res->body, r->body_len);
    r->body[r->body_len] = '\0';
  }
  if (r->done_counter)
    (*r->done_counter)++;
}

static const char post_body[] = "{\"data\":{\"k\":1},\"operation\":\"create\"}";

static void result_init(result *r, const char *method, const char *path,
                        int *counter) {
  memset(r, 0, sizeof(*r));
  snprintf(r->head, sizeof(r->head),
           "%s %s HTTP/1.1\r\nHost: test\r\nContent-Type: "
           "application/json\r\nContent-Length: %zu\r\n\r\n",
           method, path, strcmp(method, "POST") == 0 ? strlen(post_body) : 0);
  r->req.head = r->head;
  r->req.head_len = strlen(r->head);
  if (strcmp(method, "POST") == 0) {
    r->req.body = post_body;
    r->req.body_len = strlen(post_body);
  }
  r->req.is_head = strcmp(method, "HEAD") == 0;
  r->req.cb = result_cb;
  r->req.data = r;
  r->done_counter = counter;
  r->status = -1;
}

static es__http_pool *new_pool(uv_loop_t *loop, const char *endpoint,
                               es__http_pool_options *o) {
  es__http_pool *pool = NULL;
  int rc = es__http_pool_new(loop, endpoint, o, &pool);
  if (rc != 0)
    fprintf(stderr, "pool_new(%s): %s\n", endpoint, es_err_name(rc));
  return pool;
}

static int pool_closed;
static void on_pool_closed(void *arg) {
  (void)arg;
  pool_closed++;
}

static void close_pool(uv_loop_t *loop, es__http_pool *pool) {
  int before = pool_closed;
  es__http_pool_close(pool, ES_ECANCELED, on_pool_closed, NULL);
  CHECK_EQ_INT(pool_closed, before); /* never from inside the call */
  while (pool_closed == before)
    uv_run(loop, UV_RUN_ONCE);
}

/* Runs `n` requests (method/path) against a scripted peer and returns the
 * results; the caller checks them. */
typedef struct scenario {
  const char *script;
  size_t splits[8];
  unsigned expect;
  enum peer_after after;
  const char *methods[4];
  int n;
  es__http_pool_options opts;
  int use_opts;
} scenario;

static void run_scenario(const scenario *s, result *r) {
  uv_loop_t loop;
  peer p;
  es__http_pool *pool;
  char url[64];
  int done = 0, i;

  uv_loop_init(&loop);
  memset(&p, 0, sizeof(p));
  p.script = s->script;
  p.script_len = strlen(s->script);
  memcpy(p.splits, s->splits, sizeof(p.splits));
  p.expect = s->expect ? s->expect : (unsigned)s->n;
  p.after = s->after;
  if (peer_start(&p, &loop) != 0) {
    CHECK(0);
    return;
  }
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", p.port);
  pool = new_pool(&loop, url,
                  s->use_opts ? (es__http_pool_options *)&s->opts : NULL);
  ASSERT(pool != NULL);
  for (i = 0; i < s->n; i++) {
    result_init(&r[i], s->methods[i] ? s->methods[i] : "POST", "/x", &done);
    CHECK_EQ_INT(es__http_pool_submit(pool, &r[i].req), 0);
  }
  CHECK_EQ_INT(done, 0); /* no callback from inside submit */
  CHECK_EQ_INT(run_until_n(&loop, &done, s->n, 5000), 0);
  close_pool(&loop, pool);
  peer_stop(&p);
  CHECK_EQ_INT(close_loop(&loop), 0);
  for (i = 0; i < s->n; i++)
    CHECK_EQ_INT(r[i].calls, 1);
}

#define RESP_A "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nalpha"
#define RESP_B                                                                 \
  "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"   \
  "Transfer-Encoding: chunked\r\n\r\n"                                         \
  "4;ext=1\r\n{\"er\r\n"                                                       \
  "b\r\nrorCode\":1}\r\n0\r\nX-Trailer: t\r\n\r\n"
#define RESP_C "HTTP/1.1 204 No Content\r\nRetry-After: 3\r\n\r\n"

static void test_content_length(void) {
  scenario s = {RESP_A, {0}, 1, PEER_KEEP, {0}, 1};
  result r[1];
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].err, 0);
  CHECK_EQ_INT(r[0].status, 200);
  CHECK_EQ_STR(r[0].body, "alpha");
  CHECK_EQ_INT(r[0].keep_alive, 1);
  CHECK_EQ_INT(r[0].retry_after_ms, -1);
}

static void test_chunked_extensions_trailers(void) {
  scenario s = {RESP_B, {0}, 1, PEER_KEEP, {0}, 1};
  result r[1];
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].err, 0);
  CHECK_EQ_INT(r[0].status, 500);
  CHECK_EQ_STR(r[0].body, "{\"errorCode\":1}");
}

/* Three answers in one packet, matched first in, first out. */
static void test_pipelined_in_one_packet(void) {
  scenario s = {RESP_A RESP_B RESP_C, {0}, 3, PEER_KEEP, {0}, 3};
  result r[3];
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].status, 200);
  CHECK_EQ_STR(r[0].body, "alpha");
  CHECK_EQ_INT(r[1].status, 500);
  CHECK_EQ_STR(r[1].body, "{\"errorCode\":1}");
  CHECK_EQ_INT(r[2].status, 204);
  CHECK_EQ_INT(r[2].body_len, 0);
  CHECK_EQ_INT(r[2].retry_after_ms, 3000);
}

/* The same three answers cut into two pieces at every byte boundary. */
static void test_split_at_every_byte(void) {
  static const char script[] = RESP_A RESP_B RESP_C;
  size_t k, bad = 0;
  for (k = 1; k < sizeof(script) - 1; k++) {
    scenario s = {script, {k, 0}, 3, PEER_KEEP, {0}, 3};
    result r[3];
    int before = test__failed_checks;
    run_scenario(&s, r);
    if (r[0].status != 200 || strcmp(r[0].body, "alpha") != 0 ||
        r[1].status != 500 || strcmp(r[1].body, "{\"errorCode\":1}") != 0 ||
        r[2].status != 204 || r[2].retry_after_ms != 3000 ||
        test__failed_checks != before) {
      fprintf(stderr, "split at %zu failed\n", k);
      bad++;
    }
  }
  CHECK_EQ_INT(bad, 0);
  fprintf(stderr, "%zu split points checked\n", sizeof(script) - 2);
}

/* 100 Continue before the answer; 304 and HEAD answers carry no body even
 * with a Content-Length, and the next answer on the stream parses. */
static void test_1xx_304_head(void) {
  scenario s = {"HTTP/1.1 100 Continue\r\n\r\n"
                "HTTP/1.1 102 Processing\r\n\r\n" RESP_A
                "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n"
                "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n" RESP_A,
                {0},
                4,
                PEER_KEEP,
                {"POST", "GET", "HEAD", "POST"},
                4};
  result r[4];
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].status, 200);
  CHECK_EQ_STR(r[0].body, "alpha");
  CHECK_EQ_INT(r[1].status, 304);
  CHECK_EQ_INT(r[1].body_len, 0);
  CHECK_EQ_INT(r[2].status, 200);
  CHECK_EQ_INT(r[2].body_len, 0);
  CHECK_EQ_INT(r[3].status, 200);
  CHECK_EQ_STR(r[3].body, "alpha");
}

/* No length, no chunking: the body runs to EOF, llhttp_finish ends it. */
static void test_body_until_eof(void) {
  scenario s = {"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nto the "
                "end",
                {20, 0},
                1,
                PEER_CLOSE,
                {0},
                1};
  result r[1];
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].err, 0);
  CHECK_EQ_INT(r[0].status, 200);
  CHECK_EQ_STR(r[0].body, "to the end");
  CHECK_EQ_INT(r[0].keep_alive, 0);
}

/* Connection: close after the first of two pipelined requests: the first
 * is answered, the second fails as maybe processed (it was written). */
static void test_connection_close_pipelined(void) {
  scenario s = {"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: "
                "2\r\n\r\nok",
                {0},
                2,
                PEER_CLOSE,
                {0},
                2};
  result r[2];
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].err, 0);
  CHECK_EQ_INT(r[0].keep_alive, 0);
  CHECK_EQ_STR(r[0].body, "ok");
  CHECK_EQ_INT(r[1].err, ES_EPEERCLOSED);
  CHECK_EQ_INT(r[1].written, 1);
}

static void test_truncated_body(void) {
  scenario s = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                {0},
                1,
                PEER_CLOSE,
                {0},
                1};
  result r[1];
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].err, ES_EPEERCLOSED);
  CHECK_EQ_INT(r[0].written, 1);
  CHECK_EQ_INT(r[0].status, -1);
}

static void test_reset_mid_body(void) {
  scenario s = {"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
                {0},
                1,
                PEER_RESET,
                {0},
                1};
  result r[1];
  run_scenario(&s, r);
  CHECK(r[0].err == UV_ECONNRESET || r[0].err == ES_EPEERCLOSED);
  CHECK_EQ_INT(r[0].written, 1);
}

static void test_garbage(void) {
  scenario s = {"SMTP ready\r\n\r\n", {0}, 1, PEER_KEEP, {0}, 1};
  result r[1];
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].err, ES_EHTTPPARSE);
  CHECK_EQ_INT(r[0].written, 1);
}

/* An answer to nothing: more answers than requests. */
static void test_extra_answer(void) {
  scenario s = {RESP_A RESP_A, {0}, 1, PEER_KEEP, {0}, 1};
  result r[1];
  run_scenario(&s, r);
  /* the first is answered; the stray one evicts the connection */
  CHECK_EQ_INT(r[0].err, 0);
  CHECK_EQ_STR(r[0].body, "alpha");
}

static void test_header_too_large(void) {
  static char script[40000];
  scenario s = {script, {0}, 1, PEER_KEEP, {0}, 1};
  result r[1];
  size_t n = (size_t)sprintf(script, "HTTP/1.1 200 OK\r\nX-Big: ");
  memset(script + n, 'x', 30000);
  script[n + 30000] = '\0';
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].err, ES_ETOOLARGE);
}

static void test_body_too_large(void) {
  scenario s = {"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                {0},
                1,
                PEER_KEEP,
                {0},
                1,
                {0},
                1};
  result r[1];
  es__http_pool_options_init(&s.opts);
  s.opts.max_body_bytes = 10;
  {
    static char script[256];
    snprintf(script, sizeof(script),
             "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n%0100d", 0);
    s.script = script;
  }
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].err, ES_ETOOLARGE);
}

/* Silent peer: the first-byte timeout fires; the request was written. */
static void test_response_timeout(void) {
  scenario s = {RESP_A, {0}, 1, PEER_SILENT, {0}, 1, {0}, 1};
  result r[1];
  es__http_pool_options_init(&s.opts);
  s.opts.response_timeout_ms = 100;
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].err, ES_ERESPTIMEDOUT);
  CHECK_EQ_INT(r[0].written, 1);
}

/* One byte, then silence: the I/O timeout inside an answer. */
static void test_io_timeout(void) {
  scenario s = {"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab",
                {0},
                1,
                PEER_KEEP,
                {0},
                1,
                {0},
                1};
  result r[1];
  es__http_pool_options_init(&s.opts);
  s.opts.io_timeout_ms = 100;
  run_scenario(&s, r);
  CHECK_EQ_INT(r[0].err, ES_ERESPTIMEDOUT);
}

static void test_connection_refused(void) {
  uv_loop_t loop;
  es__http_pool *pool;
  result r[2];
  int done = 0, fd, port;
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  char url[64];

  /* a port nobody listens on: bind without listen, then close */
  fd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, (struct sockaddr *)&a, sizeof(a));
  getsockname(fd, (struct sockaddr *)&a, &len);
  port = ntohs(a.sin_port);
  close(fd);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);

  uv_loop_init(&loop);
  pool = new_pool(&loop, url, NULL);
  ASSERT(pool != NULL);
  result_init(&r[0], "POST", "/", &done);
  result_init(&r[1], "POST", "/", &done);
  CHECK_EQ_INT(es__http_pool_submit(pool, &r[0].req), 0);
  CHECK_EQ_INT(es__http_pool_submit(pool, &r[1].req), 0);
  run_until_n(&loop, &done, 2, 3000);
  CHECK_EQ_INT(done, 2);
  CHECK_EQ_INT(r[0].err, UV_ECONNREFUSED);
  CHECK_EQ_INT(r[0].written, 0);
  CHECK_EQ_INT(r[1].err, UV_ECONNREFUSED);
  CHECK_EQ_INT(r[1].written, 0);
  close_pool(&loop, pool);
  CHECK_EQ_INT(close_loop(&loop), 0);
}

/* A listener whose accept queue is full drops our SYN: connect times out. */
static void test_connect_timeout(void) {
  uv_loop_t loop;
  es__http_pool *pool;
  es__http_pool_options o;
  result r;
  int done = 0, lfd, fillers[8], i, port;
  struct sockaddr_in a;
  socklen_t len = sizeof(a);
  char url[64];

  lfd = socket(AF_INET, SOCK_STREAM, 0);
  memset(&a, 0, sizeof(a));
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(lfd, (struct sockaddr *)&a, sizeof(a));
  listen(lfd, 0);
  getsockname(lfd, (struct sockaddr *)&a, &len);
  port = ntohs(a.sin_port);
  for (i = 0; i < 8; i++) {
    fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    connect(fillers[i], (struct sockaddr *)&a, sizeof(a));
  }
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", port);
  uv_loop_init(&loop);
  es__http_pool_options_init(&o);
  o.connect_timeout_ms = 200;
  pool = new_pool(&loop, url, &o);
  ASSERT(pool != NULL);
  result_init(&r, "POST", "/", &done);
  CHECK_EQ_INT(es__http_pool_submit(pool, &r.req), 0);
  run_until(&loop, &done, 5000);
  CHECK_EQ_INT(r.calls, 1);
  CHECK_EQ_INT(r.err, ES_ECONNTIMEDOUT);
  CHECK_EQ_INT(r.written, 0);
  close_pool(&loop, pool);
  CHECK_EQ_INT(close_loop(&loop), 0);
  for (i = 0; i < 8; i++)
    close(fillers[i]);
  close(lfd);
}

/* Stray bytes on an idle connection evict it; the next request goes out
 * on a new connection and succeeds. Idle connections time out. */
static void test_idle_eviction_and_timeout(void) {
  uv_loop_t loop;
  peer p;
  es__http_pool *pool;
  es__http_pool_options o;
  es__http_pool_stats st;
  result r;
  int done = 0;
  char url[64];

  uv_loop_init(&loop);
  memset(&p, 0, sizeof(p));
  p.script = RESP_A RESP_A; /* the second answer is unsolicited */
  p.script_len = strlen(p.script);
  p.splits[0] = strlen(RESP_A);
  ASSERT(peer_start(&p, &loop) == 0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", p.port);
  es__http_pool_options_init(&o);
  o.idle_timeout_ms = 150;
  pool = new_pool(&loop, url, &o);
  result_init(&r, "POST", "/", &done);
  CHECK_EQ_INT(es__http_pool_submit(pool, &r.req), 0);
  run_until(&loop, &done, 3000);
  CHECK_EQ_INT(r.err, 0);
  /* let the stray bytes arrive */
  {
    int never = 0;
    run_until(&loop, &never, 50);
  }
  es__http_pool_stats_get(pool, &st);
  CHECK_EQ_INT(st.open_connections, 0);
  p.script = RESP_A;
  p.script_len = strlen(RESP_A);
  p.splits[0] = 0;
  done = 0;
  result_init(&r, "POST", "/", &done);
  CHECK_EQ_INT(es__http_pool_submit(pool, &r.req), 0);
  run_until(&loop, &done, 3000);
  CHECK_EQ_INT(r.err, 0);
  CHECK_EQ_INT(p.accepted, 2);
  es__http_pool_stats_get(pool, &st);
  CHECK_EQ_INT(st.open_connections, 1);
  {
    int never = 0;
    run_until(&loop, &never, 400);
  }
  es__http_pool_stats_get(pool, &st);
  CHECK_EQ_INT(st.open_connections, 0);
  close_pool(&loop, pool);
  peer_stop(&p);
  CHECK_EQ_INT(close_loop(&loop), 0);
}

static void test_endpoints(void) {
  static const struct {
    const char *url;
    int rc;
    const char *host_header;
  } cases[] = {
      {"http://127.0.0.1:3500", 0, "127.0.0.1:3500"},
      {"http://localhost", 0, "localhost:80"},
      {"http://[::1]:8080/", 0, "[::1]:8080"},
      {"unix:/tmp/x.sock", 0, "localhost"},
      {"https://127.0.0.1:3500", ES_EUNSUPPORTED, NULL},
      {"ftp://x", ES_EBADURL, NULL},
      {"http://", ES_EBADURL, NULL},
      {"http://host:0", ES_EBADURL, NULL},
      {"http://host:70000", ES_EBADURL, NULL},
      {"http://host:12ab", ES_EBADURL, NULL},
      {"http://host/path", ES_EBADURL, NULL},
      {"http://ho st", ES_EBADURL, NULL},
      {"http://host\r\nX: y", ES_EBADURL, NULL},
      {"http://[::1", ES_EBADURL, NULL},
      {"unix:", ES_EBADURL, NULL},
      {"", ES_EBADURL, NULL},
  };
  size_t i;
  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    char *host, *path, *hh;
    int port;
    int rc = es__http_parse_endpoint(cases[i].url, &host, &port, &path, &hh);
    if (rc != cases[i].rc)
      fprintf(stderr, "endpoint %s: %s\n", cases[i].url, es_err_name(rc));
    CHECK_EQ_INT(rc, cases[i].rc);
    if (rc == 0) {
      CHECK_EQ_STR(hh, cases[i].host_header);
      es_free(host);
      es_free(path);
      es_free(hh);
    }
  }
}

/* Against es-sidecar's engine in this process: many requests over a
 * limited pool, pipelined, with names resolved (localhost), over TCP and a
 * Unix socket; the number of writes shows the batching. */
static void sidecar_run(const char *endpoint_fmt, int unix_socket,
                        uint64_t tick_budget_us) {
  uv_loop_t loop;
  es_sidecar_options so;
  es_sidecar *sc;
  es__http_pool *pool;
  es__http_pool_options o;
  es__http_pool_stats st;
  static result r[200];
  char url[256], sock[128];
  int done = 0, i, ok = 0;

  uv_loop_init(&loop);
  es_sidecar_options_init(&so);
  so.port = 0;
  so.out_path = "/dev/null";
  so.handle_signals = 0;
  if (unix_socket) {
    snprintf(sock, sizeof(sock), "/tmp/es-test-http-%d.sock", (int)getpid());
    so.unix_path = sock;
  }
  ASSERT(es_sidecar_start(&loop, &so, &sc) == 0);
  if (unix_socket)
    snprintf(url, sizeof(url), endpoint_fmt, sock);
  else
    snprintf(url, sizeof(url), endpoint_fmt, es_sidecar_port(sc));
  es__http_pool_options_init(&o);
  o.max_connections = 2;
  o.pipeline_depth = 8;
  o.tick_budget_us = tick_budget_us;
  pool = new_pool(&loop, url, &o);
  ASSERT(pool != NULL);
  for (i = 0; i < 200; i++) {
    result_init(&r[i], "POST", "/v1.0/bindings/eventstore", &done);
    CHECK_EQ_INT(es__http_pool_submit(pool, &r[i].req), 0);
  }
  run_until_n(&loop, &done, 200, 10000);
  for (i = 0; i < 200; i++)
    ok += r[i].calls == 1 && r[i].err == 0 && r[i].status == 204;
  CHECK_EQ_INT(ok, 200);
  es__http_pool_stats_get(pool, &st);
  CHECK(st.connects <= 2);
  CHECK(st.writes < 200);
  /* A budget of 1 us is spent by the first piece of work of each loop
   * iteration: reads pause, writes wait, and still every request ends
   * once. Without a budget nothing pauses. */
  if (tick_budget_us == 0)
    CHECK(st.read_pauses == 0 && st.write_deferrals == 0);
  else
    CHECK(st.read_pauses > 0 && st.write_deferrals > 0);
  fprintf(stderr,
          "%s: 200 requests, %llu connections, %llu writes, %llu read "
          "pauses, %llu write deferrals\n",
          url, (unsigned long long)st.connects, (unsigned long long)st.writes,
          (unsigned long long)st.read_pauses,
          (unsigned long long)st.write_deferrals);
  close_pool(&loop, pool);
  es_sidecar_stop(sc);
  CHECK_EQ_INT(close_loop(&loop), 0);
  es_sidecar_free(sc);
}

static void test_sidecar_tcp(void) {
  uv_loop_t loop;
  uv_getaddrinfo_t gai;
  int resolvable;

  sidecar_run("http://127.0.0.1:%d", 0, 0);
  /* A name, resolved with uv_getaddrinfo; minimal roots (a fresh
   * debootstrap) may have no /etc/hosts, and then there is no name to try. */
  uv_loop_init(&loop);
  resolvable = uv_getaddrinfo(&loop, &gai, NULL, "localhost", NULL, NULL) == 0;
  if (resolvable)
    uv_freeaddrinfo(gai.addrinfo);
  uv_loop_close(&loop);
  if (resolvable)
    sidecar_run("http://localhost:%d", 0, 0);
  else
    fprintf(stderr, "localhost does not resolve here: name part skipped\n");
}

static void test_sidecar_unix(void) {
  sidecar_run("unix:%s", 1, 0);
}

static void test_tick_budget(void) {
  sidecar_run("http://127.0.0.1:%d", 0, 1);
  sidecar_run("unix:%s", 1, 1);
}

/* Closing the pool fails what is left, each exactly once, then frees. */
static void test_close_with_pending(void) {
  uv_loop_t loop;
  peer p;
  es__http_pool *pool;
  result r[5];
  int done = 0, i;
  char url[64];

  uv_loop_init(&loop);
  memset(&p, 0, sizeof(p));
  p.script = RESP_A;
  p.script_len = strlen(RESP_A);
  p.after = PEER_SILENT;
  ASSERT(peer_start(&p, &loop) == 0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", p.port);
  pool = new_pool(&loop, url, NULL);
  for (i = 0; i < 5; i++) {
    result_init(&r[i], "POST", "/", &done);
    CHECK_EQ_INT(es__http_pool_submit(pool, &r[i].req), 0);
  }
  /* let them be written */
  while (p.requests < 5) {
    int never = 0;
    run_until(&loop, &never, 20);
  }
  {
    result late;
    result_init(&late, "POST", "/", &done);
    close_pool(&loop, pool);
    /* (the pool is gone; submit is not called on it again) */
    (void)late;
  }
  for (i = 0; i < 5; i++) {
    CHECK_EQ_INT(r[i].calls, 1);
    CHECK_EQ_INT(r[i].err, ES_ECANCELED);
    CHECK_EQ_INT(r[i].written, 1);
  }
  peer_stop(&p);
  CHECK_EQ_INT(close_loop(&loop), 0);
}

int main(void) {
  int fds_before = count_fds();
  signal(SIGPIPE, SIG_IGN);
  RUN(test_endpoints);
  RUN(test_content_length);
  RUN(test_chunked_extensions_trailers);
  RUN(test_pipelined_in_one_packet);
  RUN(test_split_at_every_byte);
  RUN(test_1xx_304_head);
  RUN(test_body_until_eof);
  RUN(test_connection_close_pipelined);
  RUN(test_truncated_body);
  RUN(test_reset_mid_body);
  RUN(test_garbage);
  RUN(test_extra_answer);
  RUN(test_header_too_large);
  RUN(test_body_too_large);
  RUN(test_response_timeout);
  RUN(test_io_timeout);
  RUN(test_connection_refused);
  RUN(test_connect_timeout);
  RUN(test_idle_eviction_and_timeout);
  RUN(test_sidecar_tcp);
  RUN(test_sidecar_unix);
  RUN(test_tick_budget);
  RUN(test_close_with_pending);
  CHECK_EQ_INT(count_fds(), fds_before);
  return TEST_DONE();
}
