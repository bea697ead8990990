/* The event model, compatible with the Python SDK's Event/EventMetadata. */
#include "event.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alloc.h"
#include "json.h"

struct es_event {
  char *type;
  char *name;
  /* The ES__NSTD standard fields first, always present and in this order,
   * then extra metadata: lets the writer walk it in lockstep with the table
   * below instead of looking keys up. */
  cJSON *metadata;
  cJSON *data;     /* an object */
  char *data_json; /* data written once, when set: publishing copies it */
  size_t data_len;
  cJSON *extra; /* extra top-level fields, or NULL */
};

enum { ES__STR, ES__STR_OR_NULL, ES__INT, ES__INT_OR_NULL };

static const struct {
  const char *key;
  int kind;
} es__std[] = {
    {"application_name", ES__STR},        {"created_timestamp", ES__INT},
    {"workflow_type", ES__STR_OR_NULL},   {"workflow_id", ES__STR_OR_NULL},
    {"workflow_run_id", ES__STR_OR_NULL}, {"workflow_state", ES__STR_OR_NULL},
    {"activity_type", ES__STR_OR_NULL},   {"activity_id", ES__STR_OR_NULL},
    {"attempt", ES__INT_OR_NULL},         {"topic_name", ES__STR_OR_NULL},
};
#define ES__NSTD (sizeof(es__std) / sizeof(es__std[0]))
enum {
  ES__F_APP,
  ES__F_CREATED,
  ES__F_WF_TYPE,
  ES__F_WF_ID,
  ES__F_WF_RUN_ID,
  ES__F_WF_STATE,
  ES__F_ACT_TYPE,
  ES__F_ACT_ID,
  ES__F_ATTEMPT,
  ES__F_TOPIC
};

/* ,"<key>": for each standard field, in order. */
#define ES__KEY(k)                                                             \
  { ",\"" k "\":", sizeof(",\"" k "\":") - 1 }
static const struct {
  const char *text;
  size_t len;
} es__std_keys[] = {
    ES__KEY("application_name"), ES__KEY("created_timestamp"),
    ES__KEY("workflow_type"),    ES__KEY("workflow_id"),
    ES__KEY("workflow_run_id"),  ES__KEY("workflow_state"),
    ES__KEY("activity_type"),    ES__KEY("activity_id"),
    ES__KEY("attempt"),          ES__KEY("topic_name"),
};
#undef ES__KEY

static const char *const es__reserved_top[] = {"metadata", "event_type",
                                               "event_name", "data"};

/* On every custom key of every event: the first byte rules out most. */
static int es__std_index(const char *key) {
  size_t i;
  for (i = 0; i < ES__NSTD; i++)
    if (es__std[i].key[0] == key[0] && strcmp(es__std[i].key, key) == 0)
      return (int)i;
  return -1;
}

const char *es__default_application_name(void) {
  const char *name = getenv("ATLAN_APPLICATION_NAME");
  return name != NULL && name[0] != '\0' ? name : "default";
}

/* Does value fit the standard field idx? */
static int es__std_check(int idx, const cJSON *value, const char **what) {
  long long i;
  int kind = es__std[idx].kind;

  if (cJSON_IsNull(value)) {
    if (kind == ES__STR_OR_NULL || kind == ES__INT_OR_NULL)
      return 0;
    *what = "this metadata field cannot be null";
    return ES_EINVAL;
  }
  if (kind == ES__STR || kind == ES__STR_OR_NULL) {
    if (!cJSON_IsString(value)) {
      *what = "this metadata field must be a string";
      return ES_EINVAL;
    }
    if (!es__utf8_valid(value->valuestring, strlen(value->valuestring))) {
      *what = "metadata string is not valid UTF-8";
      return ES_EUTF8;
    }
    return 0;
  }
  if (!es__json_get_int(value, &i)) {
    *what = "this metadata field must be an integer";
    return ES_EINVAL;
  }
  return 0;
}

/* Checks one metadata key and value (standard type rules, or any valid JSON
 * for extras). */
