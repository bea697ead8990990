/* The client: options, the bounded queue, the dispatcher, retries,
 * readiness and registration, flush and close, stats, callbacks.
 *
 * Threads. Publishers (any thread) serialize on their own thread and append
 * to `pending` under `lock`; everything else runs on the loop thread. The
 * queues (pending, retry, returned, dropped) and the accounting of held
 * events and bytes are under `lock`; in-flight slots, flushes, stats and
 * state are the loop thread's alone.
 *
 * Life of an event: accepted into pending -> a slot takes it and submits an
 * HTTP request -> the answer completes it, or puts it in `retry` (sorted by
 * due time) or, when the connection failed before it was written, back to
 * the front of the queue through `returned`, under a reconnect backoff.
 * Every path ends in es__complete(), which calls the callback once. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "alloc.h"
#include "background.h"
#include "dapr.h"
#include "event.h"
#include "eventstore.h"
#include "http.h"
#include "json.h"
#include "queue.h"

typedef struct es__item {
  es__queue node;
  es_publish_cb cb;
  void *data;
  uint64_t seq;
  uint64_t accepted_ns; /* uv_hrtime() at acceptance */
  uint64_t due_ms;      /* in retry: loop time when it may go again */
  uint32_t len;         /* bytes of body */
  uint16_t attempts;
  uint16_t last_http;
  uint16_t type_len;
  uint16_t name_len;
  uint8_t uncounted; /* dropped: already out of the queue's accounting */
  char body[];       /* body, then event type NUL, event name NUL */
} es__item;

enum { ES__SLOT_FREE, ES__SLOT_EVENT, ES__SLOT_CONTROL };

typedef struct es__slot {
  es__http_request req;
  es_client *client;
  es__item **items; /* one, or a bulk batch (points into store) */
  unsigned n_items;
  es__item **store; /* room for the largest batch */
  es__buf head;     /* capacities are kept from request to request */
  es__buf body;     /* bulk only: the JSON array of entries */
} es__slot;

enum es__control_kind { ES__CTL_HEALTH, ES__CTL_METADATA, ES__CTL_QUERY };

typedef struct es__control {
  es__http_request req;
  es__queue node;
  es_client *client;
  enum es__control_kind kind;
  es_registered_cb cb;
  void *data;
  char *name;
  char *head;
} es__control;

typedef struct es__flush {
  es__queue node;
  uint64_t target_seq;
  size_t remaining;
  uint64_t deadline_ms; /* 0: none */
  es_flush_cb cb;
  void *data;
} es__flush;

enum es__state {
  ES__ST_NEW,        /* nothing sent yet */
  ES__ST_WAIT_READY, /* polling /v1.0/healthz/outbound */
  ES__ST_CHECK_REG,  /* asking /v1.0/metadata */
  ES__ST_RUNNING,
  ES__ST_UNREGISTERED
};

#define ES__HIST_BUCKETS 256

struct es_client {
  uv_loop_t *loop;
  uv_thread_t loop_thread;
  void *data;
  /* configuration (strings owned) */
  es_client_options o;
  char *endpoint, *token, *binding, *app_name;
  es_header *headers; /* static auth headers (copies) */
  size_t n_headers;
  es_header *auth; /* from the provider (copies) */
  size_t n_auth;
  uint64_t auth_expires_ms, auth_refresh_ms; /* loop time; 0: none */
  int auth_pending, auth_valid;
  uint64_t auth_retry_ms;

  es__http_pool *pool;
  uv_async_t async;
  uv_idle_t kick;
  uv_timer_t timer;
  int handles_open;

  /* Under lock. */
  uv_mutex_t lock;
  es__queue pending, retry, returned, dropped;
  /* Raised only under lock (where the limits are checked); lowered without
   * it when an event completes, so the loop thread does not take the lock
   * once per event. A stale value is a larger one: never a false "room". */
  atomic_size_t held_events, held_bytes; /* in the queue's limits */
  atomic_size_t outstanding; /* accepted, not completed (dropped included) */
  uint64_t next_seq;
  int closing;
  uint64_t accepted, rejected; /* counted under lock */

  /* Loop thread only. */
  enum es__state state;
  uint64_t ready_deadline_ms, next_poll_ms, recheck_ms;
  int control_busy;
  es__queue controls;
  uint64_t backoff_until_ms, backoff_ms;
  int can_send; /* the last dispatch got as far as sending */
  es__slot *slots;
  unsigned n_slots;
  unsigned *free_slots;
  unsigned n_free;
  /* request building */
  es__buf path;      /* binding: the whole path; pub/sub: up to the topic */
  char *topic_enc;   /* a fixed topic, percent-encoded, or NULL */
  es__buf query;     /* "?metadata.k=v..." or empty */
  es__buf head_rest; /* " HTTP/1.1" ... "Content-Length: " */
  es__buf tail;      /* the binding body's tail */
  es__buf tail_redacted;
  const char *ctype;
  char *ce_source;
  char ce_prefix[24];
  uint64_t ce_counter; /* under lock */
  es__queue flushes;
  uint64_t stats_next_ms;
  uint64_t succeeded, failed, dropped_n, retries, requests, in_flight;
  uint64_t hist[ES__HIST_BUCKETS];
  uint64_t rng;
  /* close */
  int close_started, close_final;
  uint64_t close_deadline_ms;
  es_close_cb close_cb;
  int pool_open;
  es__bg *bg; /* background mode, or NULL */
};

/* ---- small helpers ------------------------------------------------------ */

static void es__log(es_client *c, es_log_level level, const char *fmt, ...) {
  char msg[1024];
  va_list ap;

  if (level < c->o.log_level)
    return;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (c->o.log_cb != NULL)
    c->o.log_cb(level, msg, c->o.log_arg);
  else
    fprintf(stderr, "eventstore: %s: %s\n",
            level >= ES_LOG_ERROR  ? "error"
            : level >= ES_LOG_WARN ? "warning"
            : level >= ES_LOG_INFO ? "info"
                                   : "debug",
            msg);
}

static uint64_t es__now_ms(es_client *c) {
  return uv_now(c->loop);
}

static uint64_t es__deadline_ms(const es_client *c, const es__item *it) {
  return it->accepted_ns / 1000000 + c->o.event_timeout_ms;
}

static uint64_t es__rand(es_client *c) {
  /* xorshift64*: jitter needs spread, not secrecy. */
  c->rng ^= c->rng >> 12;
  c->rng ^= c->rng << 25;
  c->rng ^= c->rng >> 27;
  return c->rng * 2685821657736338717ULL;
}

static const char *es__item_type(const es__item *it) {
  return it->body + it->len;
}

static const char *es__item_name(const es__item *it) {
  return it->body + it->len + it->type_len + 1;
}

static unsigned es__hist_index(uint64_t v) {
  unsigned e;
  if (v < 16)
    return (unsigned)v;
  e = 63u - (unsigned)__builtin_clzll(v);
  return 16 + (e - 4) * 4 + (unsigned)((v >> (e - 2)) & 3);
}

static uint64_t es__hist_value(unsigned idx) {
  unsigned e, sub;
  if (idx < 16)
    return idx;
  e = (idx - 16) / 4 + 4;
  sub = (idx - 16) % 4;
  /* upper bound of the bucket */
  return ((4ULL + sub + 1) << (e - 2)) - 1;
}

static void es__kick_cb(uv_idle_t *idle);

/* Runs the dispatcher soon, from a clean stack, without blocking the loop
 * (an active idle handle makes the next poll non-blocking). */
static void es__kick(es_client *c) {
  if (!c->close_final)
    uv_idle_start(&c->kick, es__kick_cb);
}

static void es__arm_timer(es_client *c);

/* ---- completion --------------------------------------------------------- */

static void es__flush_account(es_client *c, uint64_t seq) {
  es__queue *q;
  es__queue_foreach(q, &c->flushes) {
    es__flush *f = es__container_of(q, es__flush, node);
    if (seq <= f->target_seq && f->remaining > 0)
      f->remaining--;
  }
}

