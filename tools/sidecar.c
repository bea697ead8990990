/* The engine of es-sidecar: see sidecar.h. */
#include "sidecar.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <llhttp.h>

#define MAX_URL 8192
#define MAX_HEADERS (64 * 1024)

typedef struct sbuf {
  char *data;
  size_t len, cap;
} sbuf;

static void sbuf_add(sbuf *b, const void *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1)
      cap *= 2;
    b->data = realloc(b->data, cap);
    if (b->data == NULL) {
      fprintf(stderr, "es-sidecar: out of memory\n");
      abort();
    }
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
}

static void sbuf_str(sbuf *b, const char *s) {
  sbuf_add(b, s, strlen(s));
}

static void sbuf_printf(sbuf *b, const char *fmt, ...) {
  char tmp[1024];
  va_list ap;
  int n;
  va_start(ap, fmt);
  n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
  va_end(ap);
  if (n > 0)
    sbuf_add(b, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

typedef struct delayed {
  struct delayed *next;
  uint64_t due;
  int close_after;
  size_t len;
  char data[];
} delayed;

struct es_sidecar_conn {
  es_sidecar *sc;
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } u;
  uv_timer_t timer;
  int attached;
  int handles;
  int closing;
  int drop;        /* close now, without answering the current request */
  int close_after; /* close once the answers written so far are out */
  int writes_pending;
  llhttp_t parser;
  char url[MAX_URL + 1];
  size_t url_len;
  int url_too_long;
  size_t header_bytes;
  char field[64];
  size_t field_len;
  int field_done;
  int field_kind; /* 1 token, 2 content-type */
  sbuf token;
  sbuf content_type;
  sbuf body;
  int body_too_large;
  unsigned long requests;
  sbuf out; /* answers of the current read */
  delayed *dq_head, *dq_tail;
  struct es_sidecar_conn *next, *prev;
};

struct es_sidecar {
  uv_loop_t *loop;
  es_sidecar_options o;
  union {
    uv_handle_t h;
    uv_stream_t s;
    uv_tcp_t tcp;
    uv_pipe_t pipe;
  } listener;
  uv_signal_t sigint, sigterm;
  int port;
  int out_fd;
  int stopping;
  char **components;
  int n_components;
  es_sidecar_conn conns; /* list head */
  sbuf rec;              /* records not yet written */
  /* counters */
  unsigned long connections, requests, events, bindings, publishes,
      bulk_requests, bulk_entries, bulk_entries_failed, injected_fail,
      injected_close, injected_retry_after, unauthorized, bad_requests,
      event_requests;
};

void es_sidecar_options_init(es_sidecar_options *o) {
  memset(o, 0, sizeof(*o));
  o->host = "127.0.0.1";
  o->port = 3500;
  o->components = "eventstore,pubsub";
  o->retry_after_secs = 1;
  o->max_body = 16 * 1024 * 1024;
  o->handle_signals = 1;
}

static int is_component(es_sidecar *sc, const char *name) {
  int i;
  for (i = 0; i < sc->n_components; i++)
    if (strcmp(sc->components[i], name) == 0)
      return 1;
  return 0;
}

/* ---- output -------------------------------------------------------------- */

static void flush_records(es_sidecar *sc) {
  size_t off = 0;
  if (sc->rec.len == 0)
    return;
  /* Recorded before anything is answered: an acknowledged event is on disk
   * (in the page cache) even if this process is killed right after. */
  while (off < sc->rec.len) {
    ssize_t n = write(sc->out_fd, sc->rec.data + off, sc->rec.len - off);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      fprintf(stderr, "es-sidecar: write to output failed: %s\n",
              strerror(errno));
      break;
    }
    off += (size_t)n;
  }
  sc->rec.len = 0;
}

static void record(es_sidecar *sc, cJSON *line) {
  char *text = cJSON_PrintUnformatted(line);
  if (text == NULL)
    abort();
  sbuf_str(&sc->rec, text);
  sbuf_add(&sc->rec, "\n", 1);
  free(text);
  sc->events++;
}

/* ---- answers ------------------------------------------------------------- */

static const char *reason(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 413:
    return "Payload Too Large";
  case 414:
    return "URI Too Long";
  case 429:
    return "Too Many Requests";
  case 431:
    return "Request Header Fields Too Large";
  default:
    return "Internal Server Error";
  }
}

