/* libeventstore: publish application events to a Dapr sidecar from a libuv
 * loop without ever blocking the caller.
 *
 * Conventions (they hold for every declaration below unless it says
 * otherwise):
 *  - Functions return 0 on success or a negative error code: libuv's UV_E*
 *    codes pass through unchanged, the library's own ES_E* codes live in a
 *    separate range (see ES_ERRNO_MAP). es_strerror()/es_err_name() name both.
 *  - A function that takes a completion callback either returns a negative
 *    code and never calls it, or returns 0 and calls it exactly once, later,
 *    on the loop thread, never from inside the call itself.
 *  - Strings passed in are copied; nothing passed in is retained after the
 *    call returns unless the declaration says so.
 *  - Data handed to a callback is valid only during that callback.
 */
#ifndef EVENTSTORE_H
#define EVENTSTORE_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define ES_EXTERN /* nothing */
#elif defined(__GNUC__) && __GNUC__ >= 4
#define ES_EXTERN __attribute__((visibility("default")))
#else
#define ES_EXTERN /* nothing */
#endif

/* libuv's loop type, declared here so that callers who never touch libuv
 * (see es_client_start_background) need not include uv.h. A uv_loop_t * is a
 * struct uv_loop_s *. */
struct uv_loop_s;

/* ------------------------------------------------------------------------ */
/* Version                                                                  */

#define ES_VERSION_MAJOR 0
#define ES_VERSION_MINOR 1
#define ES_VERSION_PATCH 0
#define ES_VERSION_HEX                                                         \
  ((ES_VERSION_MAJOR << 16) | (ES_VERSION_MINOR << 8) | ES_VERSION_PATCH)

/* The version of the library actually linked, as ES_VERSION_HEX would give
 * it, and as "MAJOR.MINOR.PATCH". Any thread. */
ES_EXTERN unsigned int es_version(void);
ES_EXTERN const char *es_version_string(void);

/* ------------------------------------------------------------------------ */
/* Errors                                                                   */

/* The library's own error codes: XX(name, value, message). They live below
 * -30000 so that they never collide with libuv's codes (negated errno values
 * and UV_EAI_* near -3000, UV_EOF at -4095), which the library returns
 * unchanged. */
#define ES_ERRNO_MAP(XX)                                                       \
  XX(EINVAL, -30001, "invalid argument")                                       \
  XX(ENOMEM, -30002, "out of memory")                                          \
  XX(EPARSE, -30003, "invalid JSON")                                           \
  XX(E2BIG, -30004, "event larger than the configured maximum")                \
  XX(EUTF8, -30005, "string is not valid UTF-8")                               \
  XX(EQUEUEFULL, -30006, "pending queue is full")                              \
  XX(EDROPPED, -30007, "event dropped to make room in a full queue")           \
  XX(ECLOSED, -30008, "client is closing or closed")                           \
  XX(ECANCELED, -30009, "canceled by close")                                   \
  XX(ETIMEDOUT, -30010, "event deadline expired before delivery")              \
  XX(EATTEMPTS, -30011, "retry limit reached")                                 \
  XX(ENOTREGISTERED, -30012, "component not registered with the sidecar")      \
  XX(EHTTP, -30013, "sidecar answered with an error status")                   \
  XX(EUNAUTHORIZED, -30014, "sidecar refused the API token")                   \
  XX(EBADURL, -30015, "invalid endpoint URL")                                  \
  XX(EUNSUPPORTED, -30016, "unsupported (https needs TLS, not built in)")      \
  XX(ECONNTIMEDOUT, -30017, "connect timed out")                               \
  XX(ERESPTIMEDOUT, -30018, "response timed out")                              \
  XX(EPEERCLOSED, -30019, "connection closed before the response completed")   \
  XX(EHTTPPARSE, -30020, "malformed HTTP response")                            \
  XX(ETOOLARGE, -30021, "HTTP response larger than the configured limit")      \
  XX(EBUSY, -30022, "operation not allowed from this context")                 \
  XX(ENOTREADY, -30023, "sidecar not ready")