/* Ends an event: accounting, stats, the callback (or a log line), free. */
/* now_ns: uv_hrtime(), read once for all the events a caller ends. */
static void es__complete(es_client *c, es__item *it, uint64_t now_ns,
                         int status, int http_status, const char *error_code,
                         const char *message) {
  es_publish_result r;
  uint64_t lat_us =
      now_ns > it->accepted_ns ? (now_ns - it->accepted_ns) / 1000 : 0;

  if (!it->uncounted) {
    atomic_fetch_sub(&c->held_events, 1);
    atomic_fetch_sub(&c->held_bytes, it->len);
  }
  atomic_fetch_sub(&c->outstanding, 1);

  if (status == 0)
    c->succeeded++;
  else if (status == ES_EDROPPED)
    c->dropped_n++;
  else
    c->failed++;
  c->hist[es__hist_index(lat_us)]++;
  es__flush_account(c, it->seq);

  r.status = status;
  r.http_status = http_status ? http_status : it->last_http;
  r.error_code = error_code;
  r.message = message;
  r.attempts = it->attempts;
  r.latency_us = lat_us;
  r.event_type = es__item_type(it);
  r.event_name = es__item_name(it);
  if (it->cb != NULL) {
    if (c->bg == NULL || !es__bg_deliver(c->bg, c, &r, it->cb, it->data)) {
      es__in_callback++;
      it->cb(c, &r, it->data);
      es__in_callback--;
    }
  } else if (status != 0 && status != ES_ENOTREGISTERED) {
    /* Fire-and-forget: nobody else will hear of it. ENOTREGISTERED was
     * announced once when the check failed. */
    es__log(c, ES_LOG_WARN,
            "publishing %s/%s failed: %s (%s)%s%d%s%s%s%s after %u attempt(s)",
            r.event_type, r.event_name, es_err_name(status),
            es_strerror(status), r.http_status ? ", HTTP " : "", r.http_status,
            error_code ? ", " : "", error_code ? error_code : "",
            message ? ": " : "", message ? message : "", r.attempts);
  }
  es__free(it);
}

/* Completes every event on q with status. No lock held. */
static void es__complete_all(es_client *c, es__queue *q, int status) {
  uint64_t now_ns = uv_hrtime();
  while (!es__queue_empty(q)) {
    es__item *it = es__container_of(es__queue_head(q), es__item, node);
    es__queue_remove(&it->node);
    es__complete(c, it, now_ns, status, 0, NULL, NULL);
  }
}

/* ---- accepting events (any thread) -------------------------------------- */

static pthread_key_t es__scratch_key;
static pthread_once_t es__scratch_once = PTHREAD_ONCE_INIT;

static void es__scratch_free(void *p) {
  es__buf *b = p;
  es__buf_free(b);
  es__free(b);
}

static void es__scratch_init(void) {
  pthread_key_create(&es__scratch_key, es__scratch_free);
}

/* A per-thread buffer to serialize into, so that the queued item is one
 * allocation of exactly the right size. */
static es__buf *es__scratch(void) {
  es__buf *b;
  pthread_once(&es__scratch_once, es__scratch_init);
  b = pthread_getspecific(es__scratch_key);
  if (b == NULL) {
    b = es__malloc(sizeof(*b));
    if (b == NULL)
      return NULL;
    es__buf_init(b, 0);
    if (pthread_setspecific(es__scratch_key, b) != 0) {
      es__free(b);
      return NULL;
    }
  }
  b->len = 0;
  b->err = 0;
  return b;
}

static int es__on_loop_thread(const es_client *c) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &c->loop_thread);
}

/* *out: a new item for a body of len bytes (to be written by the caller)
 * and the event's type and name (tl, nl: their lengths). The one
 * allocation an event costs. Returns 0, ES_EINVAL or ES_ENOMEM. */
static int es__item_new(es__item **out, size_t len, const char *type, size_t tl,
                        const char *name, size_t nl, es_publish_cb cb,
                        void *data) {
  es__item *it;
  if (tl > 0xffff || nl > 0xffff)
    return ES_EINVAL;
  it = es__malloc(sizeof(*it) + len + tl + nl + 2);
  if (it == NULL)
    return ES_ENOMEM;
  it->cb = cb;
  it->data = data;
  it->len = (uint32_t)len;
  it->attempts = 0;
  it->last_http = 0;
  it->type_len = (uint16_t)tl;
  it->name_len = (uint16_t)nl;
  it->due_ms = 0;
  it->uncounted = 0;
  memcpy(it->body + len, type, tl + 1);
  memcpy(it->body + len + tl + 1, name, nl + 1);
  *out = it;
  return 0;
}

/* Queues a new item (its body written), or frees it and says why not. */
static int es__accept(es_client *c, es__item *it) {
  es__item *victim = NULL;
  size_t len = it->len;
  int on_loop;

  it->accepted_ns = uv_hrtime();
  uv_mutex_lock(&c->lock);
  if (c->closing) {
    uv_mutex_unlock(&c->lock);
    es__free(it);
    return ES_ECLOSED;
  }
  while (atomic_load(&c->held_events) + 1 > c->o.max_queue_events ||
         atomic_load(&c->held_bytes) + len > c->o.max_queue_bytes) {
    es__queue *from = !es__queue_empty(&c->pending) ? &c->pending
                      : !es__queue_empty(&c->retry) ? &c->retry
                                                    : NULL;
    if (c->o.overflow != ES_OVERFLOW_DROP_OLDEST || from == NULL ||
        len > c->o.max_queue_bytes) {
      c->rejected++;
      uv_mutex_unlock(&c->lock);
      es__free(it);
      return ES_EQUEUEFULL;
    }
    /* The oldest event not in flight makes room; it completes with
     * ES_EDROPPED on the loop thread. Its bytes stop counting now. */
    victim = es__container_of(es__queue_head(from), es__item, node);
    es__queue_remove(&victim->node);
    es__queue_insert_tail(&c->dropped, &victim->node);
    victim->uncounted = 1;
    atomic_fetch_sub(&c->held_events, 1);
    atomic_fetch_sub(&c->held_bytes, victim->len);
  }
  it->seq = ++c->next_seq;
  atomic_fetch_add(&c->held_events, 1);
  atomic_fetch_add(&c->held_bytes, len);
  atomic_fetch_add(&c->outstanding, 1);
  c->accepted++;
  es__queue_insert_tail(&c->pending, &it->node);
  on_loop = es__on_loop_thread(c);
  /* From another thread: wake the loop. Under the lock, so that close
   * (which sets `closing` under it) cannot free the handle meanwhile;
   * libuv coalesces the wake-ups. */
  if (!on_loop)
    uv_async_send(&c->async);
  uv_mutex_unlock(&c->lock);
  if (on_loop)
    es__kick(c);
  return 0;
}

/* Room for framing beyond max_event_bytes: the binding prefix or a
 * CloudEvents envelope. */
#define ES__FRAME_MAX 1024

/* Pub/sub: the topic comes from the event type unless one is fixed; refuse
 * what no path can carry. */
static int es__topic_check(const es_client *c, const char *type) {
  if (c->o.target == ES_TARGET_PUBSUB && c->topic_enc == NULL &&
      (strcmp(type, ".") == 0 || strcmp(type, "..") == 0))
    return ES_EINVAL;
  return 0;
}

/* What goes around an event in the queue: the binding's {"data": prefix,
 * or a CloudEvents envelope, or nothing (plain pub/sub). */
static int es__frame_begin(es_client *c, es__buf *b, const char *type) {
  if (c->o.target == ES_TARGET_BINDING) {
    es__buf_append(b, ES__DAPR_BINDING_PREFIX, ES__DAPR_BINDING_PREFIX_LEN);
    return 0;
  }
  if (es__topic_check(c, type) != 0)
    return ES_EINVAL;
  if (c->o.cloudevents) {
    char id[48];
    uint64_t n;
    uv_mutex_lock(&c->lock);
    n = ++c->ce_counter;
    uv_mutex_unlock(&c->lock);
    snprintf(id, sizeof(id), "%s-%llu", c->ce_prefix, (unsigned long long)n);
    es__dapr_cloudevent_begin(b, id, c->ce_source, type, (long long)time(NULL));
  }
  return 0;
}

static void es__frame_end(es_client *c, es__buf *b) {
  if (c->o.target == ES_TARGET_PUBSUB && c->o.cloudevents)
    es__dapr_cloudevent_end(b);
}

/* Serializes an event (enriched as enr says) into the scratch buffer inside
 * its frame, and accepts it. */
static int es__publish_enriched(es_client *c, const es_event *ev,
                                es__enrichment *enr, es_publish_cb cb,
                                void *data) {
  es__buf *b = es__scratch();
  const char *type, *name;
  es__item *it;
  size_t start;
  int rc;

  if (b == NULL)
    return ES_ENOMEM;
  b->max = c->o.max_event_bytes + ES__FRAME_MAX;
  rc = es__frame_begin(c, b, es_event_type(ev));
  if (rc != 0)
    return rc;
  start = b->len;
  es__event_write(b, ev, enr);
  if (b->len - start > c->o.max_event_bytes)
    return ES_E2BIG;
  es__frame_end(c, b);
  rc = es__buf_error(b);
  if (rc != 0)
    return rc;
  /* the event's names were checked when it was made */
  type = es_event_type(ev);
  name = es_event_name(ev);
  rc = es__item_new(&it, b->len, type, strlen(type), name, strlen(name), cb,
                    data);
  if (rc != 0)
    return rc;
  memcpy(it->body, b->data, b->len);
  return es__accept(c, it);
}

int es_publish_event(es_client *c, const es_event *ev, es_publish_cb cb,
                     void *data) {
  es__enrichment enr;
  es_workflow_context ctx;

  if (c == NULL || ev == NULL)
    return ES_EINVAL;
  memset(&ctx, 0, sizeof(ctx));
  enr.application_name = c->app_name;
  enr.created_timestamp = (long long)time(NULL);
  enr.custom = NULL;
  enr.ctx = NULL;
  if (c->o.context_provider != NULL &&
      c->o.context_provider(&ctx, c->o.context_provider_arg))
    enr.ctx = &ctx;
  return es__publish_enriched(c, ev, &enr, cb, data);
}