static void answer(es_sidecar_conn *c, int status, const char *ctype,
                   const char *body, const char *extra_headers) {
  es_sidecar *sc = c->sc;
  sbuf *out = &c->out;
  sbuf tmp = {0};
  size_t blen = body ? strlen(body) : 0;
  int keep = !c->close_after;

  if (sc->o.chunked && status == 204) {
    status = 200, ctype = "application/json", body = "{}", blen = 2;
  }
  if (sc->o.delay_ms > 0)
    out = &tmp;
  sbuf_printf(out, "HTTP/1.1 %d %s\r\n", status, reason(status));
  if (extra_headers)
    sbuf_str(out, extra_headers);
  if (!keep)
    sbuf_str(out, "Connection: close\r\n");
  if (status == 204) {
    sbuf_str(out, "\r\n");
  } else if (sc->o.chunked) {
    size_t half = blen / 2;
    sbuf_printf(out, "Content-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n",
                ctype);
    if (half > 0)
      sbuf_printf(out, "%zx;ext=1\r\n", half), sbuf_add(out, body, half),
          sbuf_str(out, "\r\n");
    if (blen - half > 0)
      sbuf_printf(out, "%zx\r\n", blen - half),
          sbuf_add(out, body + half, blen - half), sbuf_str(out, "\r\n");
    sbuf_str(out, "0\r\nX-Trailer: done\r\n\r\n");
  } else {
    sbuf_printf(out, "Content-Type: %s\r\nContent-Length: %zu\r\n\r\n", ctype,
                blen);
    sbuf_add(out, body, blen);
  }
  if (sc->o.delay_ms > 0 && c->attached) {
    delayed *d = malloc(sizeof(*d) + tmp.len);
    if (d == NULL)
      abort();
    d->next = NULL;
    d->due = uv_now(sc->loop) + sc->o.delay_ms;
    d->close_after = !keep;
    d->len = tmp.len;
    memcpy(d->data, tmp.data, tmp.len);
    if (c->dq_tail)
      c->dq_tail->next = d;
    else
      c->dq_head = d;
    c->dq_tail = d;
  }
  free(tmp.data);
}

static void answer_error(es_sidecar_conn *c, int status, const char *code,
                         const char *msg) {
  cJSON *j = cJSON_CreateObject();
  char *text;
  cJSON_AddStringToObject(j, "errorCode", code);
  cJSON_AddStringToObject(j, "message", msg);
  text = cJSON_PrintUnformatted(j);
  answer(c, status, "application/json", text, NULL);
  free(text);
  cJSON_Delete(j);
}

/* ---- routing ------------------------------------------------------------- */

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9')
    return ch - '0';
  ch = (char)tolower((unsigned char)ch);
  if (ch >= 'a' && ch <= 'f')
    return ch - 'a' + 10;
  return -1;
}

/* Percent-decodes [s, s+n) into a new string; NULL when malformed. */
static char *pct_decode(const char *s, size_t n) {
  char *out = malloc(n + 1);
  size_t i, k = 0;
  if (out == NULL)
    abort();
  for (i = 0; i < n; i++) {
    if (s[i] == '%') {
      int hi, lo;
      if (i + 2 >= n) {
        free(out);
        return NULL;
      }
      hi = hexval(s[i + 1]);
      lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0) {
        free(out);
        return NULL;
      }
      out[k++] = (char)(hi * 16 + lo);
      i += 2;
    } else if (s[i] == '+') {
      out[k++] = '+';
    } else {
      out[k++] = s[i];
    }
  }
  out[k] = '\0';
  if (memchr(out, '\0', k) != NULL) {
    free(out);
    return NULL;
  }
  return out;
}

/* Splits the path after prefix into exactly nseg decoded segments. */
static int split_path(const char *path, size_t plen, const char *prefix,
                      char **segs, int nseg) {
  size_t pl = strlen(prefix), start;
  int k = 0;

  if (plen < pl || memcmp(path, prefix, pl) != 0)
    return -1;
  start = pl;
  while (k < nseg) {
    size_t end = start;
    while (end < plen && path[end] != '/')
      end++;
    if (end == start)
      break;
    segs[k] = pct_decode(path + start, end - start);
    if (segs[k] == NULL)
      break;
    k++;
    if (end == plen) {
      start = end;
      break;
    }
    start = end + 1;
  }
  if (k != nseg || start != plen) {
    while (k > 0)
      free(segs[--k]);
    return -1;
  }
  return 0;
}