static int es__metadata_check_one(const char *key, const cJSON *value,
                                  const char **what) {
  int idx, rc;

  rc = es__check_name(key);
  if (rc != 0) {
    *what = "metadata key is empty, has control characters or bad UTF-8";
    return rc;
  }
  idx = es__std_index(key);
  if (idx >= 0)
    return es__std_check(idx, value, what);
  return es__json_check(value, what);
}

int es__custom_metadata_check(const cJSON *custom, const char **what) {
  const char *dummy;
  const cJSON *item;
  int rc;

  if (what == NULL)
    what = &dummy;
  if (custom == NULL)
    return 0;
  if (!cJSON_IsObject(custom)) {
    *what = "custom metadata must be a JSON object";
    return ES_EINVAL;
  }
  for (item = custom->child; item != NULL; item = item->next) {
    if (item->string == NULL) {
      *what = "custom metadata member without a key";
      return ES_EINVAL;
    }
    rc = es__metadata_check_one(item->string, item, what);
    if (rc != 0)
      return rc;
  }
  return 0;
}

/* Sets key in an object, in place when it exists (so the standard fields
 * keep their positions), else at the end. Takes ownership of value, also on
 * failure. cJSON's own Replace/Add copy the key without telling when that
 * allocation fails, and free value->string before copying key, which breaks
 * when key is value->string; hence this. */
static int es__object_put(cJSON *obj, const char *key, cJSON *value) {
  size_t n = strlen(key) + 1;
  char *k = cJSON_malloc(n);
  cJSON *old;

  if (k == NULL) {
    cJSON_Delete(value);
    return ES_ENOMEM;
  }
  memcpy(k, key, n);
  if (value->string != NULL && !(value->type & cJSON_StringIsConst))
    cJSON_free(value->string);
  value->string = k;
  value->type &= ~cJSON_StringIsConst;
  old = cJSON_GetObjectItemCaseSensitive(obj, k);
  if (old != NULL)
    cJSON_ReplaceItemViaPointer(obj, old, value);
  else
    cJSON_AddItemToArray(obj, value);
  return 0;
}

static cJSON *es__metadata_new(void) {
  cJSON *md = cJSON_CreateObject();
  size_t i;

  if (md == NULL)
    return NULL;
  for (i = 0; i < ES__NSTD; i++) {
    cJSON *v;
    if (i == ES__F_APP)
      v = cJSON_CreateString(es__default_application_name());
    else if (i == ES__F_CREATED)
      v = cJSON_CreateNumber(0);
    else if (i == ES__F_WF_STATE)
      v = cJSON_CreateString("unknown");
    else
      v = cJSON_CreateNull();
    if (v == NULL) {
      cJSON_Delete(md);
      return NULL;
    }
    if (es__object_put(md, es__std[i].key, v) != 0) {
      cJSON_Delete(md);
      return NULL;
    }
  }
  return md;
}

/* Data: checked, copied and written once. Takes ownership of data. */
static int es__event_take_data(es_event *ev, cJSON *data) {
  es__buf b;
  char *text;
  size_t len;

  es__buf_init(&b, 0);
  es__json_write(&b, data);
  text = es__buf_steal(&b, &len);
  if (text == NULL) {
    cJSON_Delete(data);
    return ES_ENOMEM;
  }
  cJSON_Delete(ev->data);
  es__free(ev->data_json);
  ev->data = data;
  ev->data_json = text;
  ev->data_len = len;
  return 0;
}

static int es__check_data(const cJSON *data, const char **what) {
  if (!cJSON_IsObject(data)) {
    *what = "data must be a JSON object";
    return ES_EINVAL;
  }
  return es__json_check(data, what);
}

static int es__dup_data(const cJSON *data, cJSON **out) {
  const char *what;
  int rc;

  if (data == NULL) {
    *out = cJSON_CreateObject();
  } else {
    rc = es__check_data(data, &what);
    if (rc != 0)
      return rc;
    *out = cJSON_Duplicate(data, 1);
  }
  return *out == NULL ? ES_ENOMEM : 0;
}