typedef enum {
#define ES__ERR_ENUM(name, value, msg) ES_##name = (value),
  ES_ERRNO_MAP(ES__ERR_ENUM)
#undef ES__ERR_ENUM
      ES_ERRNO_MIN_ = -30100 /* every ES_E* code is above this */
} es_errno_t;

/* A static, human readable message for any code (ES_E*, UV_E* or unknown).
 * Never NULL. Any thread. */
ES_EXTERN const char *es_strerror(int err);
/* The code's symbolic name ("ES_EQUEUEFULL", "ECONNREFUSED", ...), static,
 * never NULL ("UNKNOWN" for unknown codes). Any thread. */
ES_EXTERN const char *es_err_name(int err);

/* ------------------------------------------------------------------------ */
/* Allocation                                                               */

typedef void *(*es_malloc_func)(size_t size);
typedef void *(*es_realloc_func)(void *ptr, size_t size);
typedef void *(*es_calloc_func)(size_t count, size_t size);
typedef void (*es_free_func)(void *ptr);

/* Routes every allocation of the library, and of cJSON (whose hooks are
 * process-wide), through these functions. Same contract as
 * uv_replace_allocator(): call it before any other es_ or cJSON function,
 * from one thread, and never while objects made with the previous allocator
 * are alive. Returns ES_EINVAL if any pointer is NULL. */
ES_EXTERN int es_replace_allocator(es_malloc_func malloc_func,
                                   es_realloc_func realloc_func,
                                   es_calloc_func calloc_func,
                                   es_free_func free_func);

/* Frees memory the library handed to the caller (es_event_to_json's text).
 * NULL is allowed. Any thread. */
ES_EXTERN void es_free(void *ptr);

/* ------------------------------------------------------------------------ */
/* Events                                                                   */

/* An application event, compatible with the Python SDK's Event model:
 *
 *   {"metadata": {"application_name", "created_timestamp", "workflow_type",
 *                 "workflow_id", "workflow_run_id", "workflow_state",
 *                 "activity_type", "activity_id", "attempt", "topic_name",
 *                 ...extra metadata},
 *    "event_type", "event_name", "data": {...}, ...extra fields}
 *
 * An es_event is a plain value: it belongs to whoever created it, is not
 * thread-safe (one thread at a time), and publishing it copies it, so it may
 * be changed or freed as soon as a publish call returns. */
typedef struct es_event es_event;

/* Workflow and activity context, the C form of Temporal's workflow.info() and
 * activity.info(): any field may be NULL. When has_activity is non-zero the
 * event is taken to run inside an activity: activity_type, activity_id and
 * attempt are set and workflow_state becomes "running". */
typedef struct es_workflow_context {
  const char *workflow_type;
  const char *workflow_id;
  const char *workflow_run_id;
  int has_activity;
  const char *activity_type;
  const char *activity_id;
  int64_t attempt;
} es_workflow_context;

/* Creates an event. event_type and event_name must be non-empty UTF-8 without
 * control characters. data must be a JSON object or NULL (an empty object);
 * it is copied. Metadata starts at the Python model's defaults:
 * application_name "default" (or $ATLAN_APPLICATION_NAME), created_timestamp
 * 0, workflow_state "unknown", every other field null.
 * Errors: ES_EINVAL (bad name, data not an object, duplicate keys),
 * ES_EUTF8, ES_ENOMEM. On error *out is left unchanged. */
ES_EXTERN int es_event_new(es_event **out, const char *event_type,
                           const char *event_name, const cJSON *data);
/* Frees an event; NULL is allowed. */
ES_EXTERN void es_event_free(es_event *event);
/* A deep copy. ES_EINVAL, ES_ENOMEM. */
ES_EXTERN int es_event_clone(const es_event *event, es_event **out);

/* Replaces the data with a copy of data (a JSON object). ES_EINVAL if it is
 * not an object or has duplicate keys, ES_EUTF8, ES_ENOMEM; on error the
 * event is unchanged. */
ES_EXTERN int es_event_set_data(es_event *event, const cJSON *data);
/* Replaces the data with the object parsed from len bytes of JSON text.
 * ES_EPARSE (not JSON, or nested deeper than ES_JSON_MAX_DEPTH), ES_EINVAL
 * (not an object, duplicate keys), ES_EUTF8, ES_ENOMEM. */