static cJSON *query_metadata(const char *q) {
  cJSON *md = cJSON_CreateObject();
  while (q && *q) {
    const char *amp = strchr(q, '&'), *eq;
    size_t n = amp ? (size_t)(amp - q) : strlen(q);
    eq = memchr(q, '=', n);
    if (eq && (size_t)(eq - q) > 9 && strncmp(q, "metadata.", 9) == 0) {
      char *k = pct_decode(q + 9, (size_t)(eq - q) - 9);
      char *v = pct_decode(eq + 1, n - (size_t)(eq - q) - 1);
      if (k && v)
        cJSON_AddStringToObject(md, k, v);
      free(k);
      free(v);
    }
    q = amp ? amp + 1 : NULL;
  }
  return md;
}

/* Which fault, if any, this event-carrying request gets: 'c' close, 'r'
 * retry-after, 'f' fail, 0 none. */
static int next_fault(es_sidecar *sc) {
  unsigned long n = ++sc->event_requests;
  if (sc->o.close_every && n % sc->o.close_every == 0)
    return 'c';
  if (sc->o.retry_after_every && n % sc->o.retry_after_every == 0)
    return 'r';
  if (sc->o.fail_every && n % sc->o.fail_every == 0)
    return 'f';
  return 0;
}

/* Answers a fault other than close; returns 1 when one was answered. */
static int answer_fault(es_sidecar_conn *c, int fault) {
  es_sidecar *sc = c->sc;
  char hdr[64];
  if (fault == 'r') {
    sc->injected_retry_after++;
    snprintf(hdr, sizeof(hdr), "Retry-After: %lu\r\n", sc->o.retry_after_secs);
    answer(c, 429, "application/json",
           "{\"errorCode\":\"ERR_TOO_MANY_REQUESTS\",\"message\":\"injected "
           "retry-after\"}",
           hdr);
    return 1;
  }
  if (fault == 'f') {
    sc->injected_fail++;
    answer_error(c, 500, "ERR_INVOKE_OUTPUT_BINDING", "injected failure");
    return 1;
  }
  return 0;
}

static void handle_binding(es_sidecar_conn *c, const char *name) {
  es_sidecar *sc = c->sc;
  cJSON *req, *line;
  char msg[512];
  int fault;

  req = cJSON_ParseWithLength(c->body.data ? c->body.data : "", c->body.len);
  if (req == NULL || !cJSON_IsObject(req) ||
      !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(req, "operation"))) {
    cJSON_Delete(req);
    sc->bad_requests++;
    answer_error(c, 400, "ERR_MALFORMED_REQUEST",
                 "failed deserializing HTTP body: expected a JSON object with "
                 "operation");
    return;
  }
  if (!is_component(sc, name)) {
    cJSON_Delete(req);
    snprintf(msg, sizeof(msg),
             "error invoking output binding %s: couldn't find output binding "
             "%s",
             name, name);
    answer_error(c, 500, "ERR_INVOKE_OUTPUT_BINDING", msg);
    return;
  }
  fault = next_fault(sc);
  if (answer_fault(c, fault)) {
    cJSON_Delete(req);
    return;
  }
  line = cJSON_CreateObject();
  cJSON_AddStringToObject(line, "kind", "binding");
  cJSON_AddStringToObject(line, "name", name);
  cJSON_AddItemToObject(
      line, "operation",
      cJSON_DetachItemFromObjectCaseSensitive(req, "operation"));
  if (cJSON_GetObjectItemCaseSensitive(req, "metadata"))
    cJSON_AddItemToObject(
        line, "metadata",
        cJSON_DetachItemFromObjectCaseSensitive(req, "metadata"));
  if (cJSON_GetObjectItemCaseSensitive(req, "data"))
    cJSON_AddItemToObject(line, "body",
                          cJSON_DetachItemFromObjectCaseSensitive(req, "data"));
  else
    cJSON_AddNullToObject(line, "body");
  record(sc, line);
  cJSON_Delete(line);
  cJSON_Delete(req);
  sc->bindings++;
  if (fault == 'c') {
    sc->injected_close++;
    c->drop = 1;
    return;
  }
  answer(c, 204, NULL, NULL, NULL);
}

static cJSON *parse_body_any(es_sidecar_conn *c) {
  cJSON *j =
      cJSON_ParseWithLength(c->body.data ? c->body.data : "", c->body.len);
  if (j == NULL)
    j = cJSON_CreateString(c->body.data ? c->body.data : "");
  return j;
}

/* Answers 404 as daprd does when the pub/sub component is unknown. */
static int pubsub_found(es_sidecar_conn *c, const char *pubsub) {
  char msg[512];
  if (is_component(c->sc, pubsub))
    return 1;
  snprintf(msg, sizeof(msg), "pubsub %s not found", pubsub);
  answer_error(c, 404, "ERR_PUBSUB_NOT_FOUND", msg);
  return 0;
}

