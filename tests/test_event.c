/* The event model: the Python SDK's JSON shape and defaults, enrichment,
 * custom metadata, parsing, and every invalid input refused with its code. */
#include <stdlib.h>
#include <time.h>

#include "alloc.h"
#include "event.h"
#include "eventstore.h"
#include "json.h"
#include "test.h"

static char *to_json(const es_event *ev) {
  char *json = NULL;
  int rc = es_event_to_json(ev, 0, &json, NULL);
  return rc == 0 ? json : NULL;
}

static cJSON *parse(const char *text) {
  cJSON *j = cJSON_Parse(text);
  if (j == NULL)
    fprintf(stderr, "test bug: bad JSON %s\n", text);
  return j;
}

#define DEFAULT_MD_TAIL                                                        \
  "\"workflow_type\":null,\"workflow_id\":null,\"workflow_run_id\":null,"      \
  "\"workflow_state\":\"unknown\",\"activity_type\":null,"                     \
  "\"activity_id\":null,\"attempt\":null"

/* The guide's batch processor summary, enriched with its custom metadata. */
static void test_batch_summary_json(void) {
  es_event *ev = NULL;
  cJSON *data = parse("{\"batch_size\":50,\"event_types\":[\"a\",\"b\"]}");
  cJSON *custom = parse("{\"processor_type\":\"kafka_batch\","
                        "\"batch_id\":\"abc123\","
                        "\"created_timestamp\":1764860000}");
  char *json;

  ASSERT(es_event_new(&ev, "processor_events", "batch_processed", data) == 0);
  CHECK_EQ_INT(es_event_enrich_simple(ev, custom), 0);
  json = to_json(ev);
  CHECK_EQ_STR(json,
               "{\"metadata\":{\"application_name\":\"default\","
               "\"created_timestamp\":1764860000," DEFAULT_MD_TAIL
               ",\"topic_name\":\"processor_events\","
               "\"processor_type\":\"kafka_batch\","
               "\"batch_id\":\"abc123\"},"
               "\"event_type\":\"processor_events\","
               "\"event_name\":\"batch_processed\","
               "\"data\":{\"batch_size\":50,\"event_types\":[\"a\",\"b\"]}}");
  es_free(json);
  es_event_free(ev);
  cJSON_Delete(data);
  cJSON_Delete(custom);
}

/* The guide's binding handler result event. */
static void test_binding_result_json(void) {
  es_event *ev = NULL;
  cJSON *data = parse("{\"status\":\"ok\",\"items\":3,\"ratio\":0.25}");
  cJSON *custom = parse("{\"handler\":\"kafka_binding\"}");
  char *json;
  long long now = (long long)time(NULL);
  const cJSON *md;

  ASSERT(es_event_new(&ev, "processing_results", "event_processed", data) == 0);
  CHECK_EQ_INT(es_event_enrich_simple(ev, custom), 0);
  md = es_event_metadata(ev);
  CHECK(cJSON_GetObjectItem(md, "created_timestamp")->valuedouble >= now);
  CHECK(cJSON_GetObjectItem(md, "created_timestamp")->valuedouble <= now + 2);
  CHECK_EQ_INT(es_event_set_metadata_int(ev, "created_timestamp", 1), 0);
  json = to_json(ev);
  CHECK_EQ_STR(json,
               "{\"metadata\":{\"application_name\":\"default\","
               "\"created_timestamp\":1," DEFAULT_MD_TAIL
               ",\"topic_name\":\"processing_results\","
               "\"handler\":\"kafka_binding\"},"
               "\"event_type\":\"processing_results\","
               "\"event_name\":\"event_processed\","
               "\"data\":{\"status\":\"ok\",\"items\":3,\"ratio\":0.25}}");
  es_free(json);
  es_event_free(ev);
  cJSON_Delete(data);
  cJSON_Delete(custom);
}

