/* The connection pool: endpoint parsing and resolution, dispatch of waiting
 * requests onto keep-alive connections (pipelined, one write per connection
 * per dispatch), and close. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "eventstore.h"
#include "http_internal.h"

void es__http_pool_options_init(es__http_pool_options *o) {
  memset(o, 0, sizeof(*o));
  o->max_connections = 4;
  o->pipeline_depth = 16;
  o->connect_timeout_ms = 5000;
  o->response_timeout_ms = 10000;
  o->io_timeout_ms = 10000;
  o->idle_timeout_ms = 30000;
  o->max_header_bytes = 16 * 1024;
  o->max_body_bytes = 1024 * 1024;
}

static int es__is_host_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

int es__http_parse_endpoint(const char *endpoint, char **host_out,
                            int *port_out, char **unix_out,
                            char **host_header_out) {
  const char *p, *host, *host_end, *port_s = NULL;
  char *host_copy = NULL, *hh = NULL;
  long port = 80;
  int v6 = 0;
  size_t i;

  *host_out = NULL;
  *unix_out = NULL;
  *host_header_out = NULL;
  *port_out = 0;
  if (endpoint == NULL || endpoint[0] == '\0')
    return ES_EBADURL;
  for (p = endpoint; *p; p++)
    if ((unsigned char)*p <= 0x20 || *p == 0x7f)
      return ES_EBADURL;
  if (strncmp(endpoint, "unix:", 5) == 0) {
    const char *path = endpoint + 5;
    if (strncmp(path, "//", 2) == 0)
      path += 2; /* unix:///path */
    if (path[0] == '\0')
      return ES_EBADURL;
    *unix_out = es__strdup(path);
    *host_header_out = es__strdup("localhost");
    if (*unix_out == NULL || *host_header_out == NULL) {
      es__free(*unix_out);
      es__free(*host_header_out);
      *unix_out = *host_header_out = NULL;
      return ES_ENOMEM;
    }
    return 0;
  }
  if (strncmp(endpoint, "https://", 8) == 0)
    return ES_EUNSUPPORTED;
  if (strncmp(endpoint, "http://", 7) != 0)
    return ES_EBADURL;
  host = endpoint + 7;
  if (*host == '[') {
    v6 = 1;
    host++;
    host_end = strchr(host, ']');
    if (host_end == NULL || host_end == host)
      return ES_EBADURL;
    p = host_end + 1;
    for (const char *q = host; q < host_end; q++)
      if (!(es__is_host_char(*q) || *q == ':' || *q == '%'))
        return ES_EBADURL;
  } else {
    for (p = host; es__is_host_char(*p); p++)
      ;
    host_end = p;
    if (host_end == host)
      return ES_EBADURL;
  }
  if (*p == ':') {
    char *end;
    port_s = p + 1;
    port = strtol(port_s, &end, 10);
    if (end == port_s || port < 1 || port > 65535)
      return ES_EBADURL;
    p = end;
  }
  if (*p == '/')
    p++; /* a trailing slash is fine; a path prefix is not supported */
  if (*p != '\0')
    return ES_EBADURL;
  host_copy = es__strndup(host, (size_t)(host_end - host));
  hh = es__malloc((size_t)(host_end - host) + 16);
  if (host_copy == NULL || hh == NULL) {
    es__free(host_copy);
    es__free(hh);
    return ES_ENOMEM;
  }
  i = 0;
  if (v6)
    hh[i++] = '[';
  memcpy(hh + i, host, (size_t)(host_end - host));
  i += (size_t)(host_end - host);
  if (v6)
    hh[i++] = ']';
  snprintf(hh + i, 16, ":%ld", port);
  *host_out = host_copy;
  *host_header_out = hh;
  *port_out = (int)port;
  return 0;
}

int es__http_pool_new(uv_loop_t *loop, const char *endpoint,
                      const es__http_pool_options *opts, es__http_pool **out) {
  es__http_pool *pool;
  int rc;

  if (loop == NULL || out == NULL)
    return ES_EINVAL;
  pool = es__calloc(1, sizeof(*pool));
  if (pool == NULL)
    return ES_ENOMEM;
  rc = es__http_parse_endpoint(endpoint, &pool->host, &pool->port,
                               &pool->unix_path, &pool->host_header);
  if (rc != 0) {
    es__free(pool);
    return rc;
  }
  if (opts != NULL)
    pool->o = *opts;
  else
    es__http_pool_options_init(&pool->o);
  if (pool->o.max_connections == 0)
    pool->o.max_connections = 1;
  if (pool->o.pipeline_depth == 0)
    pool->o.pipeline_depth = 1;
  pool->loop = loop;
  es__queue_init(&pool->waiting);
  es__queue_init(&pool->conns);
  if (pool->host != NULL) {
    struct sockaddr_in *a4 = (struct sockaddr_in *)&pool->addrs[0];
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&pool->addrs[0];
    if (uv_ip4_addr(pool->host, pool->port, a4) == 0 ||
        uv_ip6_addr(pool->host, pool->port, a6) == 0)
      pool->n_addrs = 1;
  }
  uv_idle_init(loop, &pool->kick);
  pool->kick.data = pool;
  uv_check_init(loop, &pool->tick);
  pool->tick.data = pool;
  uv_unref((uv_handle_t *)&pool->tick); /* never keeps the loop alive */
  pool->refs = 2;                       /* the kick and tick handles */
  *out = pool;
  return 0;
}