int es_event_new(es_event **out, const char *event_type, const char *event_name,
                 const cJSON *data) {
  es_event *ev;
  cJSON *copy;
  int rc;

  if (out == NULL)
    return ES_EINVAL;
  if ((rc = es__check_name(event_type)) != 0 ||
      (rc = es__check_name(event_name)) != 0)
    return rc;
  rc = es__dup_data(data, &copy);
  if (rc != 0)
    return rc;
  ev = es__calloc(1, sizeof(*ev));
  if (ev == NULL) {
    cJSON_Delete(copy);
    return ES_ENOMEM;
  }
  ev->type = es__strdup(event_type);
  ev->name = es__strdup(event_name);
  ev->metadata = es__metadata_new();
  if (ev->type == NULL || ev->name == NULL || ev->metadata == NULL) {
    cJSON_Delete(copy);
    es_event_free(ev);
    return ES_ENOMEM;
  }
  rc = es__event_take_data(ev, copy);
  if (rc != 0) {
    es_event_free(ev);
    return rc;
  }
  *out = ev;
  return 0;
}

void es_event_free(es_event *ev) {
  if (ev == NULL)
    return;
  es__free(ev->type);
  es__free(ev->name);
  cJSON_Delete(ev->metadata);
  cJSON_Delete(ev->data);
  es__free(ev->data_json);
  cJSON_Delete(ev->extra);
  es__free(ev);
}

int es_event_clone(const es_event *ev, es_event **out) {
  es_event *copy;

  if (ev == NULL || out == NULL)
    return ES_EINVAL;
  copy = es__calloc(1, sizeof(*copy));
  if (copy == NULL)
    return ES_ENOMEM;
  copy->type = es__strdup(ev->type);
  copy->name = es__strdup(ev->name);
  copy->metadata = cJSON_Duplicate(ev->metadata, 1);
  copy->data = cJSON_Duplicate(ev->data, 1);
  copy->data_json = es__strndup(ev->data_json, ev->data_len);
  copy->data_len = ev->data_len;
  copy->extra = ev->extra ? cJSON_Duplicate(ev->extra, 1) : NULL;
  if (copy->type == NULL || copy->name == NULL || copy->metadata == NULL ||
      copy->data == NULL || copy->data_json == NULL ||
      (ev->extra != NULL && copy->extra == NULL)) {
    es_event_free(copy);
    return ES_ENOMEM;
  }
  *out = copy;
  return 0;
}

int es_event_set_data(es_event *ev, const cJSON *data) {
  cJSON *copy;
  int rc;

  if (ev == NULL || data == NULL)
    return ES_EINVAL;
  rc = es__dup_data(data, &copy);
  return rc != 0 ? rc : es__event_take_data(ev, copy);
}

int es_event_set_data_json(es_event *ev, const char *json, size_t len) {
  const char *what;
  cJSON *data;
  int rc;

  if (ev == NULL || json == NULL)
    return ES_EINVAL;
  rc = es__json_parse(json, len, &data, &what);
  if (rc != 0)
    return rc;
  if (!cJSON_IsObject(data)) {
    cJSON_Delete(data);
    return ES_EINVAL;
  }
  return es__event_take_data(ev, data);
}

int es_event_set_metadata(es_event *ev, const char *key, const cJSON *value) {
  const char *what;
  cJSON *copy;
  int rc;

  if (ev == NULL || key == NULL)
    return ES_EINVAL;
  copy = value ? cJSON_Duplicate(value, 1) : cJSON_CreateNull();
  if (copy == NULL)
    return ES_ENOMEM;
  rc = es__metadata_check_one(key, copy, &what);
  if (rc != 0) {
    cJSON_Delete(copy);
    return rc;
  }
  return es__object_put(ev->metadata, key, copy);
}

