/* JSON text out of cJSON trees and checks on JSON coming in. The writer is
 * ours rather than cJSON_Print* so that events serialize straight into the
 * buffer that gets queued, with one allocation. */
#ifndef ES_JSON_H
#define ES_JSON_H

#include <stddef.h>

#include <cjson/cJSON.h>

#include "buf.h"

/* Appends s (len bytes of valid UTF-8) as a quoted, escaped JSON string. */
void es__json_write_string(es__buf *b, const char *s, size_t len);
/* Appends item as compact JSON. */
void es__json_write(es__buf *b, const cJSON *item);

/* 1 when the len bytes at s are valid UTF-8 (no overlongs, no surrogates). */
int es__utf8_valid(const char *s, size_t len);
/* Checks a name (event type, event name, component, key): non-empty, valid
 * UTF-8, no control characters. Returns 0, ES_EINVAL or ES_EUTF8. */
int es__check_name(const char *s);
/* The same, and *len (if not NULL) gets strlen(s) when s is valid. */
int es__check_name_len(const char *s, size_t *len);
/* Checks a whole tree: strings and keys valid UTF-8, no duplicate keys in an
 * object, nesting at most ES_JSON_MAX_DEPTH. Returns 0, ES_EINVAL, ES_EUTF8
 * or ES_EPARSE (too deep); *what (if not NULL) gets a static description. */
int es__json_check(const cJSON *item, const char **what);
/* 1 when item is a number holding an integer that a double represents
 * exactly (|v| <= 2^53); *out gets it. */
int es__json_get_int(const cJSON *item, long long *out);
/* Parses len bytes of JSON text (no trailing garbage) and checks it as
 * es__json_check does. Returns 0 with *out set, or ES_EPARSE, ES_EINVAL,
 * ES_EUTF8, ES_ENOMEM. */
int es__json_parse(const char *text, size_t len, cJSON **out,
                   const char **what);

/* Checks JSON text without building a tree: strict syntax, UTF-8 strings,
 * nesting at most ES_JSON_MAX_DEPTH (duplicate keys are not looked for).
 * With want_object, the value must be an object (ES_EINVAL otherwise).
 * Returns 0, ES_EPARSE, ES_EUTF8 or ES_EINVAL. */
int es__json_validate(const char *text, size_t len, int want_object);

#endif