int es_publish_event_simple(es_client *c, const es_event *ev,
                            const cJSON *custom, es_publish_cb cb, void *data) {
  es__enrichment enr;
  int rc;

  if (c == NULL || ev == NULL)
    return ES_EINVAL;
  rc = es__custom_metadata_check(custom, NULL);
  if (rc != 0)
    return rc;
  enr.application_name = c->app_name;
  enr.created_timestamp = (long long)time(NULL);
  enr.ctx = NULL;
  enr.custom = custom;
  return es__publish_enriched(c, ev, &enr, cb, data);
}

int es_publish_json(es_client *c, const char *type, const char *name,
                    const char *json, size_t len, es_publish_cb cb,
                    void *data) {
  const char *pre = "";
  size_t tl, nl, pre_len = 0;
  es__item *it;
  es__buf *b;
  int rc;

  if (c == NULL || json == NULL)
    return ES_EINVAL;
  if ((rc = es__check_name_len(type, &tl)) != 0 ||
      (rc = es__check_name_len(name, &nl)) != 0)
    return rc;
  if (len > c->o.max_event_bytes)
    return ES_E2BIG;
  rc = es__json_validate(json, len, 1);
  if (rc != 0)
    return rc;
  if (c->o.target == ES_TARGET_PUBSUB && c->o.cloudevents) {
    /* An envelope made per event: framed in the scratch buffer. */
    b = es__scratch();
    if (b == NULL)
      return ES_ENOMEM;
    b->max = 0;
    if ((rc = es__frame_begin(c, b, type)) != 0)
      return rc;
    es__buf_append(b, json, len);
    es__frame_end(c, b);
    if ((rc = es__buf_error(b)) != 0)
      return rc;
    json = b->data;
    len = b->len;
  } else if (c->o.target == ES_TARGET_BINDING) {
    /* A fixed prefix or none: straight into the item. */
    pre = ES__DAPR_BINDING_PREFIX;
    pre_len = ES__DAPR_BINDING_PREFIX_LEN;
  } else if ((rc = es__topic_check(c, type)) != 0) {
    return rc;
  }
  if ((rc = es__item_new(&it, pre_len + len, type, tl, name, nl, cb, data)))
    return rc;
  memcpy(it->body, pre, pre_len);
  memcpy(it->body + pre_len, json, len);
  return es__accept(c, it);
}

/* ---- sending ------------------------------------------------------------ */

static void es__slot_done(es__http_request *req, int err,
                          const es__http_response *res);

/* Builds a request for n items (one, or a bulk batch for one topic) into
 * the slot: "POST <path>[<topic>]<query> HTTP/1.1 ... Content-Length: N"
 * and the body (the item itself plus the binding tail, or the bulk array).
 * redacted: the dry-run form, with auth values hidden. */
static int es__slot_build(es_client *c, es__slot *s, es__item **items,
                          unsigned n, int redacted) {
  const es__buf *tail = redacted ? &c->tail_redacted : &c->tail;
  size_t body_len;
  unsigned i;
  int rc;

  s->head.len = 0;
  s->head.err = 0;
  s->body.len = 0;
  s->body.err = 0;
  es__buf_append_str(&s->head, "POST ");
  es__buf_append(&s->head, c->path.data, c->path.len);
  if (c->o.target == ES_TARGET_PUBSUB) {
    if (c->topic_enc != NULL)
      es__buf_append_str(&s->head, c->topic_enc);
    else if ((rc = es__dapr_append_segment(&s->head,
                                           es__item_type(items[0]))) != 0)
      return rc;
    es__buf_append(&s->head, c->query.data, c->query.len);
  }
  es__buf_append(&s->head, c->head_rest.data, c->head_rest.len);
  if (c->o.bulk) {
    es__buf_append_char(&s->body, '[');
    for (i = 0; i < n; i++) {
      es__buf_append_str(&s->body, i ? ",{\"entryId\":\"" : "{\"entryId\":\"");
      es__buf_append_u64(&s->body, items[i]->seq);
      es__buf_append_str(&s->body, "\",\"event\":");
      es__buf_append(&s->body, items[i]->body, items[i]->len);
      es__buf_append_str(&s->body, ",\"contentType\":\"");
      es__buf_append_str(&s->body, c->ctype);
      es__buf_append_str(&s->body, "\"}");
    }
    es__buf_append_char(&s->body, ']');
    s->req.body = s->body.data;
    s->req.body_len = s->body.len;
    s->req.tail = NULL;
    s->req.tail_len = 0;
  } else {
    s->req.body = items[0]->body;
    s->req.body_len = items[0]->len;
    s->req.tail = c->o.target == ES_TARGET_BINDING ? tail->data : NULL;
    s->req.tail_len = c->o.target == ES_TARGET_BINDING ? tail->len : 0;
  }
  body_len = s->req.body_len + s->req.tail_len;
  es__buf_append_u64(&s->head, body_len);
  es__buf_append(&s->head, "\r\n\r\n", 4);
  if ((rc = es__buf_error(&s->head)) != 0 ||
      (rc = es__buf_error(&s->body)) != 0)
    return rc;
  s->req.head = s->head.data;
  s->req.head_len = s->head.len;
  s->req.is_head = 0;
  s->req.cb = es__slot_done;
  s->req.data = s;
  s->items = items;
  s->n_items = n;
  return 0;
}

static int es__slot_send(es_client *c, es__slot *s, es__item **items,
                         unsigned n) {
  int rc = es__slot_build(c, s, items, n, 0);
  return rc != 0 ? rc : es__http_pool_submit(c->pool, &s->req);
}

/* Dry run: show the request as it would be sent, secrets redacted. */
static void es__show_request(es_client *c, es__item **items, unsigned n) {
  es__slot tmp;
  es_request_info info;
  es_header hdrs[3];
  es__buf body;
  char *path = NULL;
  size_t k = 0;

  memset(&tmp, 0, sizeof(tmp));
  es__buf_init(&tmp.head, 0);
  es__buf_init(&tmp.body, 0);
  es__buf_init(&body, 0);
  if (es__slot_build(c, &tmp, items, n, 1) == 0) {
    const char *sp = memchr(tmp.head.data + 5, ' ', tmp.head.len - 5);
    path = es__strndup(tmp.head.data + 5,
                       sp ? (size_t)(sp - (tmp.head.data + 5)) : 0);
    es__buf_append(&body, tmp.req.body, tmp.req.body_len);
    es__buf_append(&body, tmp.req.tail, tmp.req.tail_len);
    hdrs[k].name = "Host";
    hdrs[k++].value = es__http_pool_host(c->pool);
    hdrs[k].name = "Content-Type";
    hdrs[k++].value = c->ctype;
    if (c->token != NULL) {
      hdrs[k].name = "dapr-api-token";
      hdrs[k++].value = "<redacted>";
    }
    info.method = "POST";
    info.path = path ? path : "";
    info.headers = hdrs;
    info.n_headers = k;
    info.body = body.data ? body.data : "";
    info.body_len = body.len;
    if (c->o.request_cb != NULL && path != NULL && !es__buf_error(&body))
      c->o.request_cb(c, &info, c->o.request_arg);
  }
  es__free(path);
  es__buf_free(&body);
  es__buf_free(&tmp.head);
  es__buf_free(&tmp.body);
}

static void es__retry_insert(es_client *c, es__item *it) {
  es__queue *q;
  /* Sorted by due time; delays are similar, so scan from the tail. */
  for (q = c->retry.prev; q != &c->retry; q = q->prev)
    if (es__container_of(q, es__item, node)->due_ms <= it->due_ms)
      break;
  es__queue_insert_head(q, &it->node);
}

static void es__slot_release(es_client *c, es__slot *s) {
  s->n_items = 0;
  c->free_slots[c->n_free++] = (unsigned)(s - c->slots);
}

/* The message of a result that ends retries: the sidecar's words, or for a
 * transport failure (no HTTP status) the name of its code. */
static const char *es__final_message(const es__dapr_outcome *out) {
  if (out->message != NULL)
    return out->message;
  return out->http_status ? NULL : es_err_name(out->code);
}

