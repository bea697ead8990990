/* The HTTP client against Debian's nginx, a server nobody here wrote:
 * pipelined POSTs over several keep-alive connections, GET/HEAD/error
 * answers, and nginx closing connections after keepalive_requests with
 * requests pipelined behind. Skipped (77) when nginx is not installed. */
#include <signal.h>
#include <stdlib.h>

#include "eventstore.h"
#include "http.h"
#include "body300.h"
#include "nginx.h"
#include "peer.h"
#include "test.h"

typedef struct call {
  es__http_request req;
  char head[256];
  int calls, err, status, written;
  size_t body_len;
  char body[128];
} call;

static int done;

static void cb(es__http_request *req, int err, const es__http_response *res) {
  call *c = req->data;
  c->calls++;
  c->err = err;
  c->written = req->written;
  if (res) {
    c->status = res->status;
    c->body_len = res->body_len;
    if (res->body_len > 0 && res->body_len < sizeof(c->body))
      memcpy(c->body, res->body, res->body_len);
  }
  done++;
}

static void call_init(call *c, const char *method, const char *path,
                      const char *host) {
  int post = strcmp(method, "POST") == 0;
  memset(c, 0, sizeof(*c));
  snprintf(c->head, sizeof(c->head),
           "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
           "Content-Length: %zu\r\n\r\n",
           method, path, host, post ? strlen(body300) : 0);
  c->req.head = c->head;
  c->req.head_len = strlen(c->head);
  c->req.body = post ? body300 : NULL;
  c->req.body_len = post ? strlen(body300) : 0;
  c->req.is_head = strcmp(method, "HEAD") == 0;
  c->req.cb = cb;
  c->req.data = c;
}

static nginx ngx;
static int skip;

static es__http_pool *pool_for(uv_loop_t *loop, const nginx *n, unsigned conns,
                               unsigned depth) {
  char url[64];
  es__http_pool_options o;
  es__http_pool *pool = NULL;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", n->port);
  es__http_pool_options_init(&o);
  o.max_connections = conns;
  o.pipeline_depth = depth;
  es__http_pool_new(loop, url, &o, &pool);
  return pool;
}

static int closed;
static void on_closed(void *arg) {
  (void)arg;
  closed = 1;
}

static void finish(uv_loop_t *loop, es__http_pool *pool) {
  closed = 0;
  es__http_pool_close(pool, ES_ECANCELED, on_closed, NULL);
  run_until(loop, &closed, 5000);
  CHECK_EQ_INT(closed, 1);
  CHECK_EQ_INT(close_loop(loop), 0);
}

static void test_pipelined_posts(void) {
  enum { N = 2000 };
  static call calls[N];
  uv_loop_t loop;
  es__http_pool *pool;
  es__http_pool_stats st;
  int i, ok = 0;

  uv_loop_init(&loop);
  pool = pool_for(&loop, &ngx, 4, 16);
  ASSERT(pool != NULL);
  done = 0;
  for (i = 0; i < N; i++) {
    call_init(&calls[i], "POST", "/v1.0/bindings/eventstore",
              es__http_pool_host(pool));
    CHECK_EQ_INT(es__http_pool_submit(pool, &calls[i].req), 0);
  }
  run_until_n(&loop, &done, N, 20000);
  for (i = 0; i < N; i++)
    ok += calls[i].calls == 1 && calls[i].err == 0 && calls[i].status == 204;
  CHECK_EQ_INT(ok, N);
  es__http_pool_stats_get(pool, &st);
  CHECK(st.connects <= 4);
  fprintf(stderr, "nginx: %d POSTs, %llu connections, %llu writes\n", N,
          (unsigned long long)st.connects, (unsigned long long)st.writes);
  finish(&loop, pool);
}

static void test_answers(void) {
  uv_loop_t loop;
  es__http_pool *pool;
  call c[4];

  uv_loop_init(&loop);
  pool = pool_for(&loop, &ngx, 1, 4);
  ASSERT(pool != NULL);
  done = 0;
  call_init(&c[0], "GET", "/json", es__http_pool_host(pool));
  call_init(&c[1], "HEAD", "/json", es__http_pool_host(pool));
  call_init(&c[2], "POST", "/err", es__http_pool_host(pool));
  call_init(&c[3], "GET", "/json", es__http_pool_host(pool));
  for (int i = 0; i < 4; i++)
    CHECK_EQ_INT(es__http_pool_submit(pool, &c[i].req), 0);
  run_until_n(&loop, &done, 4, 5000);
  CHECK_EQ_INT(c[0].status, 200);
  CHECK_EQ_STR(c[0].body, "{\"ok\":true}");
  CHECK_EQ_INT(c[1].status, 200);
  CHECK_EQ_INT(c[1].body_len, 0);
  CHECK_EQ_INT(c[2].status, 500);
  CHECK_EQ_STR(c[2].body, "{\"errorCode\":\"ERR_X\",\"message\":\"m\"}");
  CHECK_EQ_INT(c[3].status, 200);
  CHECK_EQ_STR(c[3].body, "{\"ok\":true}");
  finish(&loop, pool);
}

/* nginx closes a connection after keepalive_requests answers: requests
 * pipelined behind the last one fail as "maybe processed" (written); every
 * request gets exactly one callback. */
static void test_keepalive_limit(void) {
  enum { N = 500 };
  static call calls[N];
  nginx n2;
  uv_loop_t loop;
  es__http_pool *pool;
  int i, ok = 0, closed_pipelined = 0, other = 0;

  if (nginx_start(&n2, "keepalive_requests 50;") != 0) {
    CHECK(0);
    return;
  }
  uv_loop_init(&loop);
  pool = pool_for(&loop, &n2, 2, 16);
  done = 0;
  for (i = 0; i < N; i++) {
    call_init(&calls[i], "POST", "/", es__http_pool_host(pool));
    CHECK_EQ_INT(es__http_pool_submit(pool, &calls[i].req), 0);
  }
  run_until_n(&loop, &done, N, 20000);
  for (i = 0; i < N; i++) {
    CHECK_EQ_INT(calls[i].calls, 1);
    if (calls[i].err == 0 && calls[i].status == 204)
      ok++;
    else if (calls[i].err == ES_EPEERCLOSED && calls[i].written)
      closed_pipelined++;
    else
      other++;
  }
  fprintf(stderr, "keepalive_requests 50: %d answered, %d cut off, %d other\n",
          ok, closed_pipelined, other);
  CHECK(ok >= 50);
  CHECK_EQ_INT(other, 0);
  CHECK_EQ_INT(ok + closed_pipelined, N);
  finish(&loop, pool);
  nginx_stop(&n2);
}

int main(void) {
  int rc, fds;
  signal(SIGPIPE, SIG_IGN);
  fds = count_fds();
  rc = nginx_start(&ngx, NULL);
  if (rc == 77) {
    printf("nginx not installed: skipped\n");
    return 77;
  }
  if (rc != 0) {
    fprintf(stderr, "could not start nginx\n");
    return 1;
  }
  RUN(test_pipelined_posts);
  RUN(test_answers);
  RUN(test_keepalive_limit);
  nginx_stop(&ngx);
  (void)skip;
  CHECK_EQ_INT(count_fds(), fds);
  return TEST_DONE();
}