ES_EXTERN int es_event_set_data_json(es_event *event, const char *json,
                                     size_t len);

/* Deepest nesting of objects and arrays accepted in event JSON. */
#define ES_JSON_MAX_DEPTH 64

/* Sets a metadata field. A standard field keeps its type: strings (or null)
 * for application_name, workflow_type, workflow_id, workflow_run_id,
 * workflow_state, activity_type, activity_id, topic_name; integers for
 * created_timestamp (not null) and attempt (or null). Any other key becomes
 * extra metadata and may hold any JSON value. value is copied; NULL means
 * JSON null. ES_EINVAL (empty key, wrong type for a standard field),
 * ES_EUTF8, ES_ENOMEM; on error the event is unchanged. */
ES_EXTERN int es_event_set_metadata(es_event *event, const char *key,
                                    const cJSON *value);
/* Shorthands for es_event_set_metadata. A NULL value sets null. */
ES_EXTERN int es_event_set_metadata_string(es_event *event, const char *key,
                                           const char *value);
ES_EXTERN int es_event_set_metadata_int(es_event *event, const char *key,
                                        int64_t value);

/* Sets an extra top-level field, written after "data". key must not be one of
 * metadata, event_type, event_name or data (ES_EINVAL). value is copied. */
ES_EXTERN int es_event_set_field(es_event *event, const char *key,
                                 const cJSON *value);

/* Accessors. Returned pointers belong to the event and stay valid until it is
 * changed or freed. */
ES_EXTERN const char *es_event_type(const es_event *event);
ES_EXTERN const char *es_event_name(const es_event *event);
ES_EXTERN const cJSON *es_event_data(const es_event *event);
/* The metadata as a JSON object, standard fields first (owned by the event). */
ES_EXTERN const cJSON *es_event_metadata(const es_event *event);

/* enrich_event_metadata: sets application_name ($ATLAN_APPLICATION_NAME, else
 * "default"), created_timestamp (now, Unix seconds), topic_name (the
 * event_type) and, when ctx is not NULL, the workflow and activity fields
 * (see es_workflow_context). ES_EINVAL, ES_EUTF8, ES_ENOMEM; on error the
 * event is unchanged. */
ES_EXTERN int es_event_enrich(es_event *event, const es_workflow_context *ctx);

/* enrich_event_metadata_simple: the same base fields without workflow
 * context, then every key of custom_metadata (a JSON object, or NULL): a
 * standard field's name overrides that field and must have its type, other
 * keys are added as extra metadata. ES_EINVAL (not an object, wrong type),
 * ES_EUTF8, ES_ENOMEM; on error the event is unchanged. */
ES_EXTERN int es_event_enrich_simple(es_event *event,
                                     const cJSON *custom_metadata);

/* Serializes the event as compact JSON in the Python model's field order:
 * metadata, event_type, event_name, data, then extra fields. *json is
 * NUL-terminated, allocated with the library's allocator: release it with
 * es_free(). *len (if not NULL) gets its length. max_bytes limits the result
 * (0: no limit): ES_E2BIG when it is exceeded. ES_EINVAL, ES_ENOMEM. */
ES_EXTERN int es_event_to_json(const es_event *event, size_t max_bytes,
                               char **json, size_t *len);

/* Parses an event from len bytes of JSON text (as a Dapr input binding
 * delivers it). "metadata" is optional and read with the same type rules as
 * es_event_set_metadata; unknown top-level keys become extra fields.
 * Errors: ES_EPARSE (not JSON, nested too deep), ES_EINVAL (not an object,
 * event_type/event_name missing, empty or not strings, data not an object,
 * duplicate keys, wrong metadata types), ES_EUTF8, ES_ENOMEM. When errbuf is
 * not NULL it receives a NUL-terminated message saying what is wrong. */
ES_EXTERN int es_event_parse(es_event **out, const char *json, size_t len,
                             char *errbuf, size_t errbuf_len);

/* ------------------------------------------------------------------------ */
/* Client                                                                   */