static void handle_publish(es_sidecar_conn *c, const char *pubsub,
                           const char *topic, const char *query) {
  es_sidecar *sc = c->sc;
  cJSON *line;
  int fault;

  if (!pubsub_found(c, pubsub))
    return;
  fault = next_fault(sc);
  if (answer_fault(c, fault))
    return;
  line = cJSON_CreateObject();
  cJSON_AddStringToObject(line, "kind", "publish");
  cJSON_AddStringToObject(line, "pubsub", pubsub);
  cJSON_AddStringToObject(line, "topic", topic);
  cJSON_AddStringToObject(line, "content_type",
                          c->content_type.data ? c->content_type.data : "");
  cJSON_AddItemToObject(line, "metadata", query_metadata(query));
  cJSON_AddItemToObject(line, "body", parse_body_any(c));
  record(sc, line);
  cJSON_Delete(line);
  sc->publishes++;
  if (fault == 'c') {
    sc->injected_close++;
    c->drop = 1;
    return;
  }
  answer(c, 204, NULL, NULL, NULL);
}

static void handle_bulk(es_sidecar_conn *c, const char *pubsub,
                        const char *topic, const char *query) {
  es_sidecar *sc = c->sc;
  cJSON *req, *entry, *failed, *md;
  int fault;

  if (!pubsub_found(c, pubsub))
    return;
  req = cJSON_ParseWithLength(c->body.data ? c->body.data : "", c->body.len);
  if (!cJSON_IsArray(req)) {
    cJSON_Delete(req);
    sc->bad_requests++;
    answer_error(c, 400, "ERR_PUBSUB_EVENTS_SER",
                 "error when unmarshaling the request for topic: not an "
                 "array of entries");
    return;
  }
  cJSON_ArrayForEach(entry, req) {
    cJSON *id = cJSON_GetObjectItemCaseSensitive(entry, "entryId");
    if (!cJSON_IsString(id) || id->valuestring[0] == '\0' ||
        !cJSON_GetObjectItemCaseSensitive(entry, "event")) {
      cJSON_Delete(req);
      sc->bad_requests++;
      answer_error(c, 400, "ERR_PUBSUB_EVENTS_SER",
                   "entryId and event are required for every entry");
      return;
    }
  }
  fault = next_fault(sc);
  if (answer_fault(c, fault)) {
    cJSON_Delete(req);
    return;
  }
  sc->bulk_requests++;
  failed = cJSON_CreateArray();
  md = query_metadata(query);
  cJSON_ArrayForEach(entry, req) {
    const char *id =
        cJSON_GetObjectItemCaseSensitive(entry, "entryId")->valuestring;
    cJSON *ct = cJSON_GetObjectItemCaseSensitive(entry, "contentType");
    sc->bulk_entries++;
    if (sc->o.bulk_fail_every &&
        sc->bulk_entries % sc->o.bulk_fail_every == 0) {
      cJSON *f = cJSON_CreateObject();
      cJSON_AddStringToObject(f, "entryId", id);
      cJSON_AddStringToObject(f, "error", "injected failure");
      cJSON_AddItemToArray(failed, f);
      sc->bulk_entries_failed++;
      continue;
    }
    {
      cJSON *line = cJSON_CreateObject();
      cJSON_AddStringToObject(line, "kind", "bulk");
      cJSON_AddStringToObject(line, "pubsub", pubsub);
      cJSON_AddStringToObject(line, "topic", topic);
      cJSON_AddStringToObject(line, "entryId", id);
      cJSON_AddStringToObject(line, "content_type",
                              cJSON_IsString(ct) ? ct->valuestring : "");
      cJSON_AddItemToObject(line, "metadata", cJSON_Duplicate(md, 1));
      cJSON_AddItemToObject(
          line, "body",
          cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(entry, "event"), 1));
      record(sc, line);
      cJSON_Delete(line);
    }
  }
  cJSON_Delete(md);
  cJSON_Delete(req);
  if (fault == 'c') {
    cJSON_Delete(failed);
    sc->injected_close++;
    c->drop = 1;
    return;
  }
  if (cJSON_GetArraySize(failed) > 0) {
    cJSON *resp = cJSON_CreateObject();
    char *text;
    cJSON_AddItemToObject(resp, "failedEntries", failed);
    cJSON_AddStringToObject(resp, "errorCode", "ERR_PUBSUB_PUBLISH_MESSAGE");
    text = cJSON_PrintUnformatted(resp);
    answer(c, 500, "application/json", text, NULL);
    free(text);
    cJSON_Delete(resp);
  } else {
    cJSON_Delete(failed);
    answer(c, 204, NULL, NULL, NULL);
  }
}

