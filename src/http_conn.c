/* One HTTP/1.1 connection of a pool: connect, batched pipelined writes,
 * answers parsed by llhttp and matched first in, first out, one timer
 * re-armed per phase, and failure reported per request with whether it may
 * have been processed. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "eventstore.h"
#include "http_internal.h"

typedef struct es__http_write {
  uv_write_t req;
  es__http_conn *conn;
  uv_buf_t bufs[]; /* up to three per request: head, body, tail */
} es__http_write;

static const llhttp_settings_t *es__settings(void);

static uint64_t es__phase_timeout(const es__http_conn *conn,
                                  enum es__conn_phase phase) {
  const es__http_pool_options *o = &conn->pool->o;
  switch (phase) {
  case ES__PHASE_CONNECT:
    return o->connect_timeout_ms;
  case ES__PHASE_RESPONSE:
    return o->response_timeout_ms;
  case ES__PHASE_IO:
    return o->io_timeout_ms;
  default:
    return o->idle_timeout_ms;
  }
}

static void es__conn_timer_cb(uv_timer_t *timer);

/* The one timer of a connection, re-armed at each change of phase. */
static void es__conn_set_phase(es__http_conn *conn, enum es__conn_phase p) {
  conn->phase = p;
  if (conn->detached)
    return;
  uv_timer_start(&conn->timer, es__conn_timer_cb, es__phase_timeout(conn, p),
                 0);
}

/* An idle keep-alive connection does not keep the caller's loop alive. */
static void es__conn_hold_loop(es__http_conn *conn, int hold) {
  if (conn->detached)
    return;
  if (hold) {
    uv_ref(&conn->s.handle);
    uv_ref((uv_handle_t *)&conn->timer);
  } else {
    uv_unref(&conn->s.handle);
    uv_unref((uv_handle_t *)&conn->timer);
  }
}

static void es__conn_update_phase(es__http_conn *conn) {
  if (conn->state != ES__CONN_OPEN)
    return;
  es__conn_hold_loop(conn, conn->n_inflight > 0);
  /* Armed once per phase, not per read: an answer must complete within
   * io_timeout_ms of its first byte, so a peer trickling one byte at a time
   * cannot hold a connection (and its requests) forever. */
  if (conn->n_inflight == 0)
    es__conn_set_phase(conn, ES__PHASE_IDLE);
  else if (conn->in_response) {
    if (conn->phase != ES__PHASE_IO)
      es__conn_set_phase(conn, ES__PHASE_IO);
  } else if (conn->phase != ES__PHASE_RESPONSE)
    es__conn_set_phase(conn, ES__PHASE_RESPONSE);
}

static void es__conn_on_close(uv_handle_t *handle) {
  es__http_conn *conn = handle->data;
  es__http_pool *pool = conn->pool;

  if (--conn->handles > 0)
    return;
  es__buf_free(&conn->body);
  es__free(conn);
  es__http_pool_unref(pool);
}

/* Closes the connection; requests on it fail with err (which 0 means there
 * are none that matter: an idle connection going away). */
void es__http_conn_fail(es__http_conn *conn, int err) {
  es__http_pool *pool = conn->pool;
  int was_connecting = conn->state == ES__CONN_CONNECTING;

  if (conn->state == ES__CONN_CLOSING)
    return;
  conn->state = ES__CONN_CLOSING;
  es__queue_remove(&conn->node);
  pool->n_conns--;
  if (conn->read_paused) {
    conn->read_paused = 0;
    pool->n_paused--;
  }
  if (was_connecting)
    pool->n_connecting--;
  if (!conn->detached) {
    uv_timer_stop(&conn->timer);
    uv_close((uv_handle_t *)&conn->timer, es__conn_on_close);
    uv_close(&conn->s.handle, es__conn_on_close);
  }

  if (err == 0)
    err = ES_EPEERCLOSED;
  /* Written requests may have been processed: the request says so. */
  while (!es__queue_empty(&conn->inflight)) {
    es__http_request *req = es__container_of(es__queue_head(&conn->inflight),
                                             es__http_request, node);
    conn->n_inflight--;
    es__http_request_complete(req, err, NULL);
  }
  if (was_connecting)
    es__http_pool_connect_failed(pool, err);
  es__http_pool_kick(pool);
}

static void es__conn_timer_cb(uv_timer_t *timer) {
  es__http_conn *conn = timer->data;

  switch (conn->phase) {
  case ES__PHASE_CONNECT:
    es__http_conn_fail(conn, ES_ECONNTIMEDOUT);
    break;
  case ES__PHASE_RESPONSE:
  case ES__PHASE_IO:
    es__http_conn_fail(conn, ES_ERESPTIMEDOUT);
    break;
  case ES__PHASE_IDLE:
    es__http_conn_fail(conn, 0);
    break;
  }
}