/* The guide's metrics event: numbers of every shape survive. */
static void test_metrics_json(void) {
  es_event *ev = NULL;
  cJSON *data = parse("{\"load1\":0.1,\"mem_free\":123456789012,"
                      "\"neg\":-5,\"big\":1e300,\"host\":\"h\\u00e9\\n\"}");
  cJSON *custom = parse("{\"source\":\"metrics_collector\","
                        "\"hostname\":\"box\",\"created_timestamp\":7}");
  char *json;

  ASSERT(es_event_new(&ev, "system_metrics", "metrics_collected", data) == 0);
  CHECK_EQ_INT(es_event_enrich_simple(ev, custom), 0);
  json = to_json(ev);
  CHECK_EQ_STR(json, "{\"metadata\":{\"application_name\":\"default\","
                     "\"created_timestamp\":7," DEFAULT_MD_TAIL
                     ",\"topic_name\":\"system_metrics\","
                     "\"source\":\"metrics_collector\",\"hostname\":\"box\"},"
                     "\"event_type\":\"system_metrics\","
                     "\"event_name\":\"metrics_collected\","
                     "\"data\":{\"load1\":0.1,\"mem_free\":123456789012,"
                     "\"neg\":-5,\"big\":1e+300,\"host\":\"h\xc3\xa9\\n\"}}");
  es_free(json);
  es_event_free(ev);
  cJSON_Delete(data);
  cJSON_Delete(custom);
}

/* Before enrichment: the Python model's defaults. */
static void test_defaults(void) {
  es_event *ev = NULL;
  char *json;

  ASSERT(es_event_new(&ev, "t", "n", NULL) == 0);
  json = to_json(ev);
  CHECK_EQ_STR(json, "{\"metadata\":{\"application_name\":\"default\","
                     "\"created_timestamp\":0," DEFAULT_MD_TAIL
                     ",\"topic_name\":null},\"event_type\":\"t\","
                     "\"event_name\":\"n\",\"data\":{}}");
  es_free(json);
  es_event_free(ev);
}

static void test_application_name_from_env(void) {
  es_event *ev = NULL;
  const cJSON *md;

  setenv("ATLAN_APPLICATION_NAME", "my-app", 1);
  ASSERT(es_event_new(&ev, "t", "n", NULL) == 0);
  md = es_event_metadata(ev);
  CHECK_EQ_STR(cJSON_GetObjectItem(md, "application_name")->valuestring,
               "my-app");
  setenv("ATLAN_APPLICATION_NAME", "other", 1);
  CHECK_EQ_INT(es_event_enrich(ev, NULL), 0);
  md = es_event_metadata(ev);
  CHECK_EQ_STR(cJSON_GetObjectItem(md, "application_name")->valuestring,
               "other");
  unsetenv("ATLAN_APPLICATION_NAME");
  es_event_free(ev);
}

/* enrich_event_metadata: workflow context, and "running" inside an
 * activity. */
static void test_enrich_context(void) {
  es_event *ev = NULL;
  es_workflow_context wf = {"wf_type", "wf-1", "run-1", 0, NULL, NULL, 0};
  es_workflow_context act = {"wf_type",  "wf-1",  "run-1", 1,
                             "act_type", "act-1", 3};
  const cJSON *md;

  ASSERT(es_event_new(&ev, "data.processed", "batch_completed", NULL) == 0);
  CHECK_EQ_INT(es_event_enrich(ev, &wf), 0);
  md = es_event_metadata(ev);
  CHECK_EQ_STR(cJSON_GetObjectItem(md, "workflow_id")->valuestring, "wf-1");
  CHECK_EQ_STR(cJSON_GetObjectItem(md, "workflow_run_id")->valuestring,
               "run-1");
  CHECK_EQ_STR(cJSON_GetObjectItem(md, "workflow_state")->valuestring,
               "unknown");
  CHECK(cJSON_IsNull(cJSON_GetObjectItem(md, "attempt")));
  CHECK_EQ_STR(cJSON_GetObjectItem(md, "topic_name")->valuestring,
               "data.processed");

  CHECK_EQ_INT(es_event_enrich(ev, &act), 0);
  md = es_event_metadata(ev);
  CHECK_EQ_STR(cJSON_GetObjectItem(md, "workflow_state")->valuestring,
               "running");
  CHECK_EQ_STR(cJSON_GetObjectItem(md, "activity_type")->valuestring,
               "act_type");
  CHECK_EQ_STR(cJSON_GetObjectItem(md, "activity_id")->valuestring, "act-1");
  CHECK_EQ_INT(cJSON_GetObjectItem(md, "attempt")->valuedouble, 3);
  es_event_free(ev);
}

