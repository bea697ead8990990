/* The event model: internal view shared with the client, which serializes
 * enriched events straight into its queue without touching the caller's
 * event. */
#ifndef ES_EVENT_H
#define ES_EVENT_H

#include "buf.h"
#include "eventstore.h"

/* What enrichment adds while writing, applied in this order: base fields,
 * workflow context, custom metadata (which wins). */
typedef struct es__enrichment {
  const char *application_name; /* NULL: leave the base fields alone */
  long long created_timestamp;
  const es_workflow_context *ctx; /* NULL: none */
  const cJSON *custom;            /* NULL or an object, already checked */
} es__enrichment;

/* Checks custom metadata for es__event_write: an object whose standard keys
 * have their field's type. Returns 0, ES_EINVAL or ES_EUTF8; *what (if not
 * NULL) says what is wrong. */
int es__custom_metadata_check(const cJSON *custom, const char **what);
/* Appends the event, enriched by enr (NULL: as it is), as JSON. */
void es__event_write(es__buf *b, const es_event *ev, const es__enrichment *enr);
/* The application name an enrichment uses when none is configured:
 * $ATLAN_APPLICATION_NAME, else "default". */
const char *es__default_application_name(void);

#endif