static void handle_metadata(es_sidecar_conn *c) {
  es_sidecar *sc = c->sc;
  cJSON *j = cJSON_CreateObject(), *arr = cJSON_CreateArray();
  char *text;
  int i;
  cJSON_AddStringToObject(j, "id", "es-sidecar");
  for (i = 0; i < sc->n_components; i++) {
    cJSON *comp = cJSON_CreateObject();
    cJSON_AddStringToObject(comp, "name", sc->components[i]);
    cJSON_AddStringToObject(comp, "type",
                            strstr(sc->components[i], "pubsub")
                                ? "pubsub.in-memory"
                                : "bindings.local");
    cJSON_AddStringToObject(comp, "version", "v1");
    cJSON_AddItemToArray(arr, comp);
  }
  cJSON_AddItemToObject(j, "components", arr);
  text = cJSON_PrintUnformatted(j);
  answer(c, 200, "application/json", text, NULL);
  free(text);
  cJSON_Delete(j);
}

static int path_is(const char *url, size_t plen, const char *path) {
  return plen == strlen(path) && memcmp(url, path, plen) == 0;
}

static void handle_request(es_sidecar_conn *c) {
  es_sidecar *sc = c->sc;
  const char *url = c->url, *q;
  size_t plen;
  int method = llhttp_get_method(&c->parser);
  char *seg[2] = {NULL, NULL};

  sc->requests++;
  if (sc->o.token != NULL &&
      (c->token.data == NULL || strcmp(c->token.data, sc->o.token) != 0)) {
    sc->unauthorized++;
    answer(c, 401, "text/plain; charset=utf-8", "invalid api token", NULL);
    return;
  }
  q = strchr(url, '?');
  plen = q ? (size_t)(q - url) : strlen(url);
  if (q)
    q++;
  if (path_is(url, plen, "/v1.0/healthz") ||
      path_is(url, plen, "/v1.0/healthz/outbound")) {
    answer(c, 204, NULL, NULL, NULL);
    return;
  }
  if (path_is(url, plen, "/v1.0/metadata")) {
    if (method != HTTP_GET)
      answer_error(c, 405, "ERR_METHOD", "use GET");
    else
      handle_metadata(c);
    return;
  }
  if (split_path(url, plen, "/v1.0/bindings/", seg, 1) == 0) {
    if (method != HTTP_POST && method != HTTP_PUT)
      answer_error(c, 405, "ERR_METHOD", "use POST");
    else
      handle_binding(c, seg[0]);
    free(seg[0]);
    return;
  }
  if (split_path(url, plen, "/v1.0/publish/", seg, 2) == 0) {
    if (method != HTTP_POST)
      answer_error(c, 405, "ERR_METHOD", "use POST");
    else
      handle_publish(c, seg[0], seg[1], q);
    free(seg[0]);
    free(seg[1]);
    return;
  }
  if (split_path(url, plen, "/v1.0-alpha1/publish/bulk/", seg, 2) == 0) {
    if (method != HTTP_POST)
      answer_error(c, 405, "ERR_METHOD", "use POST");
    else
      handle_bulk(c, seg[0], seg[1], q);
    free(seg[0]);
    free(seg[1]);
    return;
  }
  sc->bad_requests++;
  answer_error(c, 404, "ERR_NOT_FOUND", "no such route");
}

/* ---- llhttp (request mode) ----------------------------------------------- */

static int on_message_begin(llhttp_t *p) {
  es_sidecar_conn *c = p->data;
  c->url_len = 0;
  c->url_too_long = 0;
  c->header_bytes = 0;
  c->field_len = 0;
  c->field_done = 1;
  c->field_kind = 0;
  c->token.len = 0;
  if (c->token.data)
    c->token.data[0] = '\0';
  c->content_type.len = 0;
  if (c->content_type.data)
    c->content_type.data[0] = '\0';
  c->body.len = 0;
  c->body_too_large = 0;
  return 0;
}

static int on_url(llhttp_t *p, const char *at, size_t len) {
  es_sidecar_conn *c = p->data;
  if (c->url_len + len > MAX_URL) {
    c->url_too_long = 1;
    return -1;
  }
  memcpy(c->url + c->url_len, at, len);
  c->url_len += len;
  c->url[c->url_len] = '\0';
  return 0;
}