/* A client publishes events to one Dapr sidecar from one libuv loop (the
 * "loop thread": the thread that runs uv_run on it). Its publish functions
 * may be called from any thread; every other function from the loop thread
 * only, unless its comment says otherwise. Every callback runs on the loop
 * thread.
 *
 * Delivery is at least once: a request whose connection failed after it was
 * written may have been processed, and is retried like any other failure,
 * so the sidecar may see an event twice. */
typedef struct es_client es_client;

typedef enum {
  ES_LOG_DEBUG = 0,
  ES_LOG_INFO = 1,
  ES_LOG_WARN = 2,
  ES_LOG_ERROR = 3,
  ES_LOG_NONE = 4
} es_log_level;

/* What happens when an event would push the queue past its limits. */
typedef enum {
  ES_OVERFLOW_REJECT_NEW = 0, /* the publish call returns ES_EQUEUEFULL */
  ES_OVERFLOW_DROP_OLDEST = 1 /* the oldest event not yet sent completes with
                                 ES_EDROPPED; the new one is accepted */
} es_overflow_policy;

/* The outcome of one accepted event. Valid only during the callback. */
typedef struct es_publish_result {
  int status;             /* 0, or the ES_E / UV_E code that ended it */
  int http_status;        /* the last HTTP status, 0 when none */
  const char *error_code; /* the sidecar's "errorCode", or NULL */
  const char *message;    /* the sidecar's "message" (or text body); after
                             a transport failure ended the retries
                             (ES_EATTEMPTS, ES_ETIMEDOUT), the name of its
                             code, e.g. "ES_ERESPTIMEDOUT"; or NULL */
  unsigned attempts;      /* requests sent for it (0: never sent) */
  uint64_t latency_us;    /* from acceptance to this callback */
  const char *event_type; /* as published */
  const char *event_name;
} es_publish_result;

/* Completion of one accepted event: exactly once, on the loop thread, never
 * from inside the publish call. */
typedef void (*es_publish_cb)(es_client *client,
                              const es_publish_result *result, void *data);

/* A header: in the binding's metadata (auth headers) or on a request. */
typedef struct es_header {
  const char *name;
  const char *value;
} es_header;

/* Supplies the workflow context for es_publish_event (the C form of
 * Temporal's workflow.info()/activity.info()). Called on the publishing
 * thread during the publish call; returns non-zero and fills *ctx when the
 * caller runs inside a workflow or activity, 0 otherwise. The strings must
 * stay valid until the publish call returns. */
typedef int (*es_context_provider)(es_workflow_context *ctx, void *arg);

/* An asynchronous provider of authentication headers (a Bearer token that
 * expires, say). The client calls it on the loop thread when it has no valid
 * headers or they are about to expire; the provider answers, now or later,
 * on the loop thread, with es_client_auth_done(). Events wait (within their
 * deadline) while headers are missing. */
typedef void (*es_header_provider)(es_client *client, void *arg);

/* Answers the header provider. status 0 with n headers valid for
 * valid_for_ms milliseconds (0: until asked to refresh by a 401), or a
 * negative status (the provider is asked again after a backoff). Copies
 * everything. Loop thread. ES_EINVAL for a name or value with CR, LF or
 * other control characters, or when no request is outstanding. */
ES_EXTERN int es_client_auth_done(es_client *client, int status,
                                  const es_header *headers, size_t n,
                                  uint64_t valid_for_ms);

/* A request as it would be sent, for dry runs and tracing. Secrets (the API
 * token, every auth header value) are "<redacted>". Valid during the call. */
typedef struct es_request_info {
  const char *method;
  const char *path;
  const es_header *headers;
  size_t n_headers;
  const char *body;
  size_t body_len;
} es_request_info;
typedef void (*es_request_cb)(es_client *client, const es_request_info *req,
                              void *arg);

typedef void (*es_log_cb)(es_log_level level, const char *message, void *arg);