/* What happens to one event after an answer (or a failure) for it. */
static void es__item_outcome(es_client *c, es__item *it,
                             const es__dapr_outcome *out, uint64_t now,
                             uint64_t now_ns) {
  if (out->http_status)
    it->last_http = (uint16_t)out->http_status;
  if (out->code == 0) {
    c->backoff_ms = 0;
    es__complete(c, it, now_ns, 0, out->http_status, NULL, NULL);
  } else if (c->close_final || out->code == ES_ECANCELED) {
    es__complete(c, it, now_ns, ES_ECANCELED, out->http_status, out->error_code,
                 out->message);
  } else if (out->retryable && out->not_sent) {
    /* Never reached the sidecar (refused, connect timeout, DNS): not an
     * attempt. Back to the front of the queue, in order, and back off the
     * whole client rather than each event. */
    it->attempts--;
    if (now >= es__deadline_ms(c, it)) {
      es__complete(c, it, now_ns, ES_ETIMEDOUT, 0, NULL, NULL);
      return;
    }
    uv_mutex_lock(&c->lock);
    es__queue_insert_tail(&c->returned, &it->node);
    uv_mutex_unlock(&c->lock);
    if (c->backoff_until_ms <= now) {
      uint64_t cap;
      c->backoff_ms = c->backoff_ms ? c->backoff_ms * 2 : c->o.retry_backoff_ms;
      if (c->backoff_ms > c->o.retry_backoff_max_ms)
        c->backoff_ms = c->o.retry_backoff_max_ms;
      cap = c->backoff_ms ? c->backoff_ms : 1;
      c->backoff_until_ms = now + cap / 2 + es__rand(c) % (cap / 2 + 1);
      es__log(c, ES_LOG_DEBUG, "sidecar unreachable (%s), retrying in %llu ms",
              es_err_name(out->code),
              (unsigned long long)(c->backoff_until_ms - now));
    }
  } else if (out->retryable) {
    uint64_t deadline = es__deadline_ms(c, it), delay, cap;
    if (c->o.max_attempts != 0 && it->attempts >= c->o.max_attempts) {
      /* The last failure is in the result: HTTP status and the sidecar's
       * words, or for a transport failure its code's name as message. */
      es__complete(c, it, now_ns, ES_EATTEMPTS, out->http_status,
                   out->error_code, es__final_message(out));
      return;
    }
    /* Exponential backoff with full jitter; Retry-After when given. */
    cap = c->o.retry_backoff_ms << (it->attempts > 20 ? 20 : it->attempts - 1);
    if (cap > c->o.retry_backoff_max_ms || cap == 0)
      cap = c->o.retry_backoff_max_ms;
    delay = cap ? es__rand(c) % (cap + 1) : 0;
    if (out->retry_after_ms >= 0)
      delay = (uint64_t)out->retry_after_ms;
    if (now + delay >= deadline) {
      es__complete(c, it, now_ns, ES_ETIMEDOUT, out->http_status,
                   out->error_code, es__final_message(out));
      return;
    }
    it->due_ms = now + delay;
    uv_mutex_lock(&c->lock);
    es__retry_insert(c, it);
    uv_mutex_unlock(&c->lock);
  } else {
    if (out->code == ES_EUNAUTHORIZED && c->o.header_provider != NULL)
      c->auth_valid = 0; /* maybe the token expired early: ask again */
    es__complete(c, it, now_ns, out->code, out->http_status, out->error_code,
                 out->message);
  }
}

/* A bulk answer naming failed entries: those get the answer's outcome with
 * their own error, the others succeeded. */
typedef struct es__failed_set {
  es__slot *slot;
  char **errors; /* per item: its error text, or NULL when it succeeded */
  int marked;
} es__failed_set;

static void es__mark_failed(const char *id, const char *error, void *arg) {
  es__failed_set *f = arg;
  unsigned long long seq = strtoull(id, NULL, 10);
  unsigned i;
  for (i = 0; i < f->slot->n_items; i++)
    if (f->slot->items[i]->seq == seq && f->errors[i] == NULL) {
      f->errors[i] = es__strdup(error ? error : "failed");
      f->marked++;
      break;
    }
}

static void es__slot_done(es__http_request *req, int err,
                          const es__http_response *res) {
  es__slot *s = req->data;
  es_client *c = s->client;
  es__item **items = s->items;
  unsigned n = s->n_items, i;
  es__dapr_outcome out;
  uint64_t now = es__now_ms(c), now_ns = uv_hrtime();
  es__failed_set f = {s, NULL, 0};

  es__dapr_classify(err, req->written, res, &out);
  c->in_flight -= n;
  if (c->o.bulk && n > 0 && out.code != 0 && out.http_status != 0 &&
      (f.errors = es__calloc(n, sizeof(char *))) != NULL &&
      es__dapr_failed_entries(res->body, res->body_len, es__mark_failed, &f) >=
          0 &&
      f.marked > 0) {
    /* Partial failure: only the named entries failed. */
    es__dapr_outcome ok;
    memset(&ok, 0, sizeof(ok));
    ok.http_status = out.http_status;
    ok.retry_after_ms = -1;
    for (i = 0; i < n; i++) {
      if (f.errors[i] != NULL) {
        es__dapr_outcome one = out;
        one.message = f.errors[i];
        es__item_outcome(c, items[i], &one, now, now_ns);
      } else {
        es__item_outcome(c, items[i], &ok, now, now_ns);
      }
    }
  } else {
    for (i = 0; i < n; i++)
      es__item_outcome(c, items[i], &out, now, now_ns);
  }
  if (f.errors != NULL) {
    for (i = 0; i < n; i++)
      es__free(f.errors[i]);
    es__free(f.errors);
  }
  /* The slot is free only now: callbacks above could not reuse it. */
  es__slot_release(c, s);
  es__dapr_outcome_free(&out);
  es__kick(c);
}

/* ---- readiness, registration, auth --------------------------------------- */

static void es__control_done(es__http_request *req, int err,
                             const es__http_response *res);

static int es__control_send(es_client *c, enum es__control_kind kind,
                            const char *name, es_registered_cb cb, void *data) {
  es__control *ctl = es__calloc(1, sizeof(*ctl));
  es__buf b;
  int rc;

  if (ctl == NULL)
    return ES_ENOMEM;
  es__buf_init(&b, 0);
  es__dapr_get_head(
      &b, kind == ES__CTL_HEALTH ? "/v1.0/healthz/outbound" : "/v1.0/metadata",
      es__http_pool_host(c->pool), c->token);
  ctl->head = es__buf_steal(&b, NULL);
  ctl->name = name ? es__strdup(name) : NULL;
  if (ctl->head == NULL || (name != NULL && ctl->name == NULL)) {
    es__free(ctl->head);
    es__free(ctl->name);
    es__free(ctl);
    return ES_ENOMEM;
  }
  ctl->client = c;
  ctl->kind = kind;
  ctl->cb = cb;
  ctl->data = data;
  ctl->req.head = ctl->head;
  ctl->req.head_len = strlen(ctl->head);
  ctl->req.cb = es__control_done;
  ctl->req.data = ctl;
  rc = es__http_pool_submit(c->pool, &ctl->req);
  if (rc != 0) {
    es__free(ctl->head);
    es__free(ctl->name);
    es__free(ctl);
    return rc;
  }
  es__queue_insert_tail(&c->controls, &ctl->node);
  return 0;
}

static void es__set_registered(es_client *c, int registered) {
  if (registered) {
    if (c->state == ES__ST_UNREGISTERED)
      es__log(c, ES_LOG_INFO, "binding %s is now registered", c->binding);
    c->state = ES__ST_RUNNING;
  } else {
    if (c->state != ES__ST_UNREGISTERED)
      es__log(c, ES_LOG_WARN,
              "binding %s is not registered with the sidecar at %s: events "
              "fail with ES_ENOTREGISTERED (checking again every %llu ms)",
              c->binding, c->endpoint,
              (unsigned long long)c->o.registration_recheck_ms);
    c->state = ES__ST_UNREGISTERED;
    c->recheck_ms = es__now_ms(c) + c->o.registration_recheck_ms;
  }
}

static void es__control_done(es__http_request *req, int err,
                             const es__http_response *res) {
  es__control *ctl = req->data;
  es_client *c = ctl->client;
  int ok = err == 0 && res->status >= 200 && res->status < 300;

  es__queue_remove(&ctl->node);
  if (ctl->kind == ES__CTL_QUERY) {
    int answer =
        err != 0 ? err
        : !ok    ? (res->status == 401 ? ES_EUNAUTHORIZED : ES_EHTTP)
                 : es__dapr_has_component(res->body, res->body_len, ctl->name);
    ctl->cb(c, answer, ctl->data);
  } else if (!c->close_final) {
    /* (also while closing: close waits for queued events to go out) */
    c->control_busy = 0;
    if (ctl->kind == ES__CTL_HEALTH) {
      if (ok) {
        c->state = ES__ST_CHECK_REG;
      } else if (es__now_ms(c) >= c->ready_deadline_ms) {
        es__log(c, ES_LOG_WARN,
                "sidecar at %s not ready after %llu ms (%s); sending anyway",
                c->endpoint, (unsigned long long)c->o.ready_timeout_ms,
                err ? es_err_name(err) : "not ready");
        c->state = ES__ST_CHECK_REG;
      } else {
        c->next_poll_ms = es__now_ms(c) + 100;
      }
    } else {
      /* Only a clear answer decides; a sidecar that cannot answer now is
       * handled by the normal retries of the events themselves. */
      int has =
          ok ? es__dapr_has_component(res->body, res->body_len, c->binding)
             : -1;
      if (has == 1 || has == 0)
        es__set_registered(c, has);
      else if (c->state != ES__ST_UNREGISTERED)
        c->state = ES__ST_RUNNING;
      else
        c->recheck_ms = es__now_ms(c) + c->o.registration_recheck_ms;
    }
  }
  es__free(ctl->head);
  es__free(ctl->name);
  es__free(ctl);
  es__kick(c);
}