static int count_header(es_sidecar_conn *c, size_t len) {
  c->header_bytes += len;
  return c->header_bytes > MAX_HEADERS ? -1 : 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t len) {
  es_sidecar_conn *c = p->data;
  if (count_header(c, len))
    return -1;
  if (c->field_done) {
    c->field_done = 0;
    c->field_len = 0;
    c->field_kind = 0;
  }
  if (c->field_len + len < sizeof(c->field)) {
    memcpy(c->field + c->field_len, at, len);
    c->field_len += len;
  } else {
    c->field_len = sizeof(c->field);
  }
  return 0;
}

static int on_header_field_complete(llhttp_t *p) {
  es_sidecar_conn *c = p->data;
  if (c->field_len < sizeof(c->field)) {
    c->field[c->field_len] = '\0';
    if (strcasecmp(c->field, "dapr-api-token") == 0)
      c->field_kind = 1;
    else if (strcasecmp(c->field, "content-type") == 0)
      c->field_kind = 2;
  }
  return 0;
}

static int on_header_value(llhttp_t *p, const char *at, size_t len) {
  es_sidecar_conn *c = p->data;
  if (count_header(c, len))
    return -1;
  c->field_done = 1;
  if (c->field_kind == 1)
    sbuf_add(&c->token, at, len);
  else if (c->field_kind == 2)
    sbuf_add(&c->content_type, at, len);
  return 0;
}

static int on_body(llhttp_t *p, const char *at, size_t len) {
  es_sidecar_conn *c = p->data;
  if (c->body.len + len > c->sc->o.max_body) {
    c->body_too_large = 1;
    return -1;
  }
  sbuf_add(&c->body, at, len);
  return 0;
}

static int on_message_complete(llhttp_t *p) {
  es_sidecar_conn *c = p->data;
  c->requests++;
  if (!llhttp_should_keep_alive(p) ||
      (c->sc->o.keepalive_max && c->requests >= c->sc->o.keepalive_max))
    c->close_after = 1;
  handle_request(c);
  /* Stop parsing what follows a drop or a close. */
  return c->drop || c->close_after ? HPE_PAUSED : 0;
}

static llhttp_settings_t settings;

static void settings_init(void) {
  llhttp_settings_init(&settings);
  settings.on_message_begin = on_message_begin;
  settings.on_url = on_url;
  settings.on_header_field = on_header_field;
  settings.on_header_field_complete = on_header_field_complete;
  settings.on_header_value = on_header_value;
  settings.on_body = on_body;
  settings.on_message_complete = on_message_complete;
}

int es_sidecar_conn_feed(es_sidecar_conn *c, const char *data, size_t len) {
  llhttp_errno_t rc;

  if (c->drop || c->close_after)
    return -1;
  rc = llhttp_execute(&c->parser, data, len);
  if (rc == HPE_OK)
    return 0;
  if (rc == HPE_PAUSED)
    return -1;
  c->close_after = 1;
  if (c->url_too_long)
    answer_error(c, 414, "ERR_MALFORMED_REQUEST", "URL too long");
  else if (c->body_too_large)
    answer_error(c, 413, "ERR_MALFORMED_REQUEST", "body too large");
  else if (c->header_bytes > MAX_HEADERS)
    answer_error(c, 431, "ERR_MALFORMED_REQUEST", "headers too large");
  else {
    c->sc->bad_requests++;
    answer_error(c, 400, "ERR_MALFORMED_REQUEST",
                 llhttp_errno_name(llhttp_get_errno(&c->parser)));
  }
  return -1;
}

/* ---- connections --------------------------------------------------------- */

static void conn_init(es_sidecar *sc, es_sidecar_conn *c) {
  memset(c, 0, sizeof(*c));
  c->sc = sc;
  llhttp_init(&c->parser, HTTP_REQUEST, &settings);
  c->parser.data = c;
}

static void conn_release(es_sidecar_conn *c) {
  delayed *d = c->dq_head;
  while (d) {
    delayed *n = d->next;
    free(d);
    d = n;
  }
  free(c->token.data);
  free(c->content_type.data);
  free(c->body.data);
  free(c->out.data);
}

es_sidecar_conn *es_sidecar_conn_new_detached(es_sidecar *sc) {
  es_sidecar_conn *c = malloc(sizeof(*c));
  if (c == NULL)
    return NULL;
  conn_init(sc, c);
  return c;
}

void es_sidecar_conn_free_detached(es_sidecar_conn *c) {
  conn_release(c);
  free(c);
}

static void conn_on_close(uv_handle_t *h) {
  es_sidecar_conn *c = h->data;
  if (--c->handles > 0)
    return;
  conn_release(c);
  free(c);
}

