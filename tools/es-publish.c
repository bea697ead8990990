/* es-publish: publish events to a Dapr sidecar from the command line, built
 * on libeventstore's public API only.
 *
 *   es-publish --type T --name N [--data JSON] [-m KEY=VALUE]...
 *   es-publish -f FILE|-   (one {"event_type","event_name","data",
 *                           "metadata"?} object per line)
 *
 * A reader thread parses the input and publishes (publishing works from any
 * thread); the main thread runs the loop. Exit status: 0 when every event
 * succeeded, 1 when any failed, 2 on a usage or input error. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <uv.h>

#include "eventstore.h"
#include "publish_line.h"

typedef struct reason {
  char *text;
  unsigned long count;
  struct reason *next;
} reason;

typedef struct app {
  uv_loop_t loop;
  uv_async_t done_async; /* the reader finished */
  uv_thread_t reader;
  es_client *client;
  FILE *in;
  const char *in_name;
  cJSON *base_custom;
  const char *one_type, *one_name, *one_data;
  int quiet, dry_run, want_stats;
  int input_errors;
  unsigned long failed;
  reason *reasons; /* distinct failure reasons (loop thread) */
  uint64_t start_ns, end_ns;
  es_stats stats;
} app;

static void usage(FILE *f) {
  fprintf(
      f,
      "usage: es-publish --type T --name N [--data JSON] [options]\n"
      "       es-publish -f FILE|- [options]\n"
      "  -f FILE             one event object per line ('-': standard "
      "input)\n"
      "  -m KEY=VALUE        custom metadata (repeatable; VALUE as JSON when "
      "it is JSON)\n"
      "  --sidecar URL       http://host:port or unix:/path (default: "
      "$DAPR_HTTP_ENDPOINT,\n"
      "                      else http://127.0.0.1:$DAPR_HTTP_PORT, port "
      "3500)\n"
      "  --binding NAME      output binding (default $EVENT_STORE_NAME or "
      "eventstore)\n"
      "  --pubsub NAME       publish to this pub/sub component instead\n"
      "  --topic T           pub/sub topic (default: each event's "
      "event_type)\n"
      "  --bulk N            bulk publish, N events per request (pub/sub)\n"
      "  --linger-ms MS      how long a bulk batch waits to fill (default "
      "5)\n"
      "  --raw-payload       metadata.rawPayload=true (pub/sub)\n"
      "  --cloudevents       send events as CloudEvents (pub/sub)\n"
      "  --connections N     connections to the sidecar (default 4)\n"
      "  --timeout-ms MS     per-event deadline (default 300000)\n"
      "  --retries N         retries after the first attempt (default 9)\n"
      "  --no-wait           do not wait for the sidecar to be ready\n"
      "  --dry-run           send nothing; print each request as JSON\n"
      "  --stats             print counters as JSON to stderr at exit\n"
      "  --quiet             no per-failure lines\n");
}

static void add_reason(app *a, const es_publish_result *r) {
  char text[512];
  reason *x;

  snprintf(text, sizeof(text), "%s%s%.0d%s%s%s%s", es_err_name(r->status),
           r->http_status ? " HTTP " : "", r->http_status,
           r->error_code ? " " : "", r->error_code ? r->error_code : "",
           r->message ? ": " : "", r->message ? r->message : "");
  for (x = a->reasons; x != NULL; x = x->next)
    if (strcmp(x->text, text) == 0) {
      x->count++;
      return;
    }
  x = calloc(1, sizeof(*x));
  if (x == NULL)
    return;
  x->text = strdup(text);
  x->count = 1;
  x->next = a->reasons;
  a->reasons = x;
}

static void on_published(es_client *client, const es_publish_result *r,
                         void *data) {
  app *a = es_client_get_data(client);
  (void)data;
  if (r->status != 0) {
    a->failed++;
    add_reason(a, r);
  }
}

static void on_request(es_client *client, const es_request_info *req,
                       void *arg) {
  cJSON *line = cJSON_CreateObject(), *hdrs = cJSON_CreateObject(), *body;
  char *text;
  size_t i;
  (void)client;
  (void)arg;
  cJSON_AddStringToObject(line, "method", req->method);
  cJSON_AddStringToObject(line, "path", req->path);
  for (i = 0; i < req->n_headers; i++)
    cJSON_AddStringToObject(hdrs, req->headers[i].name, req->headers[i].value);
  cJSON_AddItemToObject(line, "headers", hdrs);
  body = cJSON_ParseWithLength(req->body, req->body_len);
  if (body == NULL)
    body = cJSON_CreateString(req->body);
  cJSON_AddItemToObject(line, "body", body);
  text = cJSON_PrintUnformatted(line);
  if (text != NULL) {
    printf("%s\n", text);
    free(text);
  }
  cJSON_Delete(line);
}

/* Publishes from the reader thread; waits (this thread only) while the
 * queue is full. */
static int publish_one(app *a, const es_event *ev, const cJSON *custom) {
  int rc;
  for (;;) {
    rc = es_publish_event_simple(a->client, ev, custom, on_published, NULL);
    if (rc != ES_EQUEUEFULL)
      return rc;
    uv_sleep(1);
  }
}

