/* Shared between http_conn.c (one connection: connect, write, parse,
 * timers) and http_pool.c (endpoint, resolution, dispatch, close). */
#ifndef ES_HTTP_INTERNAL_H
#define ES_HTTP_INTERNAL_H

#include "http.h"

#define ES__HTTP_MAX_ADDRS 4
#define ES__HTTP_READ_BUF (64 * 1024)

enum es__conn_state { ES__CONN_CONNECTING, ES__CONN_OPEN, ES__CONN_CLOSING };
/* What the connection's one timer is measuring. */
enum es__conn_phase {
  ES__PHASE_CONNECT,
  ES__PHASE_RESPONSE, /* waiting for the first byte of an answer */
  ES__PHASE_IO,       /* inside an answer */
  ES__PHASE_IDLE
};

struct es__http_conn {
  es__queue node; /* in pool->conns */
  es__http_pool *pool;
  union {
    uv_handle_t handle;
    uv_stream_t stream;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } s;
  uv_timer_t timer;
  uv_connect_t connect_req;
  llhttp_t parser;
  enum es__conn_state state;
  enum es__conn_phase phase;
  int detached;       /* no socket, no timer: the fuzzer feeds it */
  int read_paused;    /* reading stopped until the next loop iteration */
  int handles;        /* libuv handles not yet closed */
  int no_reuse;       /* peer asked to close after the current answer */
  int err;            /* why a parser callback stopped the parser */
  es__queue inflight; /* written, awaiting an answer, in write order */
  unsigned n_inflight;
  /* the answer being parsed */
  int in_response;
  int status;
  size_t header_bytes;
  es__buf body;
  int64_t retry_after_ms;
  int field_done; /* the last header span was a value */
  char field[16]; /* header name so far (only short names matter) */
  size_t field_len;
  int field_is_retry_after;
  char value[48];
  size_t value_len;
};

struct es__http_pool {
  uv_loop_t *loop;
  es__http_pool_options o;
  char *host;
  int port;
  char *unix_path;
  char *host_header;
  struct sockaddr_storage addrs[ES__HTTP_MAX_ADDRS];
  int n_addrs;
  int addr_index;
  uv_getaddrinfo_t gai;
  int resolving;
  uv_idle_t kick;  /* runs dispatch once, soon, without blocking the loop */
  uv_check_t tick; /* ends an iteration's work budget; unreferenced */
  uint64_t tick_start_ns; /* first work of this iteration; 0: none yet */
  unsigned n_paused;      /* connections with read_paused */
  es__queue waiting;      /* submitted, not yet written */
  unsigned n_waiting;
  es__queue conns;
  unsigned n_conns; /* not closing */
  unsigned n_connecting;
  int refs; /* kick and tick handles, live connections, resolution */
  int closing;
  void (*close_cb)(void *arg);
  void *close_arg;
  char read_buf[ES__HTTP_READ_BUF];
  int read_buf_busy;
  uint64_t connects;
  uint64_t writes;
  uint64_t read_pauses, write_deferrals;
};

/* http_conn.c */
int es__http_conn_start(es__http_pool *pool);
/* Writes up to n waiting requests on an open connection in one uv_write. */
void es__http_conn_write(es__http_conn *conn, unsigned n);
/* Fails the connection's requests with err and closes it. */
void es__http_conn_fail(es__http_conn *conn, int err);
/* Reads again after a read_paused pause. */
void es__http_conn_resume_reading(es__http_conn *conn);

/* The fuzzer's entry: parses data as answers to up to 8 pipelined
 * requests, cut at random points, then EOF; aborts if any request does not
 * end exactly once. */
int es__http_fuzz_responses(const uint8_t *data, size_t size);

/* http_pool.c */
void es__http_pool_kick(es__http_pool *pool);
/* Called by a connection that failed before it ever connected. */
void es__http_pool_connect_failed(es__http_pool *pool, int err);
void es__http_pool_unref(es__http_pool *pool);
/* Completes a request: takes it off whatever list it is on, then calls its
 * callback. */
void es__http_request_complete(es__http_request *req, int err,
                               const es__http_response *res);

#endif