/* ---- writing ---------------------------------------------------------- */

static void es__conn_write_cb(uv_write_t *wreq, int status) {
  es__http_write *w = wreq->data;
  es__http_conn *conn = w->conn;

  es__free(w);
  if (status < 0 && status != UV_ECANCELED)
    es__http_conn_fail(conn, status);
}

void es__http_conn_write(es__http_conn *conn, unsigned n) {
  es__http_pool *pool = conn->pool;
  es__http_write *w;
  unsigned i, nbufs = 0;
  int rc, was_idle = conn->n_inflight == 0;

  if (n > pool->n_waiting)
    n = pool->n_waiting;
  if (n == 0)
    return;
  w = es__malloc(sizeof(*w) + 3 * n * sizeof(uv_buf_t));
  if (w == NULL)
    return; /* the requests stay queued; the next dispatch tries again */
  for (i = 0; i < n; i++) {
    es__http_request *req = es__container_of(es__queue_head(&pool->waiting),
                                             es__http_request, node);
    es__queue_remove(&req->node);
    pool->n_waiting--;
    req->written = 1;
    es__queue_insert_tail(&conn->inflight, &req->node);
    conn->n_inflight++;
    w->bufs[nbufs++] = uv_buf_init((char *)req->head, (unsigned)req->head_len);
    if (req->body_len > 0)
      w->bufs[nbufs++] =
          uv_buf_init((char *)req->body, (unsigned)req->body_len);
    if (req->tail_len > 0)
      w->bufs[nbufs++] =
          uv_buf_init((char *)req->tail, (unsigned)req->tail_len);
  }
  w->conn = conn;
  w->req.data = w;
  pool->writes++;
  rc = uv_write(&w->req, &conn->s.stream, w->bufs, nbufs, es__conn_write_cb);
  if (rc != 0) {
    es__free(w);
    es__http_conn_fail(conn, rc);
    return;
  }
  if (was_idle) {
    es__conn_hold_loop(conn, 1);
    es__conn_set_phase(conn, ES__PHASE_RESPONSE);
  }
}

/* ---- reading ---------------------------------------------------------- */

static void es__conn_alloc_cb(uv_handle_t *handle, size_t suggested,
                              uv_buf_t *buf) {
  es__http_conn *conn = handle->data;
  es__http_pool *pool = conn->pool;
  (void)suggested;
  /* libuv reads one stream at a time and we parse each read completely
   * before returning, so the pool's one buffer serves every connection. */
  if (pool->read_buf_busy) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  pool->read_buf_busy = 1;
  *buf = uv_buf_init(pool->read_buf, sizeof(pool->read_buf));
}

/* What a read brings: bytes, EOF or an error. Separate from the libuv
 * callback so that the fuzzer drives exactly this path. */
static void es__conn_on_read(es__http_conn *conn, ssize_t nread,
                             const char *data) {
  llhttp_errno_t rc;

  if (conn->state != ES__CONN_OPEN || nread == 0)
    return;
  if (nread < 0) {
    if (nread == UV_EOF) {
      if (conn->in_response) {
        /* An answer whose body runs to EOF ends here; any other is cut. */
        conn->err = 0;
        rc = llhttp_finish(&conn->parser);
        if (conn->state != ES__CONN_OPEN)
          return;
        if (rc != HPE_OK) {
          es__http_conn_fail(conn, ES_EPEERCLOSED);
          return;
        }
      }
      es__http_conn_fail(conn, conn->n_inflight ? ES_EPEERCLOSED : 0);
    } else {
      es__http_conn_fail(conn, (int)nread);
    }
    return;
  }
  if (conn->n_inflight == 0 && !conn->in_response) {
    /* Bytes nobody asked for: the connection is no longer trustworthy. */
    es__http_conn_fail(conn, 0);
    return;
  }
  conn->err = 0;
  rc = llhttp_execute(&conn->parser, data, (size_t)nread);
  if (conn->state != ES__CONN_OPEN)
    return; /* closed from inside a callback */
  if (rc != HPE_OK && rc != HPE_PAUSED) {
    es__http_conn_fail(conn, conn->err ? conn->err : ES_EHTTPPARSE);
    return;
  }
  if (conn->no_reuse) {
    /* The peer closes after this answer: what was pipelined behind it gets
     * no answer. */
    es__http_conn_fail(conn, conn->n_inflight ? ES_EPEERCLOSED : 0);
    return;
  }
  es__conn_update_phase(conn);
  es__http_pool_kick(conn->pool);
}