int es_event_set_metadata_string(es_event *ev, const char *key,
                                 const char *value) {
  cJSON *v = value ? cJSON_CreateString(value) : cJSON_CreateNull();
  int rc;

  if (v == NULL)
    return ES_ENOMEM;
  rc = es_event_set_metadata(ev, key, v);
  cJSON_Delete(v);
  return rc;
}

int es_event_set_metadata_int(es_event *ev, const char *key, int64_t value) {
  cJSON *v = cJSON_CreateNumber((double)value);
  int rc;

  if (v == NULL)
    return ES_ENOMEM;
  rc = es_event_set_metadata(ev, key, v);
  cJSON_Delete(v);
  return rc;
}

static int es__is_reserved_top(const char *key) {
  size_t i;
  for (i = 0; i < sizeof(es__reserved_top) / sizeof(es__reserved_top[0]); i++)
    if (strcmp(key, es__reserved_top[i]) == 0)
      return 1;
  return 0;
}

int es_event_set_field(es_event *ev, const char *key, const cJSON *value) {
  const char *what;
  cJSON *copy;
  int rc;

  if (ev == NULL || key == NULL)
    return ES_EINVAL;
  if ((rc = es__check_name(key)) != 0)
    return rc;
  if (es__is_reserved_top(key))
    return ES_EINVAL;
  if (value != NULL && (rc = es__json_check(value, &what)) != 0)
    return rc;
  if (ev->extra == NULL && (ev->extra = cJSON_CreateObject()) == NULL)
    return ES_ENOMEM;
  copy = value ? cJSON_Duplicate(value, 1) : cJSON_CreateNull();
  if (copy == NULL)
    return ES_ENOMEM;
  return es__object_put(ev->extra, key, copy);
}

const char *es_event_type(const es_event *ev) {
  return ev ? ev->type : NULL;
}

const char *es_event_name(const es_event *ev) {
  return ev ? ev->name : NULL;
}

const cJSON *es_event_data(const es_event *ev) {
  return ev ? ev->data : NULL;
}

const cJSON *es_event_metadata(const es_event *ev) {
  return ev ? ev->metadata : NULL;
}

/* ---- enrichment ------------------------------------------------------- */

/* The enriched value of a standard field, without building a cJSON for it:
 * the writer appends it, es__event_enrich makes an item of it. */
typedef struct es__std_val {
  enum { ES__V_KEEP, ES__V_NULL, ES__V_STR, ES__V_INT, ES__V_JSON } kind;
  const char *s;     /* ES__V_STR */
  long long n;       /* ES__V_INT */
  const cJSON *json; /* ES__V_JSON: a custom override */
} es__std_val;

/* The enriched value of standard field idx (ES__V_KEEP: enrichment leaves
 * the event's own value). */
static es__std_val es__enriched_std(const es__enrichment *enr, size_t idx,
                                    const es_event *ev,
                                    const cJSON *const *custom_std) {
  const es_workflow_context *ctx = enr->ctx;
  es__std_val v = {ES__V_KEEP, NULL, 0, NULL};

  if (custom_std != NULL && custom_std[idx] != NULL) {
    v.kind = ES__V_JSON;
    v.json = custom_std[idx];
    return v;
  }
  switch (idx) {
  case ES__F_APP:
  case ES__F_TOPIC:
    if (enr->application_name != NULL) {
      v.kind = ES__V_STR;
      v.s = idx == ES__F_APP ? enr->application_name : ev->type;
    }
    break;
  case ES__F_CREATED:
    if (enr->application_name != NULL) {
      v.kind = ES__V_INT;
      v.n = enr->created_timestamp;
    }
    break;
  case ES__F_WF_TYPE:
  case ES__F_WF_ID:
  case ES__F_WF_RUN_ID:
    if (ctx != NULL) {
      v.s = idx == ES__F_WF_TYPE ? ctx->workflow_type
            : idx == ES__F_WF_ID ? ctx->workflow_id
                                 : ctx->workflow_run_id;
      v.kind = v.s != NULL ? ES__V_STR : ES__V_NULL;
    }
    break;
  case ES__F_WF_STATE:
    if (ctx != NULL && ctx->has_activity) {
      v.kind = ES__V_STR;
      v.s = "running";
    }
    break;
  case ES__F_ACT_TYPE:
  case ES__F_ACT_ID:
    if (ctx != NULL && ctx->has_activity) {
      v.s = idx == ES__F_ACT_TYPE ? ctx->activity_type : ctx->activity_id;
      v.kind = v.s != NULL ? ES__V_STR : ES__V_NULL;
    }
    break;
  case ES__F_ATTEMPT:
    if (ctx != NULL && ctx->has_activity) {
      v.kind = ES__V_INT;
      v.n = ctx->attempt;
    }
    break;
  default:
    break;
  }
  return v;
}

