/* The bad-input table: each hostile or broken input, from the caller or from
 * the sidecar, gets its specific code, and nothing else is lost: after each
 * case a good event is published on the same client and must be delivered,
 * and callbacks equal accepted events throughout. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "client_util.h"
#include "peer.h"
#include "test.h"

static int cases_run;

/* ---- the caller's side ----------------------------------------------------
 */

typedef struct env {
  uv_loop_t loop;
  insc s;
  es_client *c;
  int good; /* index of the next good event */
} env;

/* A good event after each bad one: delivered, so nothing was lost. */
static void good_one(env *e) {
  int i = e->good++;
  CHECK_EQ_INT(publish_i(e->c, i, NULL), 0);
  run_until_n(&e->loop, &T.total, T.accepted, 5000);
  CHECK_EQ_INT(T.calls[i], 1);
  CHECK_EQ_INT(T.status[i], 0);
}

#define CASE(what, expr, want)                                                 \
  do {                                                                         \
    int rc_ = (expr);                                                          \
    cases_run++;                                                               \
    if (rc_ != (want))                                                         \
      fprintf(stderr, "case '%s': got %s, want %s\n", what, es_err_name(rc_),  \
              es_err_name(want));                                              \
    CHECK_EQ_INT(rc_, want);                                                   \
    good_one(&e);                                                              \
  } while (0)