static void conn_close(es_sidecar_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  c->prev->next = c->next;
  c->next->prev = c->prev;
  uv_close(&c->u.h, conn_on_close);
  uv_close((uv_handle_t *)&c->timer, conn_on_close);
}

typedef struct wreq {
  uv_write_t req;
  es_sidecar_conn *c;
  int close_after;
  char data[];
} wreq;

static void write_cb(uv_write_t *req, int status) {
  wreq *w = (wreq *)req;
  es_sidecar_conn *c = w->c;
  c->writes_pending--;
  if ((status < 0 || w->close_after) && !c->closing)
    conn_close(c);
  free(w);
}

static void conn_send(es_sidecar_conn *c, const char *data, size_t len,
                      int close_after) {
  wreq *w;
  uv_buf_t b;
  if (c->closing)
    return;
  if (len == 0) {
    if (close_after && c->writes_pending == 0)
      conn_close(c);
    return;
  }
  w = malloc(sizeof(*w) + len);
  if (w == NULL)
    abort();
  w->c = c;
  w->close_after = close_after;
  memcpy(w->data, data, len);
  b = uv_buf_init(w->data, (unsigned)len);
  c->writes_pending++;
  if (uv_write(&w->req, &c->u.s, &b, 1, write_cb) != 0) {
    c->writes_pending--;
    free(w);
    conn_close(c);
  }
}

static void delay_timer_cb(uv_timer_t *t) {
  es_sidecar_conn *c = t->data;
  uint64_t now = uv_now(c->sc->loop);
  while (c->dq_head && c->dq_head->due <= now && !c->closing) {
    delayed *d = c->dq_head;
    c->dq_head = d->next;
    if (c->dq_head == NULL)
      c->dq_tail = NULL;
    conn_send(c, d->data, d->len, d->close_after);
    free(d);
  }
  if (c->dq_head && !c->closing)
    uv_timer_start(&c->timer, delay_timer_cb, c->dq_head->due - now, 0);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  static char slab[64 * 1024];
  (void)h;
  (void)suggested;
  *buf = uv_buf_init(slab, sizeof(slab));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  es_sidecar_conn *c = s->data;
  es_sidecar *sc = c->sc;
  int rc;

  if (c->closing)
    return;
  if (nread < 0) {
    conn_close(c);
    return;
  }
  if (nread == 0)
    return;
  rc = es_sidecar_conn_feed(c, buf->base, (size_t)nread);
  flush_records(sc);
  if (c->drop) {
    /* Answers to earlier requests go out, this one's never does. */
    conn_send(c, c->out.data, c->out.len, 1);
    c->out.len = 0;
    uv_read_stop(&c->u.s);
    return;
  }
  if (sc->o.delay_ms > 0) {
    if (c->dq_head && !uv_is_active((uv_handle_t *)&c->timer))
      uv_timer_start(&c->timer, delay_timer_cb, sc->o.delay_ms, 0);
  } else {
    conn_send(c, c->out.data, c->out.len, c->close_after);
    c->out.len = 0;
  }
  if (rc != 0)
    uv_read_stop(&c->u.s);
}

static void on_connection(uv_stream_t *server, int status) {
  es_sidecar *sc = server->data;
  es_sidecar_conn *c;
  int rc;

  if (status < 0 || sc->stopping)
    return;
  c = malloc(sizeof(*c));
  if (c == NULL)
    abort();
  conn_init(sc, c);
  if (sc->o.unix_path)
    rc = uv_pipe_init(sc->loop, &c->u.pipe, 0);
  else
    rc = uv_tcp_init(sc->loop, &c->u.tcp);
  if (rc != 0) {
    free(c);
    return;
  }
  uv_timer_init(sc->loop, &c->timer);
  c->u.h.data = c;
  c->timer.data = c;
  c->handles = 2;
  c->attached = 1;
  c->next = sc->conns.next;
  c->prev = &sc->conns;
  sc->conns.next->prev = c;
  sc->conns.next = c;
  if (uv_accept(server, &c->u.s) != 0) {
    conn_close(c);
    return;
  }
  sc->connections++;
  if (!sc->o.unix_path)
    uv_tcp_nodelay(&c->u.tcp, 1);
  uv_read_start(&c->u.s, alloc_cb, read_cb);
}

/* ---- lifecycle ----------------------------------------------------------- */

static void signal_cb(uv_signal_t *s, int signum) {
  (void)signum;
  es_sidecar_stop(s->data);
}