/* Appends v, or the event's own item when v keeps it. */
static void es__std_val_write(es__buf *b, const es__std_val *v,
                              const cJSON *item) {
  switch (v->kind) {
  case ES__V_NULL:
    es__buf_append(b, "null", 4);
    break;
  case ES__V_STR:
    es__json_write_string(b, v->s, strlen(v->s));
    break;
  case ES__V_INT:
    es__buf_append_i64(b, v->n);
    break;
  case ES__V_JSON:
    es__json_write(b, v->json);
    break;
  default:
    es__json_write(b, item);
    break;
  }
}

/* v as a new item (NULL when out of memory); not for ES__V_KEEP. */
static cJSON *es__std_val_json(const es__std_val *v) {
  switch (v->kind) {
  case ES__V_NULL:
    return cJSON_CreateNull();
  case ES__V_STR:
    return cJSON_CreateString(v->s);
  case ES__V_INT:
    return cJSON_CreateNumber((double)v->n);
  default:
    return cJSON_Duplicate(v->json, 1);
  }
}

/* Which standard fields custom metadata overrides, found in one pass. */
static void es__custom_std(const cJSON *custom, const cJSON **out) {
  const cJSON *v;
  memset(out, 0, ES__NSTD * sizeof(*out));
  for (v = custom ? custom->child : NULL; v != NULL; v = v->next) {
    int idx = es__std_index(v->string);
    if (idx >= 0)
      out[idx] = v;
  }
}

void es__event_write(es__buf *b, const es_event *ev,
                     const es__enrichment *enr) {
  const cJSON *item, *v, *custom_std[ES__NSTD];
  size_t i;
  int has_extras;

  if (enr != NULL)
    es__custom_std(enr->custom, custom_std);
  es__buf_append_str(b, "{\"metadata\":{");
  item = ev->metadata->child;
  for (i = 0; i < ES__NSTD; i++, item = item->next) {
    /* ,"key": precomputed: the keys are fixed */
    es__buf_append(b, es__std_keys[i].text + (i == 0),
                   es__std_keys[i].len - (i == 0));
    if (enr != NULL) {
      es__std_val sv = es__enriched_std(enr, i, ev, custom_std);
      es__std_val_write(b, &sv, item);
    } else {
      es__json_write(b, item);
    }
  }
  has_extras = item != NULL;
  /* Extra metadata: the event's own (custom values win), then custom keys
   * the event does not have. */
  for (; item != NULL; item = item->next) {
    v = enr && enr->custom
            ? cJSON_GetObjectItemCaseSensitive(enr->custom, item->string)
            : NULL; /* extras of the event itself: rare */
    es__buf_append_char(b, ',');
    es__json_write_string(b, item->string, strlen(item->string));
    es__buf_append_char(b, ':');
    es__json_write(b, v ? v : item);
  }
  if (enr && enr->custom) {
    for (v = enr->custom->child; v != NULL; v = v->next) {
      int is_std = 0;
      for (i = 0; i < ES__NSTD; i++)
        is_std |= custom_std[i] == v;
      if (is_std || (has_extras && cJSON_GetObjectItemCaseSensitive(
                                       ev->metadata, v->string) != NULL))
        continue;
      es__buf_append_char(b, ',');
      es__json_write_string(b, v->string, strlen(v->string));
      es__buf_append_char(b, ':');
      es__json_write(b, v);
    }
  }
  es__buf_append_str(b, "},\"event_type\":");
  es__json_write_string(b, ev->type, strlen(ev->type));
  es__buf_append_str(b, ",\"event_name\":");
  es__json_write_string(b, ev->name, strlen(ev->name));
  es__buf_append_str(b, ",\"data\":");
  es__buf_append(b, ev->data_json, ev->data_len);
  if (ev->extra != NULL) {
    for (item = ev->extra->child; item != NULL; item = item->next) {
      es__buf_append_char(b, ',');
      es__json_write_string(b, item->string, strlen(item->string));
      es__buf_append_char(b, ':');
      es__json_write(b, item);
    }
  }
  es__buf_append_char(b, '}');
}