typedef struct es_stats {
  uint64_t accepted;      /* publish calls that returned 0 */
  uint64_t succeeded;     /* completed with status 0 */
  uint64_t failed;        /* completed with an error (dropped excluded) */
  uint64_t dropped;       /* completed with ES_EDROPPED */
  uint64_t rejected;      /* publish calls refused with ES_EQUEUEFULL */
  uint64_t retries;       /* requests sent again */
  uint64_t requests;      /* HTTP requests sent for events */
  uint64_t in_flight;     /* events in requests awaiting an answer */
  uint64_t queued_events; /* accepted, not completed (in flight included) */
  uint64_t queued_bytes;
  uint64_t open_connections;
  uint64_t latency_p50_us; /* accept-to-completion, over the last 65536 */
  uint64_t latency_p99_us;
} es_stats;
typedef void (*es_stats_cb)(es_client *client, const es_stats *stats,
                            void *arg);

typedef struct es_client_options {
  /* Where and what. NULL means: from the environment, else the default. */
  const char *endpoint;         /* $DAPR_HTTP_ENDPOINT, else
                                   http://127.0.0.1:$DAPR_HTTP_PORT (3500);
                                   also unix:/path */
  const char *api_token;        /* $DAPR_API_TOKEN; sent as dapr-api-token */
  const char *binding_name;     /* $EVENT_STORE_NAME, else "eventstore" */
  const char *application_name; /* $ATLAN_APPLICATION_NAME, else "default" */
  /* Authentication headers put in the binding's metadata, after
   * "content-type": static ones, then the provider's. */
  const es_header *headers;
  size_t n_headers;
  es_header_provider header_provider;
  void *header_provider_arg;
  es_context_provider context_provider;
  void *context_provider_arg;

  /* Target: the output binding (default, as the Python SDK), or pub/sub. */
  int target;              /* ES_TARGET_BINDING or ES_TARGET_PUBSUB */
  const char *pubsub_name; /* "pubsub" */
  const char *topic;       /* NULL: each event's event_type */
  /* Publish metadata, sent as metadata.KEY=VALUE query parameters
   * (rawPayload, ttlInSeconds, ...); percent-encoded. Pub/sub only. */
  const es_header *publish_metadata;
  size_t n_publish_metadata;
  int cloudevents;                /* wrap events as CloudEvents 1.0
                                     (application/cloudevents+json) */
  const char *cloudevents_source; /* "libeventstore/<application name>" */
  /* Bulk publish (pub/sub only): events for the same topic go together, up
   * to bulk_max_events and bulk_max_bytes, waiting at most linger_ms for a
   * batch to fill. Flush and close send partial batches at once. */
  int bulk;                 /* 0 */
  unsigned bulk_max_events; /* 100 */
  size_t bulk_max_bytes;    /* 1 MiB */
  uint64_t linger_ms;       /* 5 */

  /* Queue. */
  size_t max_queue_events;     /* 100000 */
  size_t max_queue_bytes;      /* 64 MiB */
  es_overflow_policy overflow; /* ES_OVERFLOW_REJECT_NEW */
  size_t max_event_bytes;      /* 1 MiB; larger events get ES_E2BIG */

  /* Transport. */
  unsigned max_connections;    /* 4 */
  unsigned pipeline_depth;     /* requests in flight per connection: 16 */
  uint64_t connect_timeout_ms; /* 5000 */
  uint64_t request_timeout_ms; /* to an answer's first byte, and from it to
                                  the answer's end: 10000 */

  /* Retries: connection errors, timeouts, 408, 429, 500, 502, 503, 504. */
  unsigned max_attempts;         /* 10; 0: until the deadline */
  uint64_t retry_backoff_ms;     /* 100: first backoff (full jitter) */
  uint64_t retry_backoff_max_ms; /* 10000 */
  uint64_t event_timeout_ms;     /* 300000: per-event deadline */

  /* Sidecar readiness and registration. */
  uint64_t ready_timeout_ms; /* 10000: wait for /v1.0/healthz/outbound
                                before the first send; 0: don't wait */
  int check_registration;    /* 1: fail events with ES_ENOTREGISTERED when
                                the binding is not in /v1.0/metadata */
  uint64_t registration_recheck_ms; /* 30000 */

  /* es_client_close waits this long for queued events before canceling
   * them (0: cancel at once). Default 5000. */
  uint64_t close_timeout_ms;

  /* Fairness, so that the client never holds the loop for long: at most
   * max_callbacks_per_tick events sent or completed by the dispatcher per
   * loop iteration (256), and once the client has worked max_tick_us
   * microseconds in an iteration (250; 0: no time bound), building,
   * writing and reading stop and go on in the next iteration (answers
   * already read are always finished). */
  unsigned max_callbacks_per_tick;
  uint64_t max_tick_us;

  /* Observability. */
  es_log_cb log_cb; /* NULL: warnings and errors to stderr */
  void *log_arg;
  es_log_level log_level; /* ES_LOG_WARN */
  es_stats_cb stats_cb;
  void *stats_arg;
  uint64_t stats_interval_ms; /* 0: no periodic stats */
  es_request_cb request_cb;   /* sees every request (redacted) */
  void *request_arg;
  int dry_run; /* send nothing: events succeed once request_cb has seen
                  their request (http_status 0, attempts 0) */
} es_client_options;

