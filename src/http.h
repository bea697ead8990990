/* A non-blocking HTTP/1.1 client on a caller-supplied libuv loop: a pool of
 * keep-alive connections to one endpoint, with pipelining and batched
 * writes. It knows nothing of Dapr: requests are opaque bytes (a head and a
 * body) built by the layer above, answers are a status, a few headers and a
 * body.
 *
 * Contract: es__http_pool_submit() returns 0 and later calls the request's
 * callback exactly once, on the loop thread, never from inside submit; or
 * returns a negative code and never calls it. The request's memory (and the
 * bytes it points to) belongs to the caller and must stay valid until the
 * callback runs. */
#ifndef ES_HTTP_H
#define ES_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include <llhttp.h>
#include <uv.h>

#include "buf.h"
#include "queue.h"

typedef struct es__http_pool es__http_pool;
typedef struct es__http_conn es__http_conn;
typedef struct es__http_request es__http_request;

typedef struct es__http_response {
  int status;       /* final status, >= 200 */
  const char *body; /* body bytes (not NUL-terminated), valid during cb */
  size_t body_len;
  int64_t retry_after_ms; /* Retry-After in milliseconds, -1 when absent */
  int keep_alive;         /* the connection stays open after this answer */
} es__http_response;

/* err is 0 when an answer arrived (res then describes it, whatever its
 * status), else a negative code and res is NULL. req->written tells whether
 * the request may have reached the peer (1) or surely did not (0). */
typedef void (*es__http_cb)(es__http_request *req, int err,
                            const es__http_response *res);

struct es__http_request {
  /* Set by the caller. */
  const char *head; /* request line and headers, ending in CRLF CRLF */
  size_t head_len;
  const char *body; /* may be NULL */
  size_t body_len;
  const char *tail; /* more body bytes after body; may be NULL */
  size_t tail_len;
  int is_head; /* a HEAD request: its answer has no body */
  es__http_cb cb;
  void *data;
  /* Set by the pool. */
  int written;
  es__queue node;
};

typedef struct es__http_pool_options {
  unsigned max_connections; /* default 4 */
  unsigned pipeline_depth;  /* requests in flight per connection, default 16 */
  uint64_t connect_timeout_ms;  /* default 5000 */
  uint64_t response_timeout_ms; /* first byte of an answer, default 10000 */
  uint64_t io_timeout_ms;   /* between reads within an answer, default 10000 */
  uint64_t idle_timeout_ms; /* idle connection lifetime, default 30000 */
  size_t max_header_bytes;  /* default 16 KiB */
  size_t max_body_bytes;    /* default 1 MiB */
  /* Fairness: once the pool and its user have worked this long in one loop
   * iteration, writing and reading wait for the next (0: no bound, the
   * default). See es__http_pool_tick_spent. */
  uint64_t tick_budget_us;
} es__http_pool_options;

void es__http_pool_options_init(es__http_pool_options *o);

/* 1 when the work of the current loop iteration (timed from the first call
 * in it) has used the tick budget: the caller should stop and go on in the
 * next iteration. The first call of an iteration answers 0, so every
 * iteration makes progress. Always 0 without a budget. */
int es__http_pool_tick_spent(es__http_pool *pool);
/* Starts timing the iteration's work, if not started: called where work
 * begins (the pool's and its user's callbacks), so that it all counts. */
void es__http_pool_tick_begin(es__http_pool *pool);

/* Parses an endpoint: "http://host[:port]" (port 80 by default; IPv6 in
 * brackets) or "unix:/path". ES_EUNSUPPORTED for https://, ES_EBADURL for
 * anything else. host_out (if not NULL) gets the Host header value. */
int es__http_parse_endpoint(const char *endpoint, char **host, int *port,
                            char **unix_path, char **host_header);

/* Creates a pool for endpoint; nothing connects until a request is
 * submitted. Loop thread. */
int es__http_pool_new(uv_loop_t *loop, const char *endpoint,
                      const es__http_pool_options *opts, es__http_pool **out);
/* The value to send in the Host header. */
const char *es__http_pool_host(const es__http_pool *pool);
/* Queues a request. 0 (callback later) or ES_ECLOSED, ES_EINVAL. */
int es__http_pool_submit(es__http_pool *pool, es__http_request *req);
/* Fails every request not yet answered with err (written ones are reported
 * as such), closes all connections and handles, then calls close_cb (may be
 * NULL) and frees the pool. Safe from inside a request callback. */
void es__http_pool_close(es__http_pool *pool, int err,
                         void (*close_cb)(void *arg), void *arg);

typedef struct es__http_pool_stats {
  unsigned open_connections;
  unsigned queued;
  unsigned in_flight;
  uint64_t connects;
  uint64_t writes; /* uv_write calls */
  /* The tick budget at work: reads stopped until the next iteration, and
   * writes left for it. */
  uint64_t read_pauses;
  uint64_t write_deferrals;
} es__http_pool_stats;
void es__http_pool_stats_get(const es__http_pool *pool,
                             es__http_pool_stats *st);

#endif