/* Applies enr to a copy of the metadata and swaps it in, so that a failure
 * leaves the event as it was. */
static int es__event_enrich(es_event *ev, const es__enrichment *enr) {
  cJSON *md;
  const cJSON *v, *custom_std[ES__NSTD];
  size_t i;

  es__custom_std(enr->custom, custom_std);
  md = cJSON_Duplicate(ev->metadata, 1);
  if (md == NULL)
    return ES_ENOMEM;
  for (i = 0; i < ES__NSTD; i++) {
    cJSON *copy;
    es__std_val sv = es__enriched_std(enr, i, ev, custom_std);
    if (sv.kind == ES__V_KEEP)
      continue;
    copy = es__std_val_json(&sv);
    if (copy == NULL) {
      cJSON_Delete(md);
      return ES_ENOMEM;
    }
    if (es__object_put(md, es__std[i].key, copy) != 0) {
      cJSON_Delete(md);
      return ES_ENOMEM;
    }
  }
  if (enr->custom != NULL) {
    for (v = enr->custom->child; v != NULL; v = v->next) {
      cJSON *copy;
      if (es__std_index(v->string) >= 0)
        continue;
      copy = cJSON_Duplicate(v, 1);
      if (copy == NULL) {
        cJSON_Delete(md);
        return ES_ENOMEM;
      }
      if (es__object_put(md, v->string, copy) != 0) {
        cJSON_Delete(md);
        return ES_ENOMEM;
      }
    }
  }
  cJSON_Delete(ev->metadata);
  ev->metadata = md;
  return 0;
}

int es_event_enrich(es_event *ev, const es_workflow_context *ctx) {
  es__enrichment enr;

  if (ev == NULL)
    return ES_EINVAL;
  if (ctx != NULL) {
    const char *fields[] = {ctx->workflow_type, ctx->workflow_id,
                            ctx->workflow_run_id, ctx->activity_type,
                            ctx->activity_id};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
      if (fields[i] != NULL && !es__utf8_valid(fields[i], strlen(fields[i])))
        return ES_EUTF8;
  }
  enr.application_name = es__default_application_name();
  enr.created_timestamp = (long long)time(NULL);
  enr.ctx = ctx;
  enr.custom = NULL;
  return es__event_enrich(ev, &enr);
}

int es_event_enrich_simple(es_event *ev, const cJSON *custom) {
  es__enrichment enr;
  int rc;

  if (ev == NULL)
    return ES_EINVAL;
  rc = es__custom_metadata_check(custom, NULL);
  if (rc != 0)
    return rc;
  enr.application_name = es__default_application_name();
  enr.created_timestamp = (long long)time(NULL);
  enr.ctx = NULL;
  enr.custom = custom;
  return es__event_enrich(ev, &enr);
}

int es_event_to_json(const es_event *ev, size_t max_bytes, char **json,
                     size_t *len) {
  es__buf b;
  char *text;

  if (ev == NULL || json == NULL)
    return ES_EINVAL;
  es__buf_init(&b, max_bytes);
  es__buf_reserve(&b, ev->data_len + 512);
  es__event_write(&b, ev, NULL);
  if (es__buf_error(&b)) {
    int rc = es__buf_error(&b);
    es__buf_free(&b);
    return rc;
  }
  text = es__buf_steal(&b, len);
  if (text == NULL)
    return ES_ENOMEM;
  *json = text;
  return 0;
}