int es_client_is_component_registered(es_client *c, const char *name,
                                      es_registered_cb cb, void *data) {
  if (c == NULL || cb == NULL || es__check_name(name) != 0)
    return ES_EINVAL;
  if (c->close_started)
    return ES_ECLOSED;
  return es__control_send(c, ES__CTL_QUERY, name, cb, data);
}

static void es__free_headers(es_header *h, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    es__free((char *)h[i].name);
    es__free((char *)h[i].value);
  }
  es__free(h);
}

static int es__copy_headers(const es_header *in, size_t n, es_header **out) {
  size_t i;
  int rc;

  *out = NULL;
  if (n == 0)
    return 0;
  for (i = 0; i < n; i++)
    if ((rc = es__dapr_check_header(in[i].name, in[i].value)) != 0)
      return rc;
  *out = es__calloc(n, sizeof(**out));
  if (*out == NULL)
    return ES_ENOMEM;
  for (i = 0; i < n; i++) {
    (*out)[i].name = es__strdup(in[i].name);
    (*out)[i].value = es__strdup(in[i].value);
    if ((*out)[i].name == NULL || (*out)[i].value == NULL) {
      es__free_headers(*out, n);
      *out = NULL;
      return ES_ENOMEM;
    }
  }
  return 0;
}

/* The binding body's tail, and its dry-run form with every auth value
 * replaced by "<redacted>". */
static int es__rebuild_tail(es_client *c) {
  es__buf t, r;
  es_header *red;
  size_t i, n = c->n_headers + c->n_auth;

  red = es__calloc(n + 1, sizeof(*red));
  if (red == NULL)
    return ES_ENOMEM;
  for (i = 0; i < n; i++) {
    red[i].name =
        i < c->n_headers ? c->headers[i].name : c->auth[i - c->n_headers].name;
    red[i].value = "<redacted>";
  }
  es__buf_init(&t, 0);
  es__buf_init(&r, 0);
  es__dapr_binding_tail(&t, c->headers, c->n_headers, c->auth, c->n_auth);
  es__dapr_binding_tail(&r, red, n, NULL, 0);
  es__free(red);
  if (es__buf_error(&t) || es__buf_error(&r)) {
    es__buf_free(&t);
    es__buf_free(&r);
    return ES_ENOMEM;
  }
  es__buf_free(&c->tail);
  es__buf_free(&c->tail_redacted);
  c->tail = t;
  c->tail_redacted = r;
  return 0;
}

/* Everything constant about event requests, from the options. */
static int es__client_build_requests(es_client *c,
                                     const es_client_options *opts) {
  const char *pubsub = opts && opts->pubsub_name ? opts->pubsub_name : "pubsub";
  const char *topic = opts ? opts->topic : NULL;
  int rc;

  if (c->o.target != ES_TARGET_BINDING && c->o.target != ES_TARGET_PUBSUB)
    return ES_EINVAL;
  if (c->o.bulk && c->o.target != ES_TARGET_PUBSUB)
    return ES_EINVAL; /* bulk publish exists for pub/sub only */
  if (c->o.target == ES_TARGET_BINDING) {
    es__buf_append_str(&c->path, "/v1.0/bindings/");
    rc = es__dapr_append_segment(&c->path, c->binding);
  } else {
    es__buf_append_str(&c->path, c->o.bulk ? "/v1.0-alpha1/publish/bulk/"
                                           : "/v1.0/publish/");
    rc = es__dapr_append_segment(&c->path, pubsub);
    es__buf_append_char(&c->path, '/');
    if (rc == 0 && topic != NULL) {
      es__buf t;
      es__buf_init(&t, 0);
      rc = es__dapr_append_segment(&t, topic);
      c->topic_enc = rc == 0 ? es__buf_steal(&t, NULL) : NULL;
      es__buf_free(&t);
      if (rc == 0 && c->topic_enc == NULL)
        rc = ES_ENOMEM;
    }
    if (rc == 0 && opts != NULL)
      rc = es__dapr_append_query(&c->query, opts->publish_metadata,
                                 opts->n_publish_metadata);
  }
  if (rc != 0)
    return rc;
  c->ctype = c->o.target == ES_TARGET_PUBSUB && c->o.cloudevents
                 ? "application/cloudevents+json"
                 : "application/json";
  es__dapr_head_rest(&c->head_rest, es__http_pool_host(c->pool),
                     c->o.bulk ? "application/json" : c->ctype, c->token);
  if (c->o.cloudevents) {
    const char *src = opts ? opts->cloudevents_source : NULL;
    es__buf b;
    es__buf_init(&b, 0);
    if (src != NULL) {
      if ((rc = es__check_name(src)) != 0)
        return rc;
      es__buf_append_str(&b, src);
    } else {
      es__buf_append_str(&b, "libeventstore/");
      es__buf_append_str(&b, c->app_name);
    }
    c->ce_source = es__buf_steal(&b, NULL);
    if (c->ce_source == NULL)
      return ES_ENOMEM;
    snprintf(c->ce_prefix, sizeof(c->ce_prefix), "%08llx%04x",
             (unsigned long long)(uv_hrtime() & 0xffffffffULL),
             (unsigned)(uintptr_t)c & 0xffff);
  }
  rc = es__rebuild_tail(c);
  if (rc == 0 && (es__buf_error(&c->path) || es__buf_error(&c->query) ||
                  es__buf_error(&c->head_rest)))
    rc = ES_ENOMEM;
  return rc;
}

int es_client_auth_done(es_client *c, int status, const es_header *headers,
                        size_t n, uint64_t valid_for_ms) {
  es_header *copy = NULL;
  uint64_t now;
  int rc;

  if (c == NULL || !c->auth_pending)
    return ES_EINVAL;
  now = es__now_ms(c);
  if (status == 0) {
    rc = es__copy_headers(headers, n, &copy);
    if (rc != 0)
      return rc;
  }
  c->auth_pending = 0;
  if (status != 0) {
    es__log(c, ES_LOG_WARN, "header provider failed: %s", es_err_name(status));
    c->auth_retry_ms =
        now + (c->o.retry_backoff_ms ? c->o.retry_backoff_ms : 100);
    es__kick(c);
    return 0;
  }
  es__free_headers(c->auth, c->n_auth);
  c->auth = copy;
  c->n_auth = n;
  if (es__rebuild_tail(c) != 0) {
    c->auth_valid = 0;
    c->auth_retry_ms = now + 100;
    es__kick(c);
    return ES_ENOMEM;
  }
  c->auth_valid = 1;
  c->auth_expires_ms = valid_for_ms ? now + valid_for_ms : 0;
  /* Ask again when 80% of the validity has passed, while still using it. */
  c->auth_refresh_ms = valid_for_ms ? now + valid_for_ms * 8 / 10 : 0;
  es__kick(c);
  return 0;
}

/* Returns 1 when events may be sent with the current headers. */
static int es__auth_ready(es_client *c) {
  uint64_t now;
  if (c->o.header_provider == NULL)
    return 1;
  now = es__now_ms(c);
  if (c->auth_valid && c->auth_expires_ms != 0 && now >= c->auth_expires_ms)
    c->auth_valid = 0;
  if (!c->auth_pending && now >= c->auth_retry_ms &&
      (!c->auth_valid ||
       (c->auth_refresh_ms != 0 && now >= c->auth_refresh_ms))) {
    c->auth_pending = 1;
    c->o.header_provider(c, c->o.header_provider_arg);
  }
  return c->auth_valid;
}

/* ---- the dispatcher ----------------------------------------------------- */

static void es__close_final(es_client *c);

static void es__flushes_check(es_client *c) {
  es__queue local;
  uint64_t now = es__now_ms(c);

  /* Only the flushes there are now: a callback may ask for another. */
  es__queue_init(&local);
  es__queue_move_tail(&c->flushes, &local);
  while (!es__queue_empty(&local)) {
    es__flush *f = es__container_of(es__queue_head(&local), es__flush, node);
    es__queue_remove(&f->node);
    if (f->remaining == 0 || (f->deadline_ms != 0 && now >= f->deadline_ms)) {
      f->cb(c, f->remaining ? ES_ETIMEDOUT : 0, f->remaining, f->data);
      es__free(f);
    } else {
      es__queue_insert_tail(&c->flushes, &f->node);
    }
  }
}