static void reader(void *arg) {
  app *a = arg;
  char err[256];
  int rc;

  if (a->in == NULL) {
    es_event *ev = NULL;
    cJSON *data = a->one_data ? cJSON_Parse(a->one_data) : NULL;
    if (a->one_data != NULL && !cJSON_IsObject(data)) {
      fprintf(stderr, "es-publish: --data must be a JSON object\n");
      a->input_errors++;
    } else if ((rc = es_event_new(&ev, a->one_type, a->one_name, data)) != 0) {
      fprintf(stderr, "es-publish: invalid event: %s\n", es_strerror(rc));
      a->input_errors++;
    } else if ((rc = publish_one(a, ev, a->base_custom)) != 0) {
      fprintf(stderr, "es-publish: cannot publish: %s (%s)\n", es_err_name(rc),
              es_strerror(rc));
      a->input_errors++;
    }
    es_event_free(ev);
    cJSON_Delete(data);
  } else {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    unsigned long lineno = 0;
    while ((n = getline(&line, &cap, a->in)) >= 0) {
      es_event *ev;
      cJSON *custom;
      lineno++;
      while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        n--;
      rc = es_publish_parse_line(line, (size_t)n, a->base_custom, &ev, &custom,
                                 err, sizeof(err));
      if (rc == ES_EINVAL && strcmp(err, "empty line") == 0)
        continue;
      if (rc == 0) {
        rc = publish_one(a, ev, custom);
        if (rc != 0)
          snprintf(err, sizeof(err), "%s", es_strerror(rc));
        es_event_free(ev);
        cJSON_Delete(custom);
      }
      if (rc != 0) {
        fprintf(stderr, "es-publish: %s:%lu: %s (%s), skipped\n", a->in_name,
                lineno, err, es_err_name(rc));
        a->input_errors++;
      }
    }
    free(line);
  }
  uv_async_send(&a->done_async);
}

/* The last moment the client exists: take its counters. */
static void on_closed(es_client *client) {
  app *a = es_client_get_data(client);
  es_client_stats(client, &a->stats);
  a->end_ns = uv_hrtime();
}

static void on_reader_done(uv_async_t *h) {
  app *a = h->data;
  uv_close((uv_handle_t *)h, NULL);
  /* Close waits (close_timeout_ms) for what is queued, then cancels. */
  es_client_close(a->client, on_closed);
}

static int parse_num(const char *s, unsigned long long *out) {
  char *end;
  if (s == NULL || *s == '\0' || *s == '-')
    return -1;
  errno = 0;
  *out = strtoull(s, &end, 10);
  return errno == 0 && *end == '\0' ? 0 : -1;
}