/* ---- parsing ---------------------------------------------------------- */

/* What is wrong with event_type or event_name in incoming JSON, or NULL. */
static const char *es__name_field_problem(const cJSON *item,
                                          const char *field) {
  if (item == NULL)
    return strcmp(field, "event_type") == 0 ? "event_type is missing"
                                            : "event_name is missing";
  if (!cJSON_IsString(item) || es__check_name(item->valuestring) != 0)
    return strcmp(field, "event_type") == 0
               ? "event_type must be a non-empty string without control "
                 "characters"
               : "event_name must be a non-empty string without control "
                 "characters";
  return NULL;
}

static int es__parse_fail(char *errbuf, size_t errbuf_len, int rc,
                          const char *what) {
  if (errbuf != NULL && errbuf_len > 0)
    snprintf(errbuf, errbuf_len, "%s", what);
  return rc;
}

int es_event_parse(es_event **out, const char *json, size_t len, char *errbuf,
                   size_t errbuf_len) {
  const char *what = "invalid event";
  cJSON *root, *item, *next, *type, *name, *data, *md;
  es_event *ev = NULL;
  int rc;

  if (errbuf != NULL && errbuf_len > 0)
    errbuf[0] = '\0';
  if (out == NULL || json == NULL)
    return es__parse_fail(errbuf, errbuf_len, ES_EINVAL, "NULL argument");
  rc = es__json_parse(json, len, &root, &what);
  if (rc != 0)
    return es__parse_fail(errbuf, errbuf_len, rc, what);
  if (!cJSON_IsObject(root)) {
    rc = ES_EINVAL, what = "an event must be a JSON object";
    goto fail;
  }
  type = cJSON_GetObjectItemCaseSensitive(root, "event_type");
  name = cJSON_GetObjectItemCaseSensitive(root, "event_name");
  data = cJSON_GetObjectItemCaseSensitive(root, "data");
  md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
  rc = ES_EINVAL;
  if ((what = es__name_field_problem(type, "event_type")) != NULL ||
      (what = es__name_field_problem(name, "event_name")) != NULL)
    goto fail;
  if (data == NULL) {
    what = "data is missing";
    goto fail;
  }
  if (!cJSON_IsObject(data)) {
    what = "data must be a JSON object";
    goto fail;
  }
  if (md != NULL && !cJSON_IsNull(md) && !cJSON_IsObject(md)) {
    what = "metadata must be a JSON object";
    goto fail;
  }
  if (cJSON_IsObject(md) && (rc = es__custom_metadata_check(md, &what)) != 0)
    goto fail;

  rc = es_event_new(&ev, type->valuestring, name->valuestring, NULL);
  if (rc != 0) {
    what = "out of memory";
    goto fail;
  }
  rc = ES_ENOMEM, what = "out of memory";
  /* Move the parsed pieces into the event instead of copying them. */
  cJSON_DetachItemViaPointer(root, data);
  rc = es__event_take_data(ev, data);
  if (rc != 0)
    goto fail;
  rc = ES_ENOMEM;
  if (cJSON_IsObject(md)) {
    for (item = md->child; item != NULL; item = next) {
      next = item->next;
      cJSON_DetachItemViaPointer(md, item);
      if (es__object_put(ev->metadata, item->string, item) != 0)
        goto fail;
    }
  }
  for (item = root->child; item != NULL; item = next) {
    next = item->next;
    if (es__is_reserved_top(item->string))
      continue;
    if (ev->extra == NULL && (ev->extra = cJSON_CreateObject()) == NULL)
      goto fail;
    cJSON_DetachItemViaPointer(root, item);
    cJSON_AddItemToArray(ev->extra, item);
  }
  cJSON_Delete(root);
  *out = ev;
  return 0;

fail:
  es_event_free(ev);
  cJSON_Delete(root);
  return es__parse_fail(errbuf, errbuf_len, rc, what);
}