/* Fails up to `budget` events from the front of the queue with code. */
static unsigned es__fail_pending(es_client *c, int code, unsigned budget) {
  es__queue local;
  unsigned n = 0;

  es__queue_init(&local);
  uv_mutex_lock(&c->lock);
  es__queue_move_tail(&c->pending, &c->returned);
  es__queue_move_tail(&c->returned, &c->pending);
  while (n < budget && !es__queue_empty(&c->pending)) {
    es__queue *q = es__queue_head(&c->pending);
    es__queue_remove(q);
    es__queue_insert_tail(&local, q);
    n++;
  }
  uv_mutex_unlock(&c->lock);
  es__complete_all(c, &local, code);
  return n;
}

/* Takes the next request's events off the queue: the front event, or for
 * bulk, the front event and the next ones for the same topic within the
 * limits. A bulk batch that is not full waits for linger_ms after its first
 * event was accepted, unless a flush or close is waiting. Returns how many
 * (0: nothing to send now). Under lock. */
static unsigned es__take_batch(es_client *c, es__item **out, uint64_t now,
                               int flushing) {
  es__queue *q;
  es__item *head;
  size_t bytes = 0;
  unsigned n = 0, scanned = 0, max = c->o.bulk ? c->o.bulk_max_events : 1;

  if (es__queue_empty(&c->pending))
    return 0;
  head = es__container_of(es__queue_head(&c->pending), es__item, node);
  es__queue_foreach(q, &c->pending) {
    es__item *it = es__container_of(q, es__item, node);
    if (n == max || ++scanned > 4 * max)
      break;
    if (n > 0 && c->topic_enc == NULL &&
        (it->type_len != head->type_len ||
         memcmp(es__item_type(it), es__item_type(head), it->type_len) != 0))
      continue;
    if (n > 0 && bytes + it->len > c->o.bulk_max_bytes)
      break;
    out[n++] = it;
    bytes += it->len;
  }
  if (c->o.bulk && n < max && bytes < c->o.bulk_max_bytes && !flushing &&
      now < head->accepted_ns / 1000000 + c->o.linger_ms)
    return 0; /* linger: let the batch fill */
  for (unsigned i = 0; i < n; i++)
    es__queue_remove(&out[i]->node);
  return n;
}

/* Sends the k events taken into slot s (or, in a dry run, shows and
 * completes them). Returns 0, or an error after which the events are back
 * as they were, for the caller to requeue; the slot stays taken. */
static int es__slot_go(es_client *c, es__slot *s, unsigned k) {
  unsigned i;
  int rc;

  for (i = 0; i < k; i++)
    if (++s->store[i]->attempts > 1)
      c->retries++;
  if (c->o.dry_run) {
    uint64_t now_ns;
    es__show_request(c, s->store, k);
    now_ns = uv_hrtime();
    c->free_slots[c->n_free++] = (unsigned)(s - c->slots);
    for (i = 0; i < k; i++) {
      s->store[i]->attempts = 0;
      es__complete(c, s->store[i], now_ns, 0, 0, NULL, NULL);
    }
    return 0;
  }
  rc = es__slot_send(c, s, s->store, k);
  if (rc != 0) {
    for (i = 0; i < k; i++)
      s->store[i]->attempts--;
    return rc;
  }
  c->requests++;
  c->in_flight += k;
  return 0;
}

/* Slots filled per hold of the lock while sending. */
#define ES__TAKE_CHUNK 32

/* The loop thread never waits for the lock here: a publishing thread that
 * holds it may have been preempted, and the loop must not stall until that
 * thread runs again. When the lock is busy, dispatch tries again in the
 * next loop iteration. */
static void es__dispatch(es_client *c) {
  es__queue dropped, expired;
  unsigned budget = c->o.max_callbacks_per_tick, n = 0;
  uint64_t now = es__now_ms(c);
  int have_pending;

  es__http_pool_tick_begin(c->pool);
  if (uv_mutex_trylock(&c->lock) != 0) {
    es__kick(c);
    return;
  }
  /* 1. Events dropped by publishers to make room. */
  es__queue_init(&dropped);
  es__queue_move_tail(&c->dropped, &dropped);
  /* 2. Retries that are due go to the front, in order. */
  while (!es__queue_empty(&c->retry)) {
    es__item *it = es__container_of(es__queue_head(&c->retry), es__item, node);
    if (it->due_ms > now)
      break;
    es__queue_remove(&it->node);
    es__queue_insert_tail(&c->returned, &it->node);
  }
  if (!es__queue_empty(&c->returned)) {
    es__queue_move_tail(&c->pending, &c->returned);
    es__queue_move_tail(&c->returned, &c->pending);
  }
  /* 3. Expired events at the front (oldest first, so the first one that is
   * not expired ends the sweep). */
  es__queue_init(&expired);
  while (n < budget && !es__queue_empty(&c->pending)) {
    es__item *it =
        es__container_of(es__queue_head(&c->pending), es__item, node);
    if (now < es__deadline_ms(c, it))
      break;
    es__queue_remove(&it->node);
    es__queue_insert_tail(&expired, &it->node);
    n++;
  }
  have_pending = !es__queue_empty(&c->pending);
  uv_mutex_unlock(&c->lock);

  es__complete_all(c, &dropped, ES_EDROPPED);
  es__complete_all(c, &expired, ES_ETIMEDOUT);
  if (c->close_started) {
    if (c->close_final)
      return;
    if (atomic_load(&c->outstanding) == 0 || now >= c->close_deadline_ms) {
      es__close_final(c);
      return;
    }
  }
  es__flushes_check(c);
  if (c->close_final)
    return;

  /* 4. Readiness and registration before the first send. */
  c->can_send = 0;
  if (!c->o.dry_run && c->state != ES__ST_RUNNING && !c->control_busy) {
    if (c->state == ES__ST_NEW && have_pending) {
      c->state = c->o.ready_timeout_ms ? ES__ST_WAIT_READY : ES__ST_CHECK_REG;
      c->ready_deadline_ms = now + c->o.ready_timeout_ms;
      c->next_poll_ms = now;
    }
    if (c->state == ES__ST_CHECK_REG && !c->o.check_registration)
      c->state = ES__ST_RUNNING;
    if ((c->state == ES__ST_WAIT_READY && now >= c->next_poll_ms) ||
        c->state == ES__ST_CHECK_REG ||
        (c->state == ES__ST_UNREGISTERED && now >= c->recheck_ms)) {
      enum es__control_kind k =
          c->state == ES__ST_WAIT_READY ? ES__CTL_HEALTH : ES__CTL_METADATA;
      if (es__control_send(c, k, NULL, NULL, NULL) == 0)
        c->control_busy = 1;
      else
        c->next_poll_ms = now + 100;
    }
  }
  if (c->state == ES__ST_UNREGISTERED) {
    if (es__fail_pending(c, ES_ENOTREGISTERED, budget) == budget)
      es__kick(c);
    es__arm_timer(c);
    return;
  }
  if (c->state != ES__ST_RUNNING && !c->o.dry_run) {
    es__arm_timer(c);
    return;
  }
  if (!es__auth_ready(c) || now < c->backoff_until_ms) {
    es__arm_timer(c);
    return;
  }

  /* 5. Send: a request per free slot (one event, or a bulk batch), the
   * events taken off the queue for up to ES__TAKE_CHUNK slots per hold of
   * the lock. */
  c->can_send = 1;
  {
    unsigned sent = 0, m, j;
    int flushing = !es__queue_empty(&c->flushes) || c->close_started;
    int more = 0, stop = 0;
    do {
      unsigned idx[ES__TAKE_CHUNK], ks[ES__TAKE_CHUNK];
      m = 0;
      if (uv_mutex_trylock(&c->lock) != 0) {
        more = 1; /* busy: the next iteration */
        break;
      }
      while (m < ES__TAKE_CHUNK && c->n_free > 0 && sent < budget) {
        unsigned si = c->free_slots[c->n_free - 1];
        unsigned k = es__take_batch(c, c->slots[si].store, now, flushing);
        if (k == 0)
          break;
        c->n_free--;
        idx[m] = si;
        ks[m++] = k;
        sent += k;
      }
      more = !es__queue_empty(&c->pending);
      uv_mutex_unlock(&c->lock);
      for (j = 0; j < m && !stop; j++) {
        if (es__slot_go(c, &c->slots[idx[j]], ks[j]) == 0)
          continue;
        /* Out of memory for a request: this one and the rest of the
         * chunk go back to the front, in order; try again soon. */
        {
          es__queue back;
          unsigned i;
          es__queue_init(&back);
          for (; j < m; j++) {
            es__slot *s = &c->slots[idx[j]];
            for (i = 0; i < ks[j]; i++)
              es__queue_insert_tail(&back, &s->store[i]->node);
            c->free_slots[c->n_free++] = idx[j];
          }
          uv_mutex_lock(&c->lock);
          es__queue_move_tail(&c->returned, &back);
          es__queue_move_tail(&back, &c->returned);
          uv_mutex_unlock(&c->lock);
          c->backoff_until_ms = now + 10;
          stop = 1;
        }
      }
    } while (!stop && m == ES__TAKE_CHUNK && c->n_free > 0 && sent < budget &&
             !es__http_pool_tick_spent(c->pool));
    if (more && c->n_free > 0 && c->backoff_until_ms <= now)
      es__kick(c); /* a budget or a busy lock stopped us, not the slots */
  }
  es__arm_timer(c);
}

