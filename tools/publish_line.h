/* es-publish's input: one event object per line,
 *   {"event_type": "...", "event_name": "...", "data": {...},
 *    "metadata": {...}?}
 * where "metadata" is custom metadata (as for publish_event_simple). Kept
 * apart from main() so the fuzzer can reach it. */
#ifndef ES_PUBLISH_LINE_H
#define ES_PUBLISH_LINE_H

#include <stddef.h>

#include "eventstore.h"

/* Parses one line (len bytes, no newline). On success returns 0 with *ev
 * (free with es_event_free) and *custom (the line's metadata merged over
 * base_custom, which may be NULL; free with cJSON_Delete; NULL when there
 * is none). On failure returns a negative code and writes a message to
 * err. Blank lines give ES_EINVAL with the message "empty line". */
int es_publish_parse_line(const char *line, size_t len,
                          const cJSON *base_custom, es_event **ev,
                          cJSON **custom, char *err, size_t errlen);

/* Parses -m KEY=VALUE into obj: VALUE as JSON when it is valid JSON, else
 * as a string. Returns 0 or ES_EINVAL (no '=' or empty key). */
int es_publish_add_metadata_arg(cJSON *obj, const char *arg);

#endif