int main(int argc, char **argv) {
  app a;
  es_client_options o;
  const char *file = NULL;
  unsigned long long num;
  int raw_payload = 0;
  static const es_header raw_md[] = {{"rawPayload", "true"}};
  int i, rc;
  reason *x;

  signal(SIGPIPE, SIG_IGN);
  memset(&a, 0, sizeof(a));
  es_client_options_init(&o);
  o.close_timeout_ms = 24ULL * 3600 * 1000; /* finish the work; the per-event
                                               deadline bounds it */
  a.base_custom = cJSON_CreateObject();
  for (i = 1; i < argc; i++) {
    const char *arg = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE()                                                                 \
  do {                                                                         \
    if (v == NULL) {                                                           \
      fprintf(stderr, "es-publish: %s needs a value\n", arg);                  \
      goto usage_exit;                                                         \
    }                                                                          \
    i++;                                                                       \
  } while (0)
#define TAKE_NUM()                                                             \
  do {                                                                         \
    TAKE();                                                                    \
    if (parse_num(v, &num) != 0) {                                             \
      fprintf(stderr, "es-publish: %s needs a number\n", arg);                 \
      goto usage_exit;                                                         \
    }                                                                          \
  } while (0)
    if (strcmp(arg, "--type") == 0) {
      TAKE();
      a.one_type = v;
    } else if (strcmp(arg, "--name") == 0) {
      TAKE();
      a.one_name = v;
    } else if (strcmp(arg, "--data") == 0) {
      TAKE();
      a.one_data = v;
    } else if (strcmp(arg, "-f") == 0) {
      TAKE();
      file = v;
    } else if (strcmp(arg, "-m") == 0) {
      TAKE();
      if (es_publish_add_metadata_arg(a.base_custom, v) != 0) {
        fprintf(stderr, "es-publish: -m needs KEY=VALUE\n");
        goto usage_exit;
      }
    } else if (strcmp(arg, "--sidecar") == 0) {
      TAKE();
      o.endpoint = v;
    } else if (strcmp(arg, "--binding") == 0) {
      TAKE();
      o.binding_name = v;
    } else if (strcmp(arg, "--connections") == 0) {
      TAKE_NUM();
      o.max_connections = (unsigned)num;
    } else if (strcmp(arg, "--timeout-ms") == 0) {
      TAKE_NUM();
      o.event_timeout_ms = num;
    } else if (strcmp(arg, "--retries") == 0) {
      TAKE_NUM();
      o.max_attempts = (unsigned)num + 1;
    } else if (strcmp(arg, "--pubsub") == 0) {
      TAKE();
      o.target = ES_TARGET_PUBSUB;
      o.pubsub_name = v;
    } else if (strcmp(arg, "--topic") == 0) {
      TAKE();
      o.target = ES_TARGET_PUBSUB;
      o.topic = v;
    } else if (strcmp(arg, "--bulk") == 0) {
      TAKE_NUM();
      o.target = ES_TARGET_PUBSUB;
      o.bulk = 1;
      o.bulk_max_events = (unsigned)num;
    } else if (strcmp(arg, "--linger-ms") == 0) {
      TAKE_NUM();
      o.linger_ms = num;
    } else if (strcmp(arg, "--raw-payload") == 0) {
      raw_payload = 1;
    } else if (strcmp(arg, "--cloudevents") == 0) {
      o.cloudevents = 1;
    } else if (strcmp(arg, "--no-wait") == 0) {
      o.ready_timeout_ms = 0;
    } else if (strcmp(arg, "--dry-run") == 0) {
      a.dry_run = 1;
    } else if (strcmp(arg, "--stats") == 0) {
      a.want_stats = 1;
    } else if (strcmp(arg, "--quiet") == 0) {
      a.quiet = 1;
    } else if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
      usage(stdout);
      cJSON_Delete(a.base_custom);
      return 0;
    } else {
      fprintf(stderr, "es-publish: unknown option %s\n", arg);
      usage(stderr);
      goto usage_exit;
    }
#undef TAKE
#undef TAKE_NUM
  }
  if ((file == NULL) == (a.one_type == NULL && a.one_name == NULL) ||
      (file == NULL && (a.one_type == NULL || a.one_name == NULL))) {
    fprintf(stderr, "es-publish: give --type and --name, or -f FILE\n");
    usage(stderr);
    goto usage_exit;
  }
  if (cJSON_GetArraySize(a.base_custom) == 0) {
    cJSON_Delete(a.base_custom);
    a.base_custom = NULL;
  }
  if (file != NULL) {
    a.in_name = strcmp(file, "-") == 0 ? "<stdin>" : file;
    a.in = strcmp(file, "-") == 0 ? stdin : fopen(file, "re");
    if (a.in == NULL) {
      fprintf(stderr, "es-publish: cannot open %s: %s\n", file,
              strerror(errno));
      goto usage_exit;
    }
  }
  if (raw_payload) {
    o.target = ES_TARGET_PUBSUB;
    o.publish_metadata = raw_md;
    o.n_publish_metadata = 1;
  }
  if (a.dry_run) {
    o.dry_run = 1;
    o.request_cb = on_request;
  }
  o.log_level = a.quiet ? ES_LOG_ERROR : ES_LOG_WARN;

  uv_loop_init(&a.loop);
  rc = es_client_init(&a.loop, &a.client, &o);
  if (rc != 0) {
    fprintf(stderr, "es-publish: %s (%s)\n", es_strerror(rc), es_err_name(rc));
    uv_run(&a.loop, UV_RUN_DEFAULT); /* lets what init opened close */
    uv_loop_close(&a.loop);
    if (a.in != NULL && a.in != stdin)
      fclose(a.in);
    goto usage_exit;
  }
  es_client_set_data(a.client, &a);
  uv_async_init(&a.loop, &a.done_async, on_reader_done);
  a.done_async.data = &a;
  a.start_ns = uv_hrtime();
  if (uv_thread_create(&a.reader, reader, &a) != 0) {
    fprintf(stderr, "es-publish: cannot start the reader thread\n");
    return 2;
  }
  uv_run(&a.loop, UV_RUN_DEFAULT);
  uv_thread_join(&a.reader);
  if (a.want_stats) {
    double ms = (double)(a.end_ns - a.start_ns) / 1e6;
    fprintf(stderr,
            "{\"accepted\":%llu,\"succeeded\":%llu,\"failed\":%llu,"
            "\"dropped\":%llu,\"retries\":%llu,\"elapsed_ms\":%.1f,"
            "\"events_per_sec\":%.0f}\n",
            (unsigned long long)a.stats.accepted,
            (unsigned long long)a.stats.succeeded,
            (unsigned long long)a.stats.failed,
            (unsigned long long)a.stats.dropped,
            (unsigned long long)a.stats.retries, ms,
            ms > 0 ? (double)a.stats.succeeded * 1000.0 / ms : 0.0);
  }
  if (a.in != NULL && a.in != stdin)
    fclose(a.in);
  cJSON_Delete(a.base_custom);
  rc = uv_loop_close(&a.loop);
  if (!a.quiet)
    for (x = a.reasons; x != NULL; x = x->next)
      fprintf(stderr, "es-publish: %lu event(s) failed: %s\n", x->count,
              x->text);
  while (a.reasons) {
    x = a.reasons->next;
    free(a.reasons->text);
    free(a.reasons);
    a.reasons = x;
  }
  if (a.input_errors)
    return 2;
  return a.failed ? 1 : 0;

usage_exit:
  cJSON_Delete(a.base_custom);
  return 2;
}