static void test_caller_side(void) {
  env e;
  es_sidecar_options so;
  es_client_options o;
  es_event *ev = NULL, *big = NULL;
  cJSON *arr = cJSON_Parse("[1]"), *wrong = cJSON_Parse("{\"attempt\":\"x\"}");
  cJSON *dup = cJSON_CreateObject();
  char deep[512], bigdata[3000];
  size_t k, n = 0;

  cJSON_AddNumberToObject(dup, "k", 1);
  cJSON_AddNumberToObject(dup, "k", 2);
  memset(&e, 0, sizeof(e));
  tally_reset();
  uv_loop_init(&e.loop);
  es_sidecar_options_init(&so);
  ASSERT(insc_start(&e.loop, &e.s, &so) == 0);
  base_options(&o, e.s.url);
  o.max_event_bytes = 2048;
  ASSERT(es_client_init(&e.loop, &e.c, &o) == 0);
  ASSERT(es_event_new(&ev, "t", "n", NULL) == 0);
  e.good = 1000;
  n += (size_t)sprintf(deep, "{\"a\":");
  for (k = 0; k < ES_JSON_MAX_DEPTH + 1; k++)
    deep[n++] = '[';
  for (k = 0; k < ES_JSON_MAX_DEPTH + 1; k++)
    deep[n++] = ']';
  deep[n++] = '}';
  deep[n] = '\0';
  memset(bigdata, 'x', sizeof(bigdata) - 1);
  bigdata[sizeof(bigdata) - 1] = '\0';
  ASSERT(es_event_new(&big, "t", "n", NULL) == 0);
  es_event_set_metadata_string(big, "blob", bigdata);

  CASE("NULL client", es_publish_event(NULL, ev, on_done, NULL), ES_EINVAL);
  CASE("NULL event", es_publish_event(e.c, NULL, on_done, NULL), ES_EINVAL);
  CASE("NULL JSON", es_publish_json(e.c, "t", "n", NULL, 0, on_done, NULL),
       ES_EINVAL);
  CASE("empty event type", es_publish_json(e.c, "", "n", "{}", 2, NULL, NULL),
       ES_EINVAL);
  CASE("empty event name", es_publish_json(e.c, "t", "", "{}", 2, NULL, NULL),
       ES_EINVAL);
  CASE("control character in type",
       es_publish_json(e.c, "a\x01", "n", "{}", 2, NULL, NULL), ES_EINVAL);
  CASE("CR/LF in name",
       es_publish_json(e.c, "t", "n\r\nX: y", "{}", 2, NULL, NULL), ES_EINVAL);
  CASE("invalid UTF-8 in type",
       es_publish_json(e.c, "t\xc3", "n", "{}", 2, NULL, NULL), ES_EUTF8);
  CASE("invalid JSON",
       es_publish_json(e.c, "t", "n", "{\"a\":}", 6, NULL, NULL), ES_EPARSE);
  CASE("JSON nested deeper than the limit",
       es_publish_json(e.c, "t", "n", deep, strlen(deep), NULL, NULL),
       ES_EPARSE);
  CASE("JSON not an object",
       es_publish_json(e.c, "t", "n", "[]", 2, NULL, NULL), ES_EINVAL);
  CASE("invalid UTF-8 in a JSON string",
       es_publish_json(e.c, "t", "n", "{\"a\":\"\xed\xa0\x80\"}", 11, NULL,
                       NULL),
       ES_EUTF8);
  CASE("trailing garbage after JSON",
       es_publish_json(e.c, "t", "n", "{} {}", 5, NULL, NULL), ES_EPARSE);
  CASE("event over the size limit", es_publish_event(e.c, big, on_done, NULL),
       ES_E2BIG);
  CASE("custom metadata of the wrong type",
       es_publish_event_simple(e.c, ev, wrong, on_done, NULL), ES_EINVAL);
  CASE("custom metadata not an object",
       es_publish_event_simple(e.c, ev, arr, on_done, NULL), ES_EINVAL);
  {
    es_event *x = NULL;
    static const char dup_json[] =
        "{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":{},"
        "\"data\":{}}";
    static const char str_data[] =
        "{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":\"{}\"}";
    CASE("data with duplicate keys", es_event_new(&x, "t", "n", dup),
         ES_EINVAL);
    CASE("data not an object", es_event_new(&x, "t", "n", arr), ES_EINVAL);
    CASE("incoming event with duplicate keys",
         es_event_parse(&x, dup_json, strlen(dup_json), NULL, 0), ES_EINVAL);
    CASE("incoming data not an object",
         es_event_parse(&x, str_data, strlen(str_data), NULL, 0), ES_EINVAL);
    CHECK(x == NULL);
  }
  {
    es_client *x = NULL;
    es_client_options bad;
    es_header crlf[1] = {{"Authorization", "Bearer a\r\nX-Evil: 1"}};
    es_header emptykey[1] = {{"", "v"}};
    base_options(&bad, e.s.url);
    bad.headers = crlf;
    bad.n_headers = 1;
    CASE("CR/LF in an auth header value", es_client_init(&e.loop, &x, &bad),
         ES_EINVAL);
    base_options(&bad, e.s.url);
    bad.api_token = "tok\nX: y";
    CASE("CR/LF in the API token", es_client_init(&e.loop, &x, &bad),
         ES_EINVAL);
    base_options(&bad, e.s.url);
    bad.binding_name = "..";
    CASE("'..' as binding name", es_client_init(&e.loop, &x, &bad), ES_EINVAL);
    base_options(&bad, e.s.url);
    bad.target = ES_TARGET_PUBSUB;
    bad.topic = ".";
    CASE("'.' as topic", es_client_init(&e.loop, &x, &bad), ES_EINVAL);
    base_options(&bad, e.s.url);
    bad.target = ES_TARGET_PUBSUB;
    bad.publish_metadata = emptykey;
    bad.n_publish_metadata = 1;
    CASE("empty publish metadata key", es_client_init(&e.loop, &x, &bad),
         ES_EINVAL);
    base_options(&bad, "https://127.0.0.1:3500");
    CASE("https endpoint", es_client_init(&e.loop, &x, &bad), ES_EUNSUPPORTED);
    base_options(&bad, "http://127.0.0.1:3500\r\nHost: evil");
    CASE("CR/LF in the endpoint", es_client_init(&e.loop, &x, &bad),
         ES_EBADURL);
    CHECK(x == NULL);
  }
  /* names with / ? # space go through, percent-encoded (binding): */
  {
    es_client *x = NULL;
    es_client_options ok;
    base_options(&ok, e.s.url);
    ok.binding_name = "a/b?c#d e";
    CASE("binding name with / ? # space (encoded, accepted)",
         es_client_init(&e.loop, &x, &ok), 0);
    es_client_close(x, NULL);
  }
  run_until_n(&e.loop, &T.total, T.accepted, 2000);
  CHECK_EQ_INT(T.total, T.accepted);
  CHECK(exactly_once(0));
  close_client(&e.loop, e.c);
  insc_stop(&e.loop, &e.s);
  CHECK_EQ_INT(close_loop(&e.loop), 0);
  insc_free(&e.s);
  es_event_free(ev);
  es_event_free(big);
  cJSON_Delete(arr);
  cJSON_Delete(wrong);
  cJSON_Delete(dup);
}

/* ---- the sidecar's side ----------------------------------------------------
 */

/* The "sidecar" is a scripted peer; one attempt, so the code surfaces. */
static int sidecar_case(const char *what, peer *p, int want,
                        uint64_t timeout_ms) {
  uv_loop_t loop;
  es_client *c;
  es_client_options o;
  char url[64];
  int rc;

  tally_reset();
  uv_loop_init(&loop);
  if (peer_start(p, &loop) != 0)
    return -1;
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", p->port);
  base_options(&o, url);
  o.ready_timeout_ms = 0;
  o.check_registration = 0;
  o.max_attempts = 1;
  o.request_timeout_ms = timeout_ms;
  if (es_client_init(&loop, &c, &o) != 0)
    return -1;
  CHECK_EQ_INT(publish_i(c, 0, NULL), 0);
  run_until_n(&loop, &T.total, 1, 10000);
  rc = T.status[0];
  cases_run++;
  /* a transport failure ends the single attempt: ES_EATTEMPTS, and the
   * failure's own code named in the message */
  if (rc == ES_EATTEMPTS && want != ES_EATTEMPTS &&
      strcmp(T.last_message, es_err_name(want)) == 0)
    rc = want;
  if (rc != want)
    fprintf(stderr, "case '%s': got %s, want %s\n", what, es_err_name(rc),
            es_err_name(want));
  CHECK_EQ_INT(rc, want);
  CHECK(exactly_once(1));
  close_client(&loop, c);
  peer_stop(p);
  CHECK_EQ_INT(close_loop(&loop), 0);
  return rc;
}