const char *es__http_pool_host(const es__http_pool *pool) {
  return pool->host_header;
}

/* Fails every waiting request (none was written). */
static void es__pool_fail_waiting(es__http_pool *pool, int err) {
  while (!es__queue_empty(&pool->waiting)) {
    es__http_request *req = es__container_of(es__queue_head(&pool->waiting),
                                             es__http_request, node);
    pool->n_waiting--;
    es__http_request_complete(req, err, NULL);
  }
}

void es__http_request_complete(es__http_request *req, int err,
                               const es__http_response *res) {
  es__queue_remove(&req->node);
  req->cb(req, err, res);
}

static void es__pool_gai_cb(uv_getaddrinfo_t *gai, int status,
                            struct addrinfo *res) {
  es__http_pool *pool = gai->data;
  struct addrinfo *ai;

  pool->resolving = 0;
  if (status == 0) {
    pool->n_addrs = 0;
    for (ai = res; ai != NULL && pool->n_addrs < ES__HTTP_MAX_ADDRS;
         ai = ai->ai_next) {
      if (ai->ai_addrlen > sizeof(pool->addrs[0]))
        continue;
      memcpy(&pool->addrs[pool->n_addrs++], ai->ai_addr, ai->ai_addrlen);
    }
    pool->addr_index = 0;
    if (pool->n_addrs == 0)
      status = UV_EAI_NONAME;
  }
  uv_freeaddrinfo(res);
  if (!pool->closing) {
    if (status < 0)
      es__pool_fail_waiting(pool, status);
    else
      es__http_pool_kick(pool);
  }
  es__http_pool_unref(pool);
}

static void es__pool_resolve(es__http_pool *pool) {
  struct addrinfo hints;
  char port[8];
  int rc;

  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  snprintf(port, sizeof(port), "%d", pool->port);
  pool->gai.data = pool;
  rc = uv_getaddrinfo(pool->loop, &pool->gai, es__pool_gai_cb, pool->host, port,
                      &hints);
  if (rc != 0) {
    es__pool_fail_waiting(pool, rc);
    return;
  }
  pool->resolving = 1;
  pool->refs++;
}

/* Batched writes: a connection takes new requests only while at most half
 * its pipeline is in flight, so that under load one write carries many
 * requests instead of one per answer that came back (the peer is woken
 * less often, both sides make fewer system calls), while a lightly used
 * connection takes a request at once. */
static int es__conn_wants(const es__http_pool *pool,
                          const es__http_conn *conn) {
  unsigned depth = pool->o.pipeline_depth;

  return conn->state == ES__CONN_OPEN && !conn->no_reuse &&
         conn->n_inflight <= depth / 2;
}

/* Writes waiting requests to connections that want them, then opens as many
 * new connections as the rest needs (within the limit). Bounded: at most
 * max_connections * pipeline_depth requests per call, and the writes stop
 * early once the iteration's budget is spent. */
static void es__pool_dispatch(es__http_pool *pool) {
  es__queue *q, *next;
  unsigned depth = pool->o.pipeline_depth, capacity = 0;
  int wrote = 0;

  for (q = pool->conns.next; q != &pool->conns && pool->n_waiting > 0;
       q = next) {
    es__http_conn *conn = es__container_of(q, es__http_conn, node);
    next = q->next; /* a failed write removes conn from the list */
    if (es__conn_wants(pool, conn)) {
      if (wrote && es__http_pool_tick_spent(pool)) {
        pool->write_deferrals++;
        es__http_pool_kick(pool); /* the rest in the next iteration */
        return;
      }
      es__http_conn_write(conn, depth - conn->n_inflight);
      wrote = 1;
    }
  }
  if (pool->n_waiting == 0 || pool->closing)
    return;
  if (pool->unix_path == NULL && pool->n_addrs == 0) {
    if (!pool->resolving)
      es__pool_resolve(pool);
    return;
  }
  capacity = pool->n_connecting * depth;
  while (pool->n_waiting > capacity &&
         pool->n_conns < pool->o.max_connections) {
    int rc = es__http_conn_start(pool);
    if (rc != 0) {
      /* A connection that failed at once has already failed the waiting
       * requests if it was the last; stop here rather than spin. */
      if (pool->n_conns == 0)
        es__pool_fail_waiting(pool, rc);
      return;
    }
    capacity += depth;
  }
}

