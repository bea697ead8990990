#include "peer.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>

typedef struct peer_conn {
  uv_tcp_t tcp;
  uv_timer_t timer;
  peer *p;
  llhttp_t parser;
  unsigned pending; /* requests not yet answered */
  size_t sent;      /* bytes of the script sent in the current answer */
  int piece;
  int handles;
  int closing;
  struct peer_conn *next, **pprev;
} peer_conn;

static llhttp_settings_t peer_settings;

static void conn_closed(uv_handle_t *h) {
  peer_conn *c = h->data;
  if (--c->handles == 0)
    free(c);
}

static void conn_unlink(peer_conn *c) {
  if (c->pprev) {
    *c->pprev = c->next;
    if (c->next)
      c->next->pprev = c->pprev;
    c->pprev = NULL;
  }
}

static void conn_close(peer_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  conn_unlink(c);
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
  uv_close((uv_handle_t *)&c->timer, conn_closed);
}

static void write_done(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void send_bytes(peer_conn *c, const char *data, size_t len) {
  uv_write_t *w = malloc(sizeof(*w) + len);
  char *copy = (char *)(w + 1);
  uv_buf_t b;
  memcpy(copy, data, len);
  b = uv_buf_init(copy, (unsigned)len);
  if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, write_done) != 0)
    free(w);
}

static void send_next_piece(uv_timer_t *t);

static void finish_script(peer_conn *c) {
  peer *p = c->p;
  c->sent = 0;
  c->piece = 0;
  if (p->after == PEER_CLOSE) {
    conn_close(c);
  } else if (p->after == PEER_RESET) {
    c->closing = 1;
    conn_unlink(c);
    uv_tcp_close_reset(&c->tcp, conn_closed);
    uv_close((uv_handle_t *)&c->timer, conn_closed);
  }
}

/* One piece per loop iteration (a 1 ms timer), so that the client sees the
 * script cut exactly where the test says. */
static void send_next_piece(uv_timer_t *t) {
  peer_conn *c = t->data;
  peer *p = c->p;
  size_t end = p->script_len;

  if (c->closing)
    return;
  if (p->drip_ms)
    end = c->sent + 1;
  else if (c->piece < 8 && p->splits[c->piece] != 0 &&
           p->splits[c->piece] < p->script_len)
    end = p->splits[c->piece];
  send_bytes(c, p->script + c->sent, end - c->sent);
  c->sent = end;
  c->piece++;
  if (c->sent < p->script_len)
    uv_timer_start(&c->timer, send_next_piece, p->drip_ms ? p->drip_ms : 1, 0);
  else
    finish_script(c);
}

static void answer(peer_conn *c) {
  if (c->p->after == PEER_SILENT)
    return;
  c->sent = 0;
  c->piece = 0;
  send_next_piece(&c->timer);
}

static int on_message_complete(llhttp_t *parser) {
  peer_conn *c = parser->data;
  c->p->requests++;
  if (++c->pending >= c->p->expect) {
    c->pending = 0;
    answer(c);
  }
  return 0;
}

static void alloc_cb(uv_handle_t *h, size_t n, uv_buf_t *b) {
  (void)h;
  b->base = malloc(n);
  b->len = n;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  peer_conn *c = s->data;
  if (n < 0) {
    conn_close(c);
  } else if (n > 0 && !c->closing) {
    if (llhttp_execute(&c->parser, b->base, (size_t)n) != HPE_OK)
      conn_close(c);
  }
  free(b->base);
}

static void on_conn(uv_stream_t *server, int status) {
  peer *p = server->data;
  peer_conn *c;
  if (status < 0)
    return;
  c = calloc(1, sizeof(*c));
  c->p = p;
  uv_tcp_init(p->loop, &c->tcp);
  uv_timer_init(p->loop, &c->timer);
  c->tcp.data = c;
  c->timer.data = c;
  c->handles = 2;
  c->next = p->conns;
  if (p->conns)
    p->conns->pprev = &c->next;
  p->conns = c;
  c->pprev = &p->conns;
  llhttp_init(&c->parser, HTTP_REQUEST, &peer_settings);
  c->parser.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
    conn_close(c);
    return;
  }
  p->accepted++;
  uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
  if (p->unsolicited)
    answer(c);
}

int peer_start(peer *p, uv_loop_t *loop) {
  struct sockaddr_in addr;
  struct sockaddr_storage ss;
  int len = sizeof(ss), rc;

  llhttp_settings_init(&peer_settings);
  peer_settings.on_message_complete = on_message_complete;
  p->loop = loop;
  if (p->expect == 0)
    p->expect = 1;
  uv_tcp_init(loop, &p->server);
  p->server.data = p;
  uv_ip4_addr("127.0.0.1", 0, &addr);
  rc = uv_tcp_bind(&p->server, (struct sockaddr *)&addr, 0);
  if (rc == 0)
    rc = uv_listen((uv_stream_t *)&p->server, 64, on_conn);
  if (rc != 0)
    return rc;
  uv_tcp_getsockname(&p->server, (struct sockaddr *)&ss, &len);
  p->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  return 0;
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

void peer_stop(peer *p) {
  if (!p->closed) {
    p->closed = 1;
    uv_close((uv_handle_t *)&p->server, NULL);
    while (p->conns != NULL)
      conn_close(p->conns);
  }
}

int count_fds(void) {
  DIR *d;
  struct dirent *e;
  int n = 0;
  uv_loop_t loop;

  uv_loop_init(&loop);
  uv_loop_close(&loop);
  d = opendir("/proc/self/fd");
  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own descriptor */
}

static void timeout_cb(uv_timer_t *t) {
  *(int *)t->data = 1;
}

int run_until_n(uv_loop_t *loop, const int *counter, int target,
                unsigned timeout_ms) {
  uv_timer_t timer;
  int expired = 0;

  uv_timer_init(loop, &timer);
  timer.data = &expired;
  uv_timer_start(&timer, timeout_cb, timeout_ms, 0);
  uv_unref((uv_handle_t *)&timer);
  while (*counter < target && !expired)
    if (uv_run(loop, UV_RUN_ONCE) == 0 && *counter < target)
      break;
  uv_close((uv_handle_t *)&timer, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  return *counter >= target ? 0 : -1;
}

int close_loop(uv_loop_t *loop) {
  int i, rc;
  /* Let pending closes finish (peer connections close themselves). */
  for (i = 0; i < 50; i++)
    if (uv_run(loop, UV_RUN_NOWAIT) == 0)
      break;
  rc = uv_loop_close(loop);
  if (rc != 0) {
    uv_walk(loop, close_walk, NULL);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
  }
  return rc;
}