static void test_sidecar_side(void) {
  static char huge[40000], endless[2000000];
  size_t n;
  peer p;

  memset(&p, 0, sizeof(p));
  n = (size_t)sprintf(huge, "HTTP/1.1 200 OK\r\nX-Huge: ");
  memset(huge + n, 'h', 30000);
  p.script = huge;
  p.script_len = strlen(huge);
  sidecar_case("a huge header", &p, ES_ETOOLARGE, 5000);

  memset(&p, 0, sizeof(p));
  n = (size_t)sprintf(endless,
                      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n");
  while (n + 32 < sizeof(endless) - 1)
    n += (size_t)sprintf(endless + n, "10\r\n0123456789abcdef\r\n");
  p.script = endless;
  p.script_len = n;
  sidecar_case("an endless chunked body", &p, ES_ETOOLARGE, 5000);

  memset(&p, 0, sizeof(p));
  p.script = "HTTP/1.1 204 No Content\r\n\r\n";
  p.script_len = strlen(p.script);
  p.drip_ms = 100; /* one byte every 100 ms; the answer gets 300 ms */
  sidecar_case("one byte at a time", &p, ES_ERESPTIMEDOUT, 300);

  memset(&p, 0, sizeof(p));
  p.script = "\x16\x03\x01 garbage before any answer\r\n\r\n";
  p.script_len = strlen(p.script);
  p.unsolicited = 1;
  sidecar_case("bytes before any request", &p, ES_EHTTPPARSE, 5000);

  memset(&p, 0, sizeof(p));
  p.script = "HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\nEXTRA BYTES";
  p.script_len = strlen(p.script);
  sidecar_case("a body longer than its Content-Length (answered event)", &p, 0,
               5000);

  memset(&p, 0, sizeof(p));
  p.script = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
             "Content-Length: 9\r\n\r\nnot json!";
  p.script_len = strlen(p.script);
  sidecar_case("a 200 whose body is not JSON (publish: body unused)", &p, 0,
               5000);

  memset(&p, 0, sizeof(p));
  p.script = "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 9\r\n\r\n"
             "not json!";
  p.script_len = strlen(p.script);
  sidecar_case("a 500 whose body is not JSON", &p, ES_EATTEMPTS, 5000);
  CHECK_EQ_STR(T.last_message, "not json!");
}

/* Where JSON is required (the metadata answer), a non-JSON 200 is a parse
 * error, not a crash and not "registered". */
static int reg_answer = 1, reg_calls;
static void on_reg(es_client *c, int registered, void *d) {
  (void)c;
  (void)d;
  reg_answer = registered;
  reg_calls++;
}

static void test_metadata_not_json(void) {
  uv_loop_t loop;
  es_client *c;
  es_client_options o;
  peer p;
  char url[64];

  memset(&p, 0, sizeof(p));
  p.script = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
             "Content-Length: 9\r\n\r\nnot json!";
  p.script_len = strlen(p.script);
  uv_loop_init(&loop);
  ASSERT(peer_start(&p, &loop) == 0);
  snprintf(url, sizeof(url), "http://127.0.0.1:%d", p.port);
  base_options(&o, url);
  ASSERT(es_client_init(&loop, &c, &o) == 0);
  CHECK_EQ_INT(es_client_is_component_registered(c, "eventstore", on_reg, NULL),
               0);
  run_until_n(&loop, &reg_calls, 1, 5000);
  cases_run++;
  CHECK_EQ_INT(reg_answer, ES_EPARSE);
  tally_reset();
  close_client(&loop, c);
  peer_stop(&p);
  CHECK_EQ_INT(close_loop(&loop), 0);
}

int main(void) {
  signal(SIGPIPE, SIG_IGN);
  uv_mutex_init(&tally_lock);
  unsetenv("DAPR_HTTP_ENDPOINT");
  unsetenv("DAPR_API_TOKEN");
  RUN(test_caller_side);
  RUN(test_sidecar_side);
  RUN(test_metadata_not_json);
  fprintf(stderr, "%d bad-input cases\n", cases_run);
  CHECK(cases_run >= 25);
  return TEST_DONE();
}
