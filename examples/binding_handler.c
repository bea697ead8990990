/* The guide's "Dapr binding handler": a libuv HTTP server (llhttp in
 * request mode) that receives events as a Dapr input binding posts them,
 * parses each with es_event_parse, processes it, and publishes a result
 * event with custom metadata {"handler": "kafka_binding"}. A bad body gets
 * a 400 with a JSON error, never a crash. The answer does not wait for the
 * publish ("log, don't fail").
 *
 *   binding_handler            serve on a free port and drive itself with a
 *                              few good and bad requests, then exit
 *                              (1 if an answer or a publish was wrong)
 *   binding_handler --serve P  serve on 127.0.0.1:P until SIGINT */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <llhttp.h>
#include <uv.h>

#include "eventstore.h"

typedef struct hconn {
  uv_tcp_t tcp;
  llhttp_t parser;
  char *body;
  size_t len;
  int closing;
} hconn;

static es_client *client;
static llhttp_settings_t settings;
static int published_ok, published_failed, processed, rejected;

static void on_result_published(es_client *c, const es_publish_result *r,
                                void *d) {
  (void)c;
  (void)d;
  if (r->status == 0) {
    published_ok++;
  } else {
    published_failed++;
    fprintf(stderr, "binding_handler: result not published: %s\n",
            es_strerror(r->status));
  }
}

static void closed(uv_handle_t *h) {
  hconn *c = h->data;
  free(c->body);
  free(c);
}

static void written(uv_write_t *w, int status) {
  (void)status;
  free(w);
}

static void reply(hconn *c, int status, const char *json) {
  char head[256];
  size_t hl, bl = strlen(json);
  uv_write_t *w = malloc(sizeof(*w) + sizeof(head) + bl);
  char *buf = (char *)(w + 1);
  uv_buf_t b;
  hl = (size_t)snprintf(head, sizeof(head),
                        "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n"
                        "Content-Length: %zu\r\n\r\n",
                        status, status == 200 ? "OK" : "Bad Request", bl);
  memcpy(buf, head, hl);
  memcpy(buf + hl, json, bl);
  b = uv_buf_init(buf, (unsigned)(hl + bl));
  if (uv_write(w, (uv_stream_t *)&c->tcp, &b, 1, written) != 0)
    free(w);
}

/* The handler proper. */
static void handle_event(hconn *c) {
  es_event *in = NULL, *result = NULL;
  char err[256], json[512];
  cJSON *data, *custom;
  int rc =
      es_event_parse(&in, c->body ? c->body : "", c->len, err, sizeof(err));
  if (rc != 0) {
    cJSON *e = cJSON_CreateObject();
    char *text;
    cJSON_AddStringToObject(e, "error", err);
    cJSON_AddStringToObject(e, "code", es_err_name(rc));
    text = cJSON_PrintUnformatted(e);
    reply(c, 400, text ? text : "{}");
    free(text);
    cJSON_Delete(e);
    rejected++;
    return;
  }
  /* "process" the event */
  data = cJSON_CreateObject();
  cJSON_AddStringToObject(data, "input_type", es_event_type(in));
  cJSON_AddStringToObject(data, "input_name", es_event_name(in));
  cJSON_AddNumberToObject(data, "fields",
                          cJSON_GetArraySize(es_event_data(in)));
  cJSON_AddBoolToObject(data, "processed", 1);
  custom = cJSON_CreateObject();
  cJSON_AddStringToObject(custom, "handler", "kafka_binding");
  rc = es_event_new(&result, "processing_results", "event_processed", data);
  if (rc == 0)
    rc = es_publish_event_simple(client, result, custom, on_result_published,
                                 NULL);
  if (rc != 0) {
    published_failed++;
    fprintf(stderr, "binding_handler: not accepted: %s\n", es_strerror(rc));
  }
  processed++;
  snprintf(json, sizeof(json), "{\"status\":\"processed\"}");
  reply(c, 200, json);
  es_event_free(in);
  es_event_free(result);
  cJSON_Delete(data);
  cJSON_Delete(custom);
}

static int on_begin(llhttp_t *p) {
  hconn *c = p->data;
  c->len = 0;
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t n) {
  hconn *c = p->data;
  char *nb;
  if (c->len + n > 1024 * 1024)
    return -1; /* too large: the parser error path answers 400 */
  nb = realloc(c->body, c->len + n + 1);
  if (nb == NULL)
    return -1;
  c->body = nb;
  memcpy(c->body + c->len, at, n);
  c->len += n;
  return 0;
}

static int on_complete(llhttp_t *p) {
  handle_event(p->data);
  return 0;
}

static void alloc_cb(uv_handle_t *h, size_t n, uv_buf_t *b) {
  static char slab[65536];
  (void)h;
  (void)n;
  *b = uv_buf_init(slab, sizeof(slab));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  hconn *c = s->data;
  if (n < 0) {
    if (!c->closing) {
      c->closing = 1;
      uv_close((uv_handle_t *)s, closed);
    }
    return;
  }
  if (n > 0 && llhttp_execute(&c->parser, b->base, (size_t)n) != HPE_OK &&
      !c->closing) {
    reply(c, 400, "{\"error\":\"malformed HTTP request\"}");
    c->closing = 1;
    uv_read_stop(s);
    uv_close((uv_handle_t *)s, closed);
  }
}

static void on_connection(uv_stream_t *l, int status) {
  hconn *c;
  if (status < 0)
    return;
  c = calloc(1, sizeof(*c));
  uv_tcp_init(l->loop, &c->tcp);
  c->tcp.data = c;
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
  if (uv_accept(l, (uv_stream_t *)&c->tcp) == 0)
    uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, on_read);
  else
    uv_close((uv_handle_t *)&c->tcp, closed);
}