/* Custom metadata: standard names override with their types, others are
 * added; a wrong type fails and changes nothing. */
static void test_custom_override_and_types(void) {
  es_event *ev = NULL;
  cJSON *ok = parse("{\"workflow_id\":\"custom-workflow-123\","
                    "\"workflow_type\":\"custom_processor\","
                    "\"workflow_state\":\"running\",\"attempt\":2,"
                    "\"processor_id\":\"kafka-1\",\"nested\":{\"a\":[1]}}");
  const char *bad[] = {
      "{\"workflow_id\":5}",
      "{\"attempt\":\"2\"}",
      "{\"attempt\":1.5}",
      "{\"created_timestamp\":null}",
      "{\"created_timestamp\":\"x\"}",
      "{\"application_name\":null}",
      "{\"topic_name\":[]}",
      "{\"\":1}",
      "[1,2]",
      "{\"a\\u0001\":1}",
  };
  char *before, *after;
  size_t i;

  ASSERT(es_event_new(&ev, "t", "n", NULL) == 0);
  CHECK_EQ_INT(es_event_enrich_simple(ev, ok), 0);
  before = to_json(ev);
  CHECK(strstr(before, "\"workflow_type\":\"custom_processor\","
                       "\"workflow_id\":\"custom-workflow-123\"") != NULL);
  CHECK(strstr(before, "\"workflow_state\":\"running\"") != NULL);
  CHECK(strstr(before,
               "\"attempt\":2,\"topic_name\":\"t\","
               "\"processor_id\":\"kafka-1\",\"nested\":{\"a\":[1]}}") != NULL);
  for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    cJSON *c = parse(bad[i]);
    CHECK_EQ_INT(es_event_enrich_simple(ev, c), ES_EINVAL);
    after = to_json(ev);
    CHECK_EQ_STR(after, before);
    es_free(after);
    cJSON_Delete(c);
  }
  /* null is allowed where the field is optional */
  {
    cJSON *c = parse("{\"attempt\":null,\"workflow_id\":null}");
    CHECK_EQ_INT(es_event_enrich_simple(ev, c), 0);
    cJSON_Delete(c);
  }
  es_free(before);
  es_event_free(ev);
  cJSON_Delete(ok);
}

/* The client's path writes an enriched copy without touching the event; it
 * must give the same bytes as enrich-then-serialize. */