#define ES_TARGET_BINDING 0
#define ES_TARGET_PUBSUB 1

/* Fills *options with the defaults above (zeros for the rest). */
ES_EXTERN void es_client_options_init(es_client_options *options);

/* Creates a client on loop (a uv_loop_t *), reading the environment where
 * options leave things unset. Nothing is sent until an event is published.
 * options may be NULL (all defaults). Loop thread. Errors: ES_EINVAL (NULL
 * loop or client, a bad name or header), ES_EBADURL, ES_EUNSUPPORTED
 * (https://), ES_ENOMEM, UV_E* from libuv. */
ES_EXTERN int es_client_init(struct uv_loop_s *loop, es_client **client,
                             const es_client_options *options);

/* The endpoint and binding the client resolved (static strings owned by the
 * client). Any thread. */
ES_EXTERN const char *es_client_endpoint(const es_client *client);
ES_EXTERN const char *es_client_binding(const es_client *client);

ES_EXTERN void *es_client_get_data(const es_client *client);
ES_EXTERN void es_client_set_data(es_client *client, void *data);

/* publish_event: enriches a copy of event (application name, timestamp,
 * topic_name, and the workflow context from the context provider, if any),
 * serializes it and queues it. The event stays the caller's and may be
 * changed or freed on return. Any thread. cb may be NULL (fire-and-forget:
 * a failure is then logged with its reason and counted).
 * Returns 0 (cb will be called exactly once) or, without calling cb:
 * ES_EINVAL (NULL client or event), ES_E2BIG, ES_EQUEUEFULL (queue full and
 * policy ES_OVERFLOW_REJECT_NEW), ES_ECLOSED, ES_ENOMEM. */
ES_EXTERN int es_publish_event(es_client *client, const es_event *event,
                               es_publish_cb cb, void *data);

/* publish_event_simple: as es_publish_event, but enriched with
 * custom_metadata (a JSON object or NULL; see es_event_enrich_simple)
 * instead of a workflow context. Also ES_EINVAL / ES_EUTF8 for bad custom
 * metadata. */
ES_EXTERN int es_publish_event_simple(es_client *client, const es_event *event,
                                      const cJSON *custom_metadata,
                                      es_publish_cb cb, void *data);

/* The hot path: an event already serialized as JSON (len bytes, copied),
 * sent as is, without enrichment. event_type and event_name are used for the
 * topic and for logs. The JSON is checked for syntax, UTF-8 and nesting
 * (ES_EPARSE, ES_EUTF8), not for the event's shape. Same returns as
 * es_publish_event. Any thread. */
ES_EXTERN int es_publish_json(es_client *client, const char *event_type,
                              const char *event_name, const char *json,
                              size_t len, es_publish_cb cb, void *data);

/* Asks whether component `name` is registered with the sidecar (GET
 * /v1.0/metadata). cb gets 1 (registered), 0 (not) or a negative code (the
 * question could not be answered). Loop thread. 0 or ES_EINVAL,
 * ES_ECLOSED, ES_ENOMEM. */
typedef void (*es_registered_cb)(es_client *client, int registered, void *data);
ES_EXTERN int es_client_is_component_registered(es_client *client,
                                                const char *name,
                                                es_registered_cb cb,
                                                void *data);

/* Called when every event accepted before es_client_flush has completed
 * (status 0, remaining 0), or at the deadline (status ES_ETIMEDOUT,
 * remaining: how many of them were still pending), or ES_ECANCELED when the
 * client closes first. */
