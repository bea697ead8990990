/* The Dapr HTTP protocol: request heads and bodies for each target, and
 * answers turned into outcomes (success, retry, final failure). Knows
 * nothing of queues or connections. */
#ifndef ES_DAPR_H
#define ES_DAPR_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "eventstore.h"
#include "http.h"

/* An output binding request body is {"data":<event>,"operation":"create",
 * "metadata":{...}}: events are queued with this prefix already in front, and
 * the shared tail (operation and metadata) is added at send time. */
#define ES__DAPR_BINDING_PREFIX "{\"data\":"
#define ES__DAPR_BINDING_PREFIX_LEN (sizeof(ES__DAPR_BINDING_PREFIX) - 1)

/* Appends name percent-encoded as one path segment. ES_EINVAL for an empty
 * name, "." or "..", or control characters; ES_EUTF8 for bad UTF-8. */
int es__dapr_append_segment(es__buf *b, const char *name);
/* Checks a header name (an HTTP token) and value (no control characters). */
int es__dapr_check_header(const char *name, const char *value);

/* The constant part of every event request's head after the path, up to
 * and including "Content-Length: ": protocol, Host, Content-Type, and the
 * API token. */
void es__dapr_head_rest(es__buf *b, const char *host, const char *ctype,
                        const char *token);
/* The binding body's tail: ,"operation":"create","metadata":{...}} with
 * content-type and the auth headers (static then provided). */
void es__dapr_binding_tail(es__buf *b, const es_header *a, size_t na,
                           const es_header *p, size_t np);
/* A body-less request's head (GET /v1.0/metadata, healthz). */
void es__dapr_get_head(es__buf *b, const char *path, const char *host,
                       const char *token);

typedef struct es__dapr_outcome {
  int code;        /* 0 success, else the error */
  int retryable;   /* worth another attempt */
  int not_sent;    /* surely not processed: no attempt is counted */
  int http_status; /* 0: no answer */
  int64_t retry_after_ms;
  char *error_code; /* from the answer's JSON (owned), or NULL */
  char *message;
} es__dapr_outcome;

/* Turns what the HTTP client reported into an outcome. */
void es__dapr_classify(int err, int written, const es__http_response *res,
                       es__dapr_outcome *out);
void es__dapr_outcome_free(es__dapr_outcome *out);

/* Appends "?metadata.K=V&..." (percent-encoded), nothing when n is 0.
 * ES_EINVAL for an empty key or control characters. */
int es__dapr_append_query(es__buf *b, const es_header *md, size_t n);

/* A CloudEvents 1.0 envelope around an event: begin writes everything up
 * to "data":, end closes it. */
void es__dapr_cloudevent_begin(es__buf *b, const char *id, const char *source,
                               const char *type, long long unix_time);
void es__dapr_cloudevent_end(es__buf *b);

/* Reads a bulk answer's "failedEntries": calls each(entryId, error, arg)
 * per entry and returns how many, or -1 when the body has no such list. */
int es__dapr_failed_entries(const char *body, size_t len,
                            void (*each)(const char *id, const char *error,
                                         void *arg),
                            void *arg);

/* Looks for component `name` in a /v1.0/metadata answer: 1 found, 0 not,
 * ES_EPARSE when the body is not the expected JSON. */
int es__dapr_has_component(const char *body, size_t len, const char *name);

#endif