static void es__kick_cb(uv_idle_t *idle) {
  es_client *c = idle->data;
  uv_idle_stop(idle);
  es__dispatch(c);
}

static void es__async_cb(uv_async_t *a) {
  es__dispatch(a->data);
}

static void es__stats_fill(es_client *c, es_stats *st);

static void es__timer_cb(uv_timer_t *t) {
  es_client *c = t->data;
  uint64_t now = es__now_ms(c);
  if (c->o.stats_cb != NULL && c->o.stats_interval_ms != 0 &&
      now >= c->stats_next_ms) {
    es_stats st;
    c->stats_next_ms = now + c->o.stats_interval_ms;
    es__stats_fill(c, &st);
    c->o.stats_cb(c, &st, c->o.stats_arg);
  }
  es__dispatch(c);
}

/* One timer for everything the client waits for: the earliest of the next
 * retry, the front event's deadline, flush deadlines, the readiness poll,
 * the reconnect backoff, the registration recheck, auth refresh, stats and
 * the close deadline. It keeps the loop alive only while events or flushes
 * are outstanding. */
static void es__arm_timer(es_client *c) {
  uint64_t next = UINT64_MAX, now = es__now_ms(c);
  int busy;
  es__queue *q;

#define ES__CONSIDER(t)                                                        \
  do {                                                                         \
    uint64_t t_ = (t);                                                         \
    if (t_ != 0 && t_ < next)                                                  \
      next = t_;                                                               \
  } while (0)

  if (c->close_final)
    return;
  if (uv_mutex_trylock(&c->lock) != 0) {
    es__kick(c); /* busy (see es__dispatch): dispatch arms it next time */
    return;
  }
  if (!es__queue_empty(&c->retry))
    ES__CONSIDER(
        es__container_of(es__queue_head(&c->retry), es__item, node)->due_ms);
  if (!es__queue_empty(&c->pending)) {
    ES__CONSIDER(es__deadline_ms(
        c, es__container_of(es__queue_head(&c->pending), es__item, node)));
    if (c->backoff_until_ms > now)
      ES__CONSIDER(c->backoff_until_ms);
    if (c->o.bulk && c->n_free > 0 && c->can_send)
      ES__CONSIDER(es__container_of(es__queue_head(&c->pending), es__item, node)
                           ->accepted_ns /
                       1000000 +
                   c->o.linger_ms);
    if (c->state == ES__ST_WAIT_READY)
      ES__CONSIDER(c->next_poll_ms > now ? c->next_poll_ms : now + 1);
    if (c->o.header_provider && !c->auth_valid && c->auth_retry_ms > now)
      ES__CONSIDER(c->auth_retry_ms);
  }
  busy = atomic_load(&c->outstanding) > 0;
  uv_mutex_unlock(&c->lock);
  es__queue_foreach(q, &c->flushes) {
    ES__CONSIDER(es__container_of(q, es__flush, node)->deadline_ms);
  }
  busy = busy || !es__queue_empty(&c->flushes);
  if (c->state == ES__ST_UNREGISTERED)
    ES__CONSIDER(c->recheck_ms);
  if (c->o.header_provider && c->auth_refresh_ms > now)
    ES__CONSIDER(c->auth_refresh_ms);
  if (c->o.stats_cb && c->o.stats_interval_ms)
    ES__CONSIDER(c->stats_next_ms);
  if (c->close_started)
    ES__CONSIDER(c->close_deadline_ms);
#undef ES__CONSIDER
  if (next == UINT64_MAX) {
    uv_timer_stop(&c->timer);
    return;
  }
  /* Never 0: libuv 1.44 runs a timer re-armed at 0 from its own callback
   * again in the same pass, without polling I/O in between. */
  uv_timer_start(&c->timer, es__timer_cb, next > now ? next - now : 1, 0);
  if (busy)
    uv_ref((uv_handle_t *)&c->timer);
  else
    uv_unref((uv_handle_t *)&c->timer);
}

/* ---- lifecycle ---------------------------------------------------------- */

void es_client_options_init(es_client_options *o) {
  memset(o, 0, sizeof(*o));
  o->max_queue_events = 100000;
  o->max_queue_bytes = 64 * 1024 * 1024;
  o->overflow = ES_OVERFLOW_REJECT_NEW;
  o->max_event_bytes = 1024 * 1024;
  o->max_connections = 4;
  o->pipeline_depth = 16;
  o->connect_timeout_ms = 5000;
  o->request_timeout_ms = 10000;
  o->max_attempts = 10;
  o->retry_backoff_ms = 100;
  o->retry_backoff_max_ms = 10000;
  o->event_timeout_ms = 300000;
  o->ready_timeout_ms = 10000;
  o->check_registration = 1;
  o->registration_recheck_ms = 30000;
  o->close_timeout_ms = 5000;
  o->max_callbacks_per_tick = 256;
  o->max_tick_us = 250;
  o->log_level = ES_LOG_WARN;
  o->bulk_max_events = 100;
  o->bulk_max_bytes = 1024 * 1024;
  o->linger_ms = 5;
}

static const char *es__env(const char *name) {
  const char *v = getenv(name);
  return v != NULL && v[0] != '\0' ? v : NULL;
}

static void es__client_free(es_client *c) {
  unsigned i;
  es__free(c->endpoint);
  es__free(c->token);
  es__free(c->binding);
  es__free(c->app_name);
  es__free_headers(c->headers, c->n_headers);
  es__free_headers(c->auth, c->n_auth);
  for (i = 0; i < c->n_slots && c->slots; i++) {
    es__buf_free(&c->slots[i].head);
    es__buf_free(&c->slots[i].body);
    es__free(c->slots[i].store);
  }
  es__free(c->slots);
  es__free(c->free_slots);
  es__buf_free(&c->path);
  es__buf_free(&c->query);
  es__buf_free(&c->head_rest);
  es__buf_free(&c->tail);
  es__buf_free(&c->tail_redacted);
  es__free(c->topic_enc);
  es__free(c->ce_source);
  uv_mutex_destroy(&c->lock);
  es__free(c);
}