int es_sidecar_start(uv_loop_t *loop, const es_sidecar_options *o,
                     es_sidecar **out) {
  es_sidecar *sc = calloc(1, sizeof(*sc));
  char *list, *tok, *save = NULL;
  int rc;

  if (sc == NULL)
    return UV_ENOMEM;
  settings_init();
  sc->loop = loop;
  sc->o = *o;
  sc->conns.next = sc->conns.prev = &sc->conns;
  list = strdup(o->components ? o->components : "");
  for (tok = strtok_r(list, ",", &save); tok;
       tok = strtok_r(NULL, ",", &save)) {
    sc->components = realloc(sc->components,
                             sizeof(char *) * (size_t)(sc->n_components + 1));
    sc->components[sc->n_components++] = strdup(tok);
  }
  free(list);
  sc->out_fd = 1;
  if (o->out_path) {
    sc->out_fd =
        open(o->out_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (sc->out_fd < 0) {
      rc = uv_translate_sys_error(errno);
      es_sidecar_free(sc);
      return rc;
    }
  }
  if (loop == NULL) { /* detached use (fuzzer): no sockets */
    *out = sc;
    return 0;
  }
  if (o->unix_path) {
    unlink(o->unix_path);
    uv_pipe_init(loop, &sc->listener.pipe, 0);
    rc = uv_pipe_bind(&sc->listener.pipe, o->unix_path);
  } else {
    struct sockaddr_storage ss;
    uv_tcp_init(loop, &sc->listener.tcp);
    rc = uv_ip4_addr(o->host, (int)o->port, (struct sockaddr_in *)&ss);
    if (rc != 0)
      rc = uv_ip6_addr(o->host, (int)o->port, (struct sockaddr_in6 *)&ss);
    if (rc == 0)
      rc = uv_tcp_bind(&sc->listener.tcp, (struct sockaddr *)&ss, 0);
  }
  sc->listener.h.data = sc;
  if (rc == 0)
    rc = uv_listen(&sc->listener.s, 511, on_connection);
  if (rc != 0) {
    uv_close(&sc->listener.h, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    es_sidecar_free(sc);
    return rc;
  }
  if (!o->unix_path) {
    struct sockaddr_storage ss;
    int len = sizeof(ss);
    uv_tcp_getsockname(&sc->listener.tcp, (struct sockaddr *)&ss, &len);
    sc->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
  if (o->handle_signals) {
    uv_signal_init(loop, &sc->sigint);
    uv_signal_init(loop, &sc->sigterm);
    sc->sigint.data = sc->sigterm.data = sc;
    uv_signal_start(&sc->sigint, signal_cb, SIGINT);
    uv_signal_start(&sc->sigterm, signal_cb, SIGTERM);
  }
  *out = sc;
  return 0;
}

int es_sidecar_port(const es_sidecar *sc) {
  return sc->port;
}

void es_sidecar_stop(es_sidecar *sc) {
  if (sc->stopping)
    return;
  sc->stopping = 1;
  flush_records(sc);
  uv_close(&sc->listener.h, NULL);
  if (sc->o.handle_signals) {
    uv_close((uv_handle_t *)&sc->sigint, NULL);
    uv_close((uv_handle_t *)&sc->sigterm, NULL);
  }
  while (sc->conns.next != &sc->conns)
    conn_close(sc->conns.next);
  if (sc->o.unix_path)
    unlink(sc->o.unix_path);
}

void es_sidecar_print_counters(const es_sidecar *sc, FILE *f) {
  fprintf(f,
          "{\"connections\":%lu,\"requests\":%lu,\"events\":%lu,"
          "\"bindings\":%lu,\"publishes\":%lu,\"bulk_requests\":%lu,"
          "\"bulk_entries\":%lu,\"bulk_entries_failed\":%lu,"
          "\"injected_fail\":%lu,\"injected_close\":%lu,"
          "\"injected_retry_after\":%lu,\"unauthorized\":%lu,"
          "\"bad_requests\":%lu}\n",
          sc->connections, sc->requests, sc->events, sc->bindings,
          sc->publishes, sc->bulk_requests, sc->bulk_entries,
          sc->bulk_entries_failed, sc->injected_fail, sc->injected_close,
          sc->injected_retry_after, sc->unauthorized, sc->bad_requests);
}

void es_sidecar_free(es_sidecar *sc) {
  int i;
  flush_records(sc);
  if (sc->out_fd > 2)
    close(sc->out_fd);
  for (i = 0; i < sc->n_components; i++)
    free(sc->components[i]);
  free(sc->components);
  free(sc->rec.data);
  free(sc);
}