typedef void (*es_flush_cb)(es_client *client, int status, size_t remaining,
                            void *data);
/* Loop thread; safe from inside any callback. timeout_ms 0 means no
 * deadline. 0 (cb exactly once, later) or ES_EINVAL, ES_ECLOSED,
 * ES_ENOMEM. */
ES_EXTERN int es_client_flush(es_client *client, uint64_t timeout_ms,
                              es_flush_cb cb, void *data);

/* Called once the client has closed every libuv handle it had, just before
 * its memory is freed: client is valid during the call only. */
typedef void (*es_close_cb)(es_client *client);
/* Closes the client: new publishes get ES_ECLOSED at once; queued events get
 * up to options.close_timeout_ms to complete, then the rest complete with
 * ES_ECANCELED; then every handle is closed, cb runs (may be NULL) and the
 * memory is freed. After that the loop holds nothing of the client
 * (uv_loop_close can return 0). Loop thread; safe from inside any callback.
 * Calling it twice is harmless (the second cb is ignored). Other threads
 * must have stopped publishing before cb runs. */
ES_EXTERN void es_client_close(es_client *client, es_close_cb cb);

/* A snapshot of the counters. Loop thread (other threads read racy but
 * never torn 64-bit values on 64-bit platforms). */
ES_EXTERN void es_client_stats(es_client *client, es_stats *stats);

/* ------------------------------------------------------------------------ */
/* Background mode: for programs that do not run libuv                       */

/* How completions reach the caller in background mode. */
typedef enum {
  /* Callbacks run on the library's own thread: keep them short, and lock
   * what they share with the rest of the program. */
  ES_DELIVER_ON_LIBRARY_THREAD = 0,
  /* Completions wait in a queue until the caller runs them with
   * es_client_poll() on its own thread; es_client_fd() becomes readable
   * when some are waiting. */
  ES_DELIVER_BY_POLL = 1
} es_delivery;

/* Starts a client on a loop and a thread of the library's own: the same
 * client as es_client_init gives, for programs without a libuv loop. Publish
 * from any thread as usual. Use es_client_flush_sync and es_client_close_sync
 * (not es_client_flush/es_client_close) with it; the other client functions
 * that say "loop thread" must not be called. options may be NULL. Blocks
 * until the thread runs. Errors: as es_client_init, and UV_E* when the
 * thread, loop or descriptor cannot be created. */
ES_EXTERN int es_client_start_background(es_client **client,
                                         const es_client_options *options,
                                         es_delivery delivery);

/* ES_DELIVER_BY_POLL: runs up to max waiting completions (0: all) on the
 * calling thread, in completion order, and returns how many ran. Never
 * blocks. Any thread, one at a time. ES_EINVAL when not in this mode. */
ES_EXTERN int es_client_poll(es_client *client, unsigned max);

/* ES_DELIVER_BY_POLL: a descriptor (eventfd) that is readable while
 * completions are waiting, for the caller's own poll/epoll/select/libevent
 * loop. Owned by the client: do not read or close it. ES_EINVAL when not in
 * this mode. */
ES_EXTERN int es_client_fd(const es_client *client);

/* Background mode: waits until every event accepted before the call has
 * completed (0), or timeout_ms has passed (ES_ETIMEDOUT; 0 means no limit).
 * Completions delivered by poll need not have been polled. ES_EBUSY from a
 * completion callback or the library's thread (it would deadlock),
 * ES_EINVAL when not in background mode. */
ES_EXTERN int es_client_flush_sync(es_client *client, uint64_t timeout_ms);

/* Background mode: closes the client, waiting at most timeout_ms for queued
 * events (the rest complete with ES_ECANCELED), runs any completions still
 * waiting to be polled on the calling thread, joins the library's thread
 * and frees everything, descriptor included. Returns 0, or ES_ETIMEDOUT when
 * events had to be canceled. ES_EBUSY (nothing done) from a completion
 * callback or the library's thread. Other threads must have stopped
 * publishing. */
ES_EXTERN int es_client_close_sync(es_client *client, uint64_t timeout_ms);

#ifdef __cplusplus
}
#endif
#endif /* EVENTSTORE_H */