static void test_write_enriched_matches_enrich(void) {
  es_event *ev = NULL;
  cJSON *custom = parse("{\"batch_id\":\"b\",\"workflow_id\":\"w\","
                        "\"extra\":1}");
  es_workflow_context act = {"T", NULL, "R", 1, "AT", NULL, 9};
  es__enrichment enr = {"app", 123, NULL, custom};
  es__buf b;
  char *json, *direct;
  size_t len;

  ASSERT(es_event_new(&ev, "ty", "na", NULL) == 0);
  CHECK_EQ_INT(es_event_set_metadata_string(ev, "extra", "old"), 0);
  CHECK_EQ_INT(es_event_set_metadata_string(ev, "keep", "k"), 0);
  es__buf_init(&b, 0);
  es__event_write(&b, ev, &enr);
  direct = es__buf_steal(&b, &len);
  ASSERT(direct != NULL);
  CHECK_EQ_INT(es_event_set_metadata_string(ev, "application_name", "app"), 0);
  CHECK_EQ_INT(es_event_enrich_simple(ev, custom), 0);
  CHECK_EQ_INT(es_event_set_metadata_int(ev, "created_timestamp", 123), 0);
  CHECK_EQ_INT(es_event_set_metadata_string(ev, "application_name", "app"), 0);
  json = to_json(ev);
  CHECK_EQ_STR(direct, json);
  CHECK_EQ_INT(len, strlen(json));
  es_free(json);
  es__free(direct);

  /* with a workflow context */
  enr.custom = NULL;
  enr.ctx = &act;
  es__buf_init(&b, 0);
  es__event_write(&b, ev, &enr);
  direct = es__buf_steal(&b, NULL);
  CHECK_EQ_INT(es_event_enrich(ev, &act), 0);
  CHECK_EQ_INT(es_event_set_metadata_int(ev, "created_timestamp", 123), 0);
  CHECK_EQ_INT(es_event_set_metadata_string(ev, "application_name", "app"), 0);
  json = to_json(ev);
  CHECK_EQ_STR(direct, json);
  CHECK(strstr(json, "\"workflow_id\":null") != NULL);
  es_free(json);
  es__free(direct);
  es_event_free(ev);
  cJSON_Delete(custom);
}

static void test_round_trip(void) {
  es_event *ev = NULL, *back = NULL, *copy = NULL;
  cJSON *data = parse("{\"s\":\"quote\\\" backslash\\\\ tab\\t \\u0001\","
                      "\"arr\":[true,false,null,-0.5,{\"x\":{}}],\"e\":[]}");
  cJSON *extra = parse("{\"v\":1}");
  char *json, *json2, *json3, err[128];
  size_t len;

  ASSERT(es_event_new(&ev, "type.with.dots", "name \xe2\x9c\x93", data) == 0);
  CHECK_EQ_INT(es_event_enrich(ev, NULL), 0);
  CHECK_EQ_INT(es_event_set_metadata_string(ev, "processor_id", "p"), 0);
  CHECK_EQ_INT(es_event_set_field(ev, "schema", extra), 0);
  CHECK_EQ_INT(es_event_set_field(ev, "data", extra), ES_EINVAL);
  CHECK_EQ_INT(es_event_to_json(ev, 0, &json, &len), 0);
  CHECK_EQ_INT(es_event_parse(&back, json, len, err, sizeof(err)), 0);
  ASSERT(back != NULL);
  json2 = to_json(back);
  CHECK_EQ_STR(json2, json);
  CHECK_EQ_STR(es_event_type(back), "type.with.dots");
  CHECK_EQ_STR(es_event_name(back), "name \xe2\x9c\x93");
  CHECK(cJSON_Compare(es_event_data(back), data, 1));
  CHECK_EQ_INT(es_event_clone(back, &copy), 0);
  json3 = to_json(copy);
  CHECK_EQ_STR(json3, json);
  es_free(json);
  es_free(json2);
  es_free(json3);
  es_event_free(ev);
  es_event_free(back);
  es_event_free(copy);
  cJSON_Delete(data);
  cJSON_Delete(extra);
}

static void test_parse_minimal_and_metadata(void) {
  const char *in = "{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":{},"
                   "\"metadata\":{\"workflow_id\":\"w\",\"custom\":[1]}}";
  es_event *ev = NULL;
  char *json;

  ASSERT(es_event_parse(&ev, in, strlen(in), NULL, 0) == 0);
  json = to_json(ev);
  CHECK(strstr(json, "\"workflow_id\":\"w\"") != NULL);
  CHECK(strstr(json, "\"topic_name\":null,\"custom\":[1]}") != NULL);
  es_free(json);
  es_event_free(ev);
}