/* ---- self-driving mode: a tiny client sending requests one by one ---- */

static const struct {
  const char *body;
  int want;
} requests[] = {
    {"{\"event_type\":\"orders\",\"event_name\":\"order_created\","
     "\"data\":{\"id\":1,\"total\":9.5}}",
     200},
    {"{\"event_type\":\"orders\",\"event_name\":\"order_paid\","
     "\"data\":{\"id\":1},\"metadata\":{\"workflow_id\":\"wf-1\"}}",
     200},
    {"this is not JSON", 400},
    {"{\"event_name\":\"no_type\",\"data\":{}}", 400},
    {"{\"event_type\":\"orders\",\"event_name\":\"x\",\"data\":[1,2]}", 400},
};
#define NREQ (sizeof(requests) / sizeof(requests[0]))

typedef struct driver {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t w;
  char out[1024];
  size_t idx;
  int port, wrong;
  uv_tcp_t *listener;
} driver;

static void drive_next(driver *d);
static void drive_closed_next(uv_handle_t *h);

static void drive_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b) {
  driver *d = s->data;
  int status = 0;
  if (n == 0)
    return;
  if (n < 0) {
    fprintf(stderr, "binding_handler: no answer to request %zu\n", d->idx);
    d->wrong++;
    uv_close((uv_handle_t *)s, drive_closed_next);
    return;
  }
  if (sscanf(b->base, "HTTP/1.1 %d", &status) != 1 ||
      status != requests[d->idx].want) {
    fprintf(stderr, "binding_handler: request %zu got %d, want %d\n", d->idx,
            status, requests[d->idx].want);
    d->wrong++;
  }
  uv_read_stop(s);
  uv_close((uv_handle_t *)s, drive_closed_next);
}

static void drive_closed_next(uv_handle_t *h) {
  driver *d = h->data;
  d->idx++;
  if (d->idx < NREQ) {
    drive_next(d);
  } else {
    uv_close((uv_handle_t *)d->listener, NULL);
    es_client_close(client, NULL); /* waits for the results to go out */
  }
}

static void drive_connected(uv_connect_t *r, int status) {
  driver *d = r->data;
  uv_buf_t b;
  int n;
  if (status < 0) {
    fprintf(stderr, "binding_handler: connect: %s\n", uv_strerror(status));
    exit(1);
  }
  n = snprintf(d->out, sizeof(d->out),
               "POST /kafka-input HTTP/1.1\r\nHost: localhost\r\n"
               "Content-Type: application/json\r\nContent-Length: %zu\r\n"
               "Connection: close\r\n\r\n%s",
               strlen(requests[d->idx].body), requests[d->idx].body);
  b = uv_buf_init(d->out, (unsigned)n);
  uv_write(&d->w, (uv_stream_t *)&d->tcp, &b, 1, NULL);
  uv_read_start((uv_stream_t *)&d->tcp, alloc_cb, drive_read);
}

static void drive_next(driver *d) {
  struct sockaddr_in a;
  uv_tcp_init(d->listener->loop, &d->tcp);
  d->tcp.data = d;
  d->creq.data = d;
  uv_ip4_addr("127.0.0.1", d->port, &a);
  uv_tcp_connect(&d->creq, &d->tcp, (struct sockaddr *)&a, drive_connected);
}

static uv_signal_t sigint;
static void on_sigint(uv_signal_t *s, int sig) {
  uv_tcp_t *l = s->data;
  (void)sig;
  uv_close((uv_handle_t *)s, NULL);
  uv_close((uv_handle_t *)l, NULL);
  es_client_close(client, NULL);
}

int main(int argc, char **argv) {
  uv_loop_t loop;
  uv_tcp_t listener;
  struct sockaddr_in a;
  struct sockaddr_storage ss;
  int len = sizeof(ss), serve_port = -1, rc;
  driver d;

  signal(SIGPIPE, SIG_IGN);
  if (argc == 3 && strcmp(argv[1], "--serve") == 0)
    serve_port = atoi(argv[2]);
  llhttp_settings_init(&settings);
  settings.on_message_begin = on_begin;
  settings.on_body = on_body;
  settings.on_message_complete = on_complete;
  uv_loop_init(&loop);
  rc = es_client_init(&loop, &client, NULL);
  if (rc != 0) {
    fprintf(stderr, "binding_handler: %s\n", es_strerror(rc));
    return 1;
  }
  uv_tcp_init(&loop, &listener);
  uv_ip4_addr("127.0.0.1", serve_port > 0 ? serve_port : 0, &a);
  if ((rc = uv_tcp_bind(&listener, (struct sockaddr *)&a, 0)) != 0 ||
      (rc = uv_listen((uv_stream_t *)&listener, 128, on_connection)) != 0) {
    fprintf(stderr, "binding_handler: listen: %s\n", uv_strerror(rc));
    return 1;
  }
  uv_tcp_getsockname(&listener, (struct sockaddr *)&ss, &len);
  memset(&d, 0, sizeof(d));
  d.port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  d.listener = &listener;
  if (serve_port > 0) {
    printf("binding_handler: serving on http://127.0.0.1:%d\n", d.port);
    uv_signal_init(&loop, &sigint);
    sigint.data = &listener;
    uv_signal_start(&sigint, on_sigint, SIGINT);
  } else {
    drive_next(&d);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  printf("binding_handler: %d processed, %d rejected with 400, %d results "
         "published, %d failed\n",
         processed, rejected, published_ok, published_failed);
  if (serve_port > 0)
    return published_failed ? 1 : 0;
  return d.wrong == 0 && processed == 2 && rejected == 3 && published_ok == 2 &&
                 published_failed == 0
             ? 0
             : 1;
}