int es_client_init(uv_loop_t *loop, es_client **out,
                   const es_client_options *opts) {
  es__http_pool_options po;
  es_client *c;
  char port_url[64];
  const char *endpoint, *token, *binding, *app;
  unsigned i;
  int rc;

  if (loop == NULL || out == NULL)
    return ES_EINVAL;
  c = es__calloc(1, sizeof(*c));
  if (c == NULL)
    return ES_ENOMEM;
  if (opts != NULL)
    c->o = *opts;
  else
    es_client_options_init(&c->o);
  if (c->o.max_connections == 0)
    c->o.max_connections = 1;
  if (c->o.pipeline_depth == 0)
    c->o.pipeline_depth = 1;
  if (c->o.max_callbacks_per_tick == 0)
    c->o.max_callbacks_per_tick = 256;
  if (c->o.max_event_bytes == 0)
    c->o.max_event_bytes = 1024 * 1024;
  if (uv_mutex_init(&c->lock) != 0) {
    es__free(c);
    return ES_ENOMEM;
  }
  es__buf_init(&c->path, 0);
  es__buf_init(&c->query, 0);
  es__buf_init(&c->head_rest, 0);
  es__buf_init(&c->tail, 0);
  es__buf_init(&c->tail_redacted, 0);
  if (c->o.bulk_max_events == 0)
    c->o.bulk_max_events = 100;
  if (c->o.bulk_max_bytes == 0)
    c->o.bulk_max_bytes = 1024 * 1024;

  endpoint = c->o.endpoint ? c->o.endpoint : es__env("DAPR_HTTP_ENDPOINT");
  if (endpoint == NULL) {
    const char *port = es__env("DAPR_HTTP_PORT");
    snprintf(port_url, sizeof(port_url), "http://127.0.0.1:%.8s",
             port ? port : "3500");
    endpoint = port_url;
  }
  token = c->o.api_token ? c->o.api_token : es__env("DAPR_API_TOKEN");
  binding = c->o.binding_name ? c->o.binding_name : es__env("EVENT_STORE_NAME");
  if (binding == NULL)
    binding = "eventstore";
  app = c->o.application_name ? c->o.application_name
                              : es__default_application_name();
  rc = ES_EINVAL;
  if (es__check_name(app) != 0 ||
      (token != NULL && es__dapr_check_header("dapr-api-token", token) != 0))
    goto fail;
  rc = ES_ENOMEM;
  c->endpoint = es__strdup(endpoint);
  c->token = es__strdup(token);
  c->binding = es__strdup(binding);
  c->app_name = es__strdup(app);
  if (c->endpoint == NULL || c->binding == NULL || c->app_name == NULL ||
      (token != NULL && c->token == NULL))
    goto fail;
  rc = es__copy_headers(c->o.headers, c->o.n_headers, &c->headers);
  if (rc != 0)
    goto fail;
  c->n_headers = c->o.n_headers;
  /* The option structs point into the caller's memory: forget them. */
  c->o.endpoint = c->o.api_token = c->o.binding_name = NULL;
  c->o.application_name = NULL;
  c->o.headers = NULL;
  c->o.pubsub_name = c->o.topic = c->o.cloudevents_source = NULL;
  c->o.publish_metadata = NULL;

  es__http_pool_options_init(&po);
  po.max_connections = c->o.max_connections;
  po.pipeline_depth = c->o.pipeline_depth;
  po.connect_timeout_ms = c->o.connect_timeout_ms;
  po.response_timeout_ms = c->o.request_timeout_ms;
  po.io_timeout_ms = c->o.request_timeout_ms;
  po.tick_budget_us = c->o.max_tick_us;
  rc = es__http_pool_new(loop, c->endpoint, &po, &c->pool);
  if (rc != 0)
    goto fail;
  rc = es__client_build_requests(c, opts);
  if (rc != 0)
    goto fail_pool;
  rc = ES_ENOMEM;
  c->n_slots = c->o.max_connections * c->o.pipeline_depth;
  c->slots = es__calloc(c->n_slots, sizeof(*c->slots));
  c->free_slots = es__calloc(c->n_slots, sizeof(*c->free_slots));
  if (c->slots == NULL || c->free_slots == NULL)
    goto fail_pool;
  for (i = 0; i < c->n_slots; i++) {
    es__slot *sl = &c->slots[i];
    sl->client = c;
    es__buf_init(&sl->head, 0);
    es__buf_init(&sl->body, 0);
    sl->store =
        es__calloc(c->o.bulk ? c->o.bulk_max_events : 1, sizeof(*sl->store));
    if (sl->store == NULL)
      goto fail_pool;
    c->free_slots[c->n_free++] = c->n_slots - 1 - i;
  }

  c->loop = loop;
  c->loop_thread = uv_thread_self();
  es__queue_init(&c->pending);
  es__queue_init(&c->retry);
  es__queue_init(&c->returned);
  es__queue_init(&c->dropped);
  es__queue_init(&c->flushes);
  es__queue_init(&c->controls);
  c->rng = uv_hrtime() | 1;
  c->state = ES__ST_NEW;
  c->pool_open = 1;
  rc = uv_async_init(loop, &c->async, es__async_cb);
  if (rc != 0)
    goto fail_pool;
  uv_idle_init(loop, &c->kick);
  uv_timer_init(loop, &c->timer);
  c->async.data = c->kick.data = c->timer.data = c;
  c->handles_open = 3;
  /* An idle client does not keep the loop alive: uv_run returns once every
   * accepted event has completed. */
  uv_unref((uv_handle_t *)&c->async);
  if (c->o.stats_cb && c->o.stats_interval_ms) {
    c->stats_next_ms = uv_now(loop) + c->o.stats_interval_ms;
    es__arm_timer(c);
  }
  *out = c;
  return 0;

fail_pool:
  es__http_pool_close(c->pool, ES_ECANCELED, NULL, NULL);
  /* The pool frees itself once its idle handle closes (next loop turn). */
fail:
  es__client_free(c);
  return rc;
}

const char *es_client_endpoint(const es_client *c) {
  return c ? c->endpoint : NULL;
}

const char *es_client_binding(const es_client *c) {
  return c ? c->binding : NULL;
}

void *es_client_get_data(const es_client *c) {
  return c ? c->data : NULL;
}

void es_client_set_data(es_client *c, void *data) {
  if (c)
    c->data = data;
}

int es_client_flush(es_client *c, uint64_t timeout_ms, es_flush_cb cb,
                    void *data) {
  es__flush *f;

  if (c == NULL || cb == NULL)
    return ES_EINVAL;
  if (c->close_started)
    return ES_ECLOSED;
  f = es__calloc(1, sizeof(*f));
  if (f == NULL)
    return ES_ENOMEM;
  f->cb = cb;
  f->data = data;
  f->deadline_ms = timeout_ms ? es__now_ms(c) + timeout_ms : 0;
  uv_mutex_lock(&c->lock);
  f->target_seq = c->next_seq;
  f->remaining = atomic_load(&c->outstanding);
  uv_mutex_unlock(&c->lock);
  es__queue_insert_tail(&c->flushes, &f->node);
  /* Completed from the dispatcher, never from inside this call. */
  es__kick(c);
  return 0;
}

/* Everything is closed: the close callback, then the memory (kept for
 * es_client_close_sync in background mode). */
static void es__closed(es_client *c) {
  if (c->close_cb)
    c->close_cb(c);
  if (c->bg != NULL)
    es__bg_closed(c->bg);
  else
    es__client_free(c);
}

static void es__handle_closed(uv_handle_t *h) {
  es_client *c = h->data;
  if (--c->handles_open == 0 && !c->pool_open)
    es__closed(c);
}

static void es__pool_closed(void *arg) {
  es_client *c = arg;
  c->pool_open = 0;
  if (c->handles_open == 0)
    es__closed(c);
}

void es__client_attach_bg(es_client *c, es__bg *bg) {
  c->bg = bg;
  c->loop_thread = uv_thread_self();
}

es__bg *es__client_bg(const es_client *c) {
  return c->bg;
}

void es__client_set_close_timeout(es_client *c, uint64_t ms) {
  c->o.close_timeout_ms = ms;
}

void es__client_destroy(es_client *c) {
  es__client_free(c);
}

/* Cancels whatever is left and closes every handle. Runs from the
 * dispatcher (a clean stack), never from inside a user call. */
static void es__close_final(es_client *c) {
  es__queue local;

  c->close_final = 1;
  uv_timer_stop(&c->timer);
  /* Queued events: canceled, in order. */
  es__queue_init(&local);
  uv_mutex_lock(&c->lock);
  es__queue_move_tail(&c->returned, &local);
  es__queue_move_tail(&c->pending, &local);
  es__queue_move_tail(&c->retry, &local);
  es__queue_move_tail(&c->dropped, &local);
  uv_mutex_unlock(&c->lock);
  es__complete_all(c, &local, ES_ECANCELED);
  /* In flight: the pool fails them through es__slot_done (ES_ECANCELED),
   * and control requests through es__control_done. */
  es__http_pool_close(c->pool, ES_ECANCELED, es__pool_closed, c);
  while (!es__queue_empty(&c->flushes)) {
    es__flush *f =
        es__container_of(es__queue_head(&c->flushes), es__flush, node);
    es__queue_remove(&f->node);
    f->cb(c, f->remaining ? ES_ECANCELED : 0, f->remaining, f->data);
    es__free(f);
  }
  uv_close((uv_handle_t *)&c->async, es__handle_closed);
  uv_close((uv_handle_t *)&c->kick, es__handle_closed);
  uv_close((uv_handle_t *)&c->timer, es__handle_closed);
}

void es_client_close(es_client *c, es_close_cb cb) {
  if (c == NULL || c->close_started)
    return;
  c->close_started = 1;
  c->close_cb = cb;
  c->close_deadline_ms = es__now_ms(c) + c->o.close_timeout_ms;
  uv_mutex_lock(&c->lock);
  c->closing = 1;
  uv_mutex_unlock(&c->lock);
  /* The loop must run until close completes, even if nothing else is. */
  uv_ref((uv_handle_t *)&c->timer);
  uv_timer_start(&c->timer, es__timer_cb, c->o.close_timeout_ms, 0);
  es__kick(c);
}

static void es__stats_fill(es_client *c, es_stats *st) {
  es__http_pool_stats ps;
  uint64_t total = 0, acc = 0;
  unsigned i;

  memset(st, 0, sizeof(*st));
  uv_mutex_lock(&c->lock);
  st->accepted = c->accepted;
  st->rejected = c->rejected;
  st->queued_events = atomic_load(&c->held_events);
  st->queued_bytes = atomic_load(&c->held_bytes);
  uv_mutex_unlock(&c->lock);
  st->succeeded = c->succeeded;
  st->failed = c->failed;
  st->dropped = c->dropped_n;
  st->retries = c->retries;
  st->requests = c->requests;
  st->in_flight = c->in_flight;
  if (c->pool != NULL && !c->close_final) {
    es__http_pool_stats_get(c->pool, &ps);
    st->open_connections = ps.open_connections;
  }
  for (i = 0; i < ES__HIST_BUCKETS; i++)
    total += c->hist[i];
  for (i = 0; i < ES__HIST_BUCKETS && total > 0; i++) {
    acc += c->hist[i];
    if (st->latency_p50_us == 0 && acc * 2 >= total)
      st->latency_p50_us = es__hist_value(i);
    if (acc * 100 >= total * 99) {
      st->latency_p99_us = es__hist_value(i);
      break;
    }
  }
}

void es_client_stats(es_client *c, es_stats *st) {
  if (c == NULL || st == NULL)
    return;
  es__stats_fill(c, st);
}