static void es__conn_read_cb(uv_stream_t *stream, ssize_t nread,
                             const uv_buf_t *buf) {
  es__http_conn *conn = stream->data;
  es__http_pool *pool = conn->pool;

  if (buf->base == pool->read_buf)
    pool->read_buf_busy = 0;
  es__http_pool_tick_begin(pool);
  es__conn_on_read(conn, nread, buf->base);
  /* Fairness: with the iteration's budget used, what else the peer sent
   * waits in the socket until the next iteration (the conn's memory lives
   * until its close callback, so conn is still valid here). */
  if (nread > 0 && conn->state == ES__CONN_OPEN &&
      es__http_pool_tick_spent(pool)) {
    uv_read_stop(stream);
    conn->read_paused = 1;
    pool->n_paused++;
    pool->read_pauses++;
    es__http_pool_kick(pool);
  }
}

void es__http_conn_resume_reading(es__http_conn *conn) {
  int rc;

  conn->read_paused = 0;
  conn->pool->n_paused--;
  rc = uv_read_start(&conn->s.stream, es__conn_alloc_cb, es__conn_read_cb);
  if (rc != 0)
    es__http_conn_fail(conn, rc);
}

/* ---- llhttp callbacks ------------------------------------------------- */

static es__http_conn *es__conn_of(llhttp_t *p) {
  return p->data;
}

static int es__too_large(es__http_conn *conn) {
  conn->err = ES_ETOOLARGE;
  return -1;
}

static int es__on_message_begin(llhttp_t *p) {
  es__http_conn *conn = es__conn_of(p);

  if (conn->n_inflight == 0) {
    conn->err = ES_EHTTPPARSE; /* an answer to no request */
    return -1;
  }
  conn->in_response = 1;
  conn->status = 0;
  conn->header_bytes = 0;
  conn->body.len = 0;
  conn->retry_after_ms = -1;
  conn->field_done = 1;
  conn->field_len = 0;
  conn->value_len = 0;
  conn->field_is_retry_after = 0;
  return 0;
}

static int es__count_header(es__http_conn *conn, size_t len) {
  conn->header_bytes += len;
  return conn->header_bytes > conn->pool->o.max_header_bytes
             ? es__too_large(conn)
             : 0;
}

static int es__on_status(llhttp_t *p, const char *at, size_t len) {
  (void)at;
  return es__count_header(es__conn_of(p), len);
}

static int es__on_header_field(llhttp_t *p, const char *at, size_t len) {
  es__http_conn *conn = es__conn_of(p);

  if (es__count_header(conn, len) != 0)
    return -1;
  if (conn->field_done) {
    conn->field_done = 0;
    conn->field_len = 0;
    conn->value_len = 0;
  }
  /* Spans may be split across reads: copy (only short names matter). */
  if (conn->field_len + len <= sizeof(conn->field)) {
    memcpy(conn->field + conn->field_len, at, len);
    conn->field_len += len;
  } else {
    conn->field_len = sizeof(conn->field) + 1;
  }
  return 0;
}

static int es__on_header_field_complete(llhttp_t *p) {
  es__http_conn *conn = es__conn_of(p);
  static const char name[] = "retry-after";
  size_t i;

  conn->field_is_retry_after = conn->field_len == sizeof(name) - 1;
  for (i = 0; conn->field_is_retry_after && i < sizeof(name) - 1; i++)
    if (tolower((unsigned char)conn->field[i]) != name[i])
      conn->field_is_retry_after = 0;
  return 0;
}

static int es__on_header_value(llhttp_t *p, const char *at, size_t len) {
  es__http_conn *conn = es__conn_of(p);

  if (es__count_header(conn, len) != 0)
    return -1;
  conn->field_done = 1;
  if (conn->field_is_retry_after) {
    size_t room = sizeof(conn->value) - 1 - conn->value_len;
    if (len > room)
      len = room;
    memcpy(conn->value + conn->value_len, at, len);
    conn->value_len += len;
  }
  return 0;
}

/* Retry-After: delay-seconds or an HTTP-date (RFC 9110 10.2.3). */
static int64_t es__parse_retry_after(const char *v) {
  char *end;
  long long secs;
  struct tm tm;

  while (*v == ' ' || *v == '\t')
    v++;
  if (isdigit((unsigned char)*v)) {
    secs = strtoll(v, &end, 10);
    if (secs < 0 || secs > 86400 * 7)
      return -1;
    return (int64_t)secs * 1000;
  }
  memset(&tm, 0, sizeof(tm));
  if (strptime(v, "%a, %d %b %Y %H:%M:%S GMT", &tm) != NULL) {
    time_t when = timegm(&tm), now = time(NULL);
    return when > now ? (int64_t)(when - now) * 1000 : 0;
  }
  return -1;
}

