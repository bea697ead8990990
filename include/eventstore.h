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
  XX(ETIMEDOUT, -30010, "event deadline expired before delivery")             \
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

#ifdef __cplusplus
}
#endif
#endif /* EVENTSTORE_H */