/* ---- the work budget of a loop iteration -------------------------------- */

/* Runs after the poll phase of an iteration in which the budget was in
 * use: the next iteration starts afresh. */
static void es__pool_tick_end(uv_check_t *check) {
  es__http_pool *pool = check->data;
  pool->tick_start_ns = 0;
  uv_check_stop(check);
}

void es__http_pool_tick_begin(es__http_pool *pool) {
  if (pool->o.tick_budget_us == 0 || pool->tick_start_ns != 0)
    return;
  pool->tick_start_ns = uv_hrtime();
  uv_check_start(&pool->tick, es__pool_tick_end);
}

int es__http_pool_tick_spent(es__http_pool *pool) {
  if (pool->o.tick_budget_us == 0)
    return 0;
  if (pool->tick_start_ns == 0) {
    es__http_pool_tick_begin(pool);
    return 0;
  }
  return uv_hrtime() - pool->tick_start_ns >= pool->o.tick_budget_us * 1000;
}

/* Connections whose reading waited for this iteration read again. */
static void es__pool_resume_reading(es__http_pool *pool) {
  es__queue *q, *next;

  for (q = pool->conns.next; q != &pool->conns && pool->n_paused > 0;
       q = next) {
    es__http_conn *conn = es__container_of(q, es__http_conn, node);
    next = q->next; /* a failure removes conn from the list */
    if (conn->read_paused)
      es__http_conn_resume_reading(conn);
  }
}

static void es__pool_kick_cb(uv_idle_t *idle) {
  es__http_pool *pool = idle->data;
  uv_idle_stop(idle);
  es__http_pool_tick_begin(pool);
  es__pool_resume_reading(pool);
  es__pool_dispatch(pool);
}

void es__http_pool_kick(es__http_pool *pool) {
  if (!pool->closing && (pool->n_waiting > 0 || pool->n_paused > 0))
    uv_idle_start(&pool->kick, es__pool_kick_cb);
}

void es__http_pool_connect_failed(es__http_pool *pool, int err) {
  /* With no other connection up or coming, nothing would ever take the
   * waiting requests: fail them (surely not processed) and let the layer
   * above decide about retrying. */
  if (pool->n_conns == 0)
    es__pool_fail_waiting(pool, err);
}

int es__http_pool_submit(es__http_pool *pool, es__http_request *req) {
  if (pool == NULL || req == NULL || req->head == NULL || req->cb == NULL ||
      (req->body == NULL && req->body_len > 0) ||
      (req->tail == NULL && req->tail_len > 0))
    return ES_EINVAL;
  if (pool->closing)
    return ES_ECLOSED;
  req->written = 0;
  es__queue_insert_tail(&pool->waiting, &req->node);
  pool->n_waiting++;
  uv_idle_start(&pool->kick, es__pool_kick_cb);
  return 0;
}

static void es__pool_free(es__http_pool *pool) {
  void (*cb)(void *) = pool->close_cb;
  void *arg = pool->close_arg;

  es__free(pool->host);
  es__free(pool->unix_path);
  es__free(pool->host_header);
  es__free(pool);
  if (cb != NULL)
    cb(arg);
}

void es__http_pool_unref(es__http_pool *pool) {
  if (--pool->refs == 0 && pool->closing)
    es__pool_free(pool);
}

static void es__pool_kick_closed(uv_handle_t *h) {
  es__http_pool_unref(h->data);
}

void es__http_pool_close(es__http_pool *pool, int err, void (*close_cb)(void *),
                         void *arg) {
  if (pool == NULL || pool->closing)
    return;
  pool->closing = 1;
  pool->close_cb = close_cb;
  pool->close_arg = arg;
  es__pool_fail_waiting(pool, err);
  while (!es__queue_empty(&pool->conns))
    es__http_conn_fail(
        es__container_of(es__queue_head(&pool->conns), es__http_conn, node),
        err);
  if (pool->resolving)
    uv_cancel((uv_req_t *)&pool->gai);
  uv_idle_stop(&pool->kick);
  uv_close((uv_handle_t *)&pool->kick, es__pool_kick_closed);
  uv_check_stop(&pool->tick);
  uv_close((uv_handle_t *)&pool->tick, es__pool_kick_closed);
}

void es__http_pool_stats_get(const es__http_pool *pool,
                             es__http_pool_stats *st) {
  const es__queue *q;
  memset(st, 0, sizeof(*st));
  st->open_connections = pool->n_conns;
  st->queued = pool->n_waiting;
  es__queue_foreach(q, &pool->conns) {
    st->in_flight += es__container_of(q, es__http_conn, node)->n_inflight;
  }
  st->connects = pool->connects;
  st->writes = pool->writes;
  st->read_pauses = pool->read_pauses;
  st->write_deferrals = pool->write_deferrals;
}