static int es__on_header_value_complete(llhttp_t *p) {
  es__http_conn *conn = es__conn_of(p);

  if (conn->field_is_retry_after) {
    conn->value[conn->value_len] = '\0';
    conn->retry_after_ms = es__parse_retry_after(conn->value);
    conn->field_is_retry_after = 0;
  }
  return 0;
}

static int es__on_headers_complete(llhttp_t *p) {
  es__http_conn *conn = es__conn_of(p);
  es__http_request *req =
      es__container_of(es__queue_head(&conn->inflight), es__http_request, node);

  conn->status = p->status_code;
  /* Answers to HEAD, 1xx, 204 and 304 have no body whatever their headers
   * say (RFC 9112 6.3); llhttp 8 reads a Content-Length body after a 304
   * unless told to skip it. */
  if (req->is_head || conn->status < 200 || conn->status == 204 ||
      conn->status == 304)
    return 1;
  return 0;
}

static int es__on_body(llhttp_t *p, const char *at, size_t len) {
  es__http_conn *conn = es__conn_of(p);

  if (conn->body.len + len > conn->pool->o.max_body_bytes)
    return es__too_large(conn);
  es__buf_append(&conn->body, at, len);
  if (es__buf_error(&conn->body)) {
    conn->err = ES_ENOMEM;
    return -1;
  }
  return 0;
}

static int es__on_message_complete(llhttp_t *p) {
  es__http_conn *conn = es__conn_of(p);
  es__http_request *req;
  es__http_response res;

  conn->in_response = 0;
  if (conn->status < 200)
    return 0; /* 1xx: informational, the real answer follows */
  req =
      es__container_of(es__queue_head(&conn->inflight), es__http_request, node);
  conn->n_inflight--;
  res.status = conn->status;
  res.body = conn->body.data;
  res.body_len = conn->body.len;
  res.retry_after_ms = conn->retry_after_ms;
  /* Only valid here: llhttp resets it for the next message. */
  res.keep_alive = llhttp_should_keep_alive(p);
  if (!res.keep_alive)
    conn->no_reuse = 1;
  es__http_request_complete(req, 0, &res);
  conn->body.len = 0;
  if (conn->state != ES__CONN_OPEN || conn->no_reuse)
    return HPE_PAUSED;
  if (conn->n_inflight > 0)
    es__conn_set_phase(conn, ES__PHASE_RESPONSE);
  return 0;
}

static const llhttp_settings_t *es__settings(void) {
  static llhttp_settings_t s;
  static int done;

  if (!done) {
    /* Idempotent: two threads racing here write the same values. */
    llhttp_settings_init(&s);
    s.on_message_begin = es__on_message_begin;
    s.on_status = es__on_status;
    s.on_header_field = es__on_header_field;
    s.on_header_field_complete = es__on_header_field_complete;
    s.on_header_value = es__on_header_value;
    s.on_header_value_complete = es__on_header_value_complete;
    s.on_headers_complete = es__on_headers_complete;
    s.on_body = es__on_body;
    s.on_message_complete = es__on_message_complete;
    done = 1;
  }
  return &s;
}

/* ---- connecting ------------------------------------------------------- */

static void es__conn_connect_cb(uv_connect_t *creq, int status) {
  es__http_conn *conn = creq->data;
  es__http_pool *pool = conn->pool;
  int rc;

  if (conn->state != ES__CONN_CONNECTING)
    return; /* closed meanwhile (timeout, pool close) */
  if (status < 0) {
    if (pool->n_addrs > 1)
      pool->addr_index = (pool->addr_index + 1) % pool->n_addrs;
    es__http_conn_fail(conn, status);
    return;
  }
  conn->state = ES__CONN_OPEN;
  pool->n_connecting--;
  rc = uv_read_start(&conn->s.stream, es__conn_alloc_cb, es__conn_read_cb);
  if (rc != 0) {
    es__http_conn_fail(conn, rc);
    return;
  }
  /* Idle connections keep reading, so that a peer's close or stray bytes
   * evict them before a request is lost on them. */
  es__conn_update_phase(conn);
  es__http_pool_kick(pool);
}