/* Every invalid input gets its code and a message, and no event. */
static void test_parse_invalid(void) {
  static const struct {
    const char *json;
    int rc;
    const char *msg;
  } cases[] = {
      {"", ES_EPARSE, "invalid JSON"},
      {"{", ES_EPARSE, "invalid JSON"},
      {"{} x", ES_EPARSE, "trailing"},
      {"[]", ES_EINVAL, "object"},
      {"{\"event_name\":\"n\",\"data\":{}}", ES_EINVAL,
       "event_type is missing"},
      {"{\"event_type\":1,\"event_name\":\"n\",\"data\":{}}", ES_EINVAL,
       "event_type must"},
      {"{\"event_type\":\"\",\"event_name\":\"n\",\"data\":{}}", ES_EINVAL,
       "event_type must"},
      {"{\"event_type\":\"a\\nb\",\"event_name\":\"n\",\"data\":{}}", ES_EINVAL,
       "event_type must"},
      {"{\"event_type\":\"t\",\"data\":{}}", ES_EINVAL,
       "event_name is missing"},
      {"{\"event_type\":\"t\",\"event_name\":null,\"data\":{}}", ES_EINVAL,
       "event_name must"},
      {"{\"event_type\":\"t\",\"event_name\":\"n\"}", ES_EINVAL,
       "data is missing"},
      {"{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":[]}", ES_EINVAL,
       "data must be"},
      {"{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":\"{}\"}", ES_EINVAL,
       "data must be"},
      {"{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":{},"
       "\"metadata\":5}",
       ES_EINVAL, "metadata must be"},
      {"{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":{},"
       "\"metadata\":{\"attempt\":\"x\"}}",
       ES_EINVAL, "integer"},
      {"{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":{\"a\":1,\"a\":2}}",
       ES_EINVAL, "duplicate"},
      {"{\"event_type\":\"t\",\"event_type\":\"u\",\"event_name\":\"n\","
       "\"data\":{}}",
       ES_EINVAL, "duplicate"},
      {"{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":{\"s\":\"\xff\"}}",
       ES_EUTF8, "UTF-8"},
      {"{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":{\"s\":"
       "\"\xed\xa0\x80\"}}",
       ES_EUTF8, "UTF-8"},
      {"{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":{\"s\":"
       "\"\xc0\xaf\"}}",
       ES_EUTF8, "UTF-8"},
  };
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    es_event *ev = NULL;
    char err[128];
    int rc = es_event_parse(&ev, cases[i].json, strlen(cases[i].json), err,
                            sizeof(err));
    if (rc != cases[i].rc || strstr(err, cases[i].msg) == NULL)
      fprintf(stderr, "case %zu: %s -> %s (%s)\n", i, cases[i].json,
              es_err_name(rc), err);
    CHECK_EQ_INT(rc, cases[i].rc);
    CHECK(strstr(err, cases[i].msg) != NULL);
    CHECK(ev == NULL);
  }
}

static void test_parse_too_deep(void) {
  char buf[4096];
  size_t n = 0;
  int i;
  es_event *ev = NULL;
  char err[128];

  n += (size_t)sprintf(buf, "{\"event_type\":\"t\",\"event_name\":\"n\","
                            "\"data\":{\"x\":");
  for (i = 0; i < ES_JSON_MAX_DEPTH + 5; i++)
    buf[n++] = '[';
  for (i = 0; i < ES_JSON_MAX_DEPTH + 5; i++)
    buf[n++] = ']';
  buf[n++] = '}';
  buf[n++] = '}';
  CHECK_EQ_INT(es_event_parse(&ev, buf, n, err, sizeof(err)), ES_EPARSE);
  CHECK(strstr(err, "nested") != NULL);
  CHECK(ev == NULL);
  /* a NUL inside the text is not silently truncated */
  CHECK_EQ_INT(es_event_parse(&ev, "{}\0{}", 5, err, sizeof(err)), ES_EPARSE);
}

static void test_new_invalid(void) {
  es_event *ev = NULL;
  cJSON *arr = parse("[1]");
  cJSON *dup = cJSON_CreateObject();

  cJSON_AddNumberToObject(dup, "k", 1);
  cJSON_AddNumberToObject(dup, "k", 2);
  CHECK_EQ_INT(es_event_new(NULL, "t", "n", NULL), ES_EINVAL);
  CHECK_EQ_INT(es_event_new(&ev, NULL, "n", NULL), ES_EINVAL);
  CHECK_EQ_INT(es_event_new(&ev, "t", NULL, NULL), ES_EINVAL);
  CHECK_EQ_INT(es_event_new(&ev, "", "n", NULL), ES_EINVAL);
  CHECK_EQ_INT(es_event_new(&ev, "t", "", NULL), ES_EINVAL);
  CHECK_EQ_INT(es_event_new(&ev, "t\r\n", "n", NULL), ES_EINVAL);
  CHECK_EQ_INT(es_event_new(&ev, "t", "n\x7f", NULL), ES_EINVAL);
  CHECK_EQ_INT(es_event_new(&ev, "t\xff", "n", NULL), ES_EUTF8);
  CHECK_EQ_INT(es_event_new(&ev, "t", "\xe2\x82", NULL), ES_EUTF8);
  CHECK_EQ_INT(es_event_new(&ev, "t", "n", arr), ES_EINVAL);
  CHECK_EQ_INT(es_event_new(&ev, "t", "n", dup), ES_EINVAL);
  CHECK(ev == NULL);

  ASSERT(es_event_new(&ev, "t", "n", NULL) == 0);
  CHECK_EQ_INT(es_event_set_data(ev, arr), ES_EINVAL);
  CHECK_EQ_INT(es_event_set_data(ev, NULL), ES_EINVAL);
  CHECK_EQ_INT(es_event_set_data_json(ev, "[1]", 3), ES_EINVAL);
  CHECK_EQ_INT(es_event_set_data_json(ev, "{x", 2), ES_EPARSE);
  CHECK_EQ_INT(es_event_set_data_json(ev, "{\"a\":1}", 7), 0);
  CHECK_EQ_INT(cJSON_GetObjectItem(es_event_data(ev), "a")->valuedouble, 1);
  CHECK_EQ_INT(es_event_set_metadata_string(ev, "workflow_id", "\xff"),
               ES_EUTF8);
  CHECK_EQ_INT(es_event_set_metadata_string(ev, "created_timestamp", "x"),
               ES_EINVAL);
  CHECK_EQ_INT(es_event_set_metadata(ev, "", NULL), ES_EINVAL);
  CHECK_EQ_INT(es_event_set_metadata(ev, "x", NULL), 0);
  CHECK_EQ_INT(es_event_enrich(NULL, NULL), ES_EINVAL);
  CHECK_EQ_INT(es_event_enrich_simple(ev, arr), ES_EINVAL);
  CHECK_EQ_INT(es_event_to_json(ev, 0, NULL, NULL), ES_EINVAL);
  es_event_free(ev);
  cJSON_Delete(arr);
  cJSON_Delete(dup);
}

static void test_size_limit(void) {
  es_event *ev = NULL;
  char *json = NULL, big[2000];
  size_t len;

  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  ASSERT(es_event_new(&ev, "t", "n", NULL) == 0);
  CHECK_EQ_INT(es_event_set_metadata_string(ev, "blob", big), 0);
  CHECK_EQ_INT(es_event_to_json(ev, 1000, &json, &len), ES_E2BIG);
  CHECK(json == NULL);
  CHECK_EQ_INT(es_event_to_json(ev, 4000, &json, &len), 0);
  CHECK(len > 2000 && len < 4000);
  es_free(json);
  es_event_free(ev);
}

/* The string writer and the validating scanner skip plain bytes eight at a
 * time: every byte value at every position of strings 1..20 long (inside
 * the 8-byte blocks and in the tails) must be handled as a byte loop would. */
static void test_string_bytes_at_every_position(void) {
  int c, bad_write = 0, bad_scan = 0;
  size_t pos, len;

  for (c = 1; c < 256; c++) {
    for (len = 1; len <= 20; len++) {
      for (pos = 0; pos < len; pos++) {
        char s[32], doc[64];
        int need = c < 0x20 || c == '"' || c == '\\', want;
        es__buf b;
        cJSON *j;

        memset(s, 'a', sizeof(s));
        s[pos] = (char)c;
        es__buf_init(&b, 0);
        es__json_write_string(&b, s, len);
        j = cJSON_ParseWithLength(b.data, b.len);
        if (j == NULL || !cJSON_IsString(j) || strlen(j->valuestring) != len ||
            memcmp(j->valuestring, s, len) != 0 || (b.len == len + 2) == need)
          bad_write++;
        cJSON_Delete(j);
        es__buf_free(&b);

        /* {"k":"<s>"}: controls are refused, a lone byte >= 0x80 is bad
         * UTF-8; '"' and '\\' change the syntax, so they are left out. */
        if (c == '"' || c == '\\')
          continue;
        memcpy(doc, "{\"k\":\"", 6);
        memcpy(doc + 6, s, len);
        memcpy(doc + 6 + len, "\"}", 2);
        want = c < 0x20 ? ES_EPARSE : c >= 0x80 ? ES_EUTF8 : 0;
        if (es__json_validate(doc, len + 8, 1) != want)
          bad_scan++;
      }
    }
  }
  CHECK_EQ_INT(bad_write, 0);
  CHECK_EQ_INT(bad_scan, 0);
}

/* \u escapes: any BMP code but a surrogate; a high surrogate only with a
 * low one right after, as cJSON reads them. The validator that
 * es_publish_json uses must never accept what the parser refuses (found by
 * fuzz_event_parse: a lone \udfff). cJSON 1.7 alone reads "\u12g4" as
 * U+0000 and takes 01 as a number; the parser refuses both too. */
static void test_unicode_escapes(void) {
  static const struct {
    const char *json;
    int valid;
    int parsed; /* es__json_parse's verdict */
  } cases[] = {
      {"{\"a\":\"\\u0041\\u00e9\\u20ac\\uE000\\uffff\"}", 1, 1},
      {"{\"a\":\"\\ud83d\\ude00\"}", 1, 1},
      {"{\"\\uD83D\\uDE00\":1}", 1, 1},
      {"{\"a\":\"\\udfff\"}", 0, 0},
      {"{\"a\":\"\\udc00x\"}", 0, 0},
      {"{\"a\":\"\\ud83d\"}", 0, 0},
      {"{\"a\":\"\\ud83dx\"}", 0, 0},
      {"{\"a\":\"\\ud83d\\u0041\"}", 0, 0},
      {"{\"a\":\"\\ud83d\\ud83d\"}", 0, 0},
      {"{\"a\":\"\\u12g4\"}", 0, 0},
      {"{\"a\":\"\\u12\"}", 0, 0},
      {"{\"a\":01}", 0, 0},
  };
  size_t i;

  for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    const char *j = cases[i].json;
    cJSON *root = NULL;
    int v = es__json_validate(j, strlen(j), 1);
    int p = es__json_parse(j, strlen(j), &root, NULL);
    cJSON_Delete(root);
    CHECK_EQ_INT(v == 0, cases[i].valid);
    CHECK_EQ_INT(p == 0, cases[i].parsed);
    if (v == 0)
      CHECK_EQ_INT(p, 0); /* never laxer than the parser */
  }
}

int main(void) {
  unsetenv("ATLAN_APPLICATION_NAME");
  RUN(test_batch_summary_json);
  RUN(test_binding_result_json);
  RUN(test_metrics_json);
  RUN(test_defaults);
  RUN(test_application_name_from_env);
  RUN(test_enrich_context);
  RUN(test_custom_override_and_types);
  RUN(test_write_enriched_matches_enrich);
  RUN(test_round_trip);
  RUN(test_parse_minimal_and_metadata);
  RUN(test_parse_invalid);
  RUN(test_parse_too_deep);
  RUN(test_new_invalid);
  RUN(test_size_limit);
  RUN(test_string_bytes_at_every_position);
  RUN(test_unicode_escapes);
  return TEST_DONE();
}