int es__http_conn_start(es__http_pool *pool) {
  es__http_conn *conn;
  int rc;

  conn = es__calloc(1, sizeof(*conn));
  if (conn == NULL)
    return ES_ENOMEM;
  conn->pool = pool;
  es__queue_init(&conn->inflight);
  es__buf_init(&conn->body, 0);
  if (pool->unix_path != NULL)
    rc = uv_pipe_init(pool->loop, &conn->s.pipe, 0);
  else
    rc = uv_tcp_init(pool->loop, &conn->s.tcp);
  if (rc != 0) {
    es__free(conn);
    return rc;
  }
  uv_timer_init(pool->loop, &conn->timer);
  conn->s.handle.data = conn;
  conn->timer.data = conn;
  conn->connect_req.data = conn;
  conn->handles = 2;
  pool->refs++;
  llhttp_init(&conn->parser, HTTP_RESPONSE, es__settings());
  conn->parser.data = conn; /* after llhttp_init, which clears it */
  conn->state = ES__CONN_CONNECTING;
  es__queue_insert_tail(&pool->conns, &conn->node);
  pool->n_conns++;
  pool->n_connecting++;
  pool->connects++;

  if (pool->unix_path != NULL) {
    /* uv_pipe_connect reports every failure through the callback. */
    uv_pipe_connect(&conn->connect_req, &conn->s.pipe, pool->unix_path,
                    es__conn_connect_cb);
    rc = 0;
  } else {
    uv_tcp_nodelay(&conn->s.tcp, 1);
    rc = uv_tcp_connect(&conn->connect_req, &conn->s.tcp,
                        (const struct sockaddr *)&pool->addrs[pool->addr_index],
                        es__conn_connect_cb);
  }
  if (rc != 0) {
    /* es__http_conn_start runs only from dispatch, never inside a submit,
     * so failing requests from here keeps the callback contract. */
    es__http_conn_fail(conn, rc);
    return rc;
  }
  es__conn_set_phase(conn, ES__PHASE_CONNECT);
  return 0;
}

/* ---- the fuzzer's entry ------------------------------------------------ */

static int es__fuzz_completions[8];

static void es__fuzz_cb(es__http_request *req, int err,
                        const es__http_response *res) {
  int i = (int)(intptr_t)req->data;
  (void)err;
  if (res != NULL && (res->status < 200 || res->status > 999 ||
                      (res->body_len > 0 && res->body == NULL)))
    abort();
  es__fuzz_completions[i]++;
}

int es__http_fuzz_responses(const uint8_t *data, size_t size) {
  es__http_pool *pool;
  es__http_conn *conn;
  es__http_request reqs[8];
  unsigned n, i, head_mask;
  size_t off = 0;
  uint32_t rng;

  if (size < 3)
    return 0;
  n = 1 + data[0] % 8;
  head_mask = data[1];
  rng = data[2] | 1u;
  data += 3;
  size -= 3;
  pool = es__calloc(1, sizeof(*pool));
  conn = es__calloc(1, sizeof(*conn));
  if (pool == NULL || conn == NULL)
    abort();
  es__http_pool_options_init(&pool->o);
  pool->o.max_header_bytes = 2048;
  pool->o.max_body_bytes = 4096;
  es__queue_init(&pool->waiting);
  es__queue_init(&pool->conns);
  conn->pool = pool;
  conn->detached = 1;
  conn->state = ES__CONN_OPEN;
  es__queue_init(&conn->inflight);
  es__queue_init(&conn->node);
  es__buf_init(&conn->body, 0);
  llhttp_init(&conn->parser, HTTP_RESPONSE, es__settings());
  conn->parser.data = conn;
  memset(reqs, 0, sizeof(reqs));
  for (i = 0; i < n; i++) {
    es__fuzz_completions[i] = 0;
    reqs[i].is_head = (head_mask >> i) & 1;
    reqs[i].cb = es__fuzz_cb;
    reqs[i].data = (void *)(intptr_t)i;
    reqs[i].written = 1;
    es__queue_insert_tail(&conn->inflight, &reqs[i].node);
    conn->n_inflight++;
  }
  /* Random cuts, so that every parser state meets the end of a read. */
  while (off < size && conn->state == ES__CONN_OPEN) {
    size_t len;
    rng = rng * 1103515245u + 12345u;
    len = 1 + (rng >> 16) % 64;
    if (len > size - off)
      len = size - off;
    es__conn_on_read(conn, (ssize_t)len, (const char *)data + off);
    off += len;
  }
  es__conn_on_read(conn, UV_EOF, NULL);
  /* Whatever arrived, every request ended exactly once. */
  for (i = 0; i < n; i++)
    if (es__fuzz_completions[i] != 1)
      abort();
  es__buf_free(&conn->body);
  es__free(conn);
  es__free(pool);
  return 0;
}
