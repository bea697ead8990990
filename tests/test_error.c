/* Error codes: one X-macro gives codes, names and messages; libuv codes pass
 * through; unknown codes get static strings. Also the version. */
#include <uv.h>

#include "eventstore.h"
#include "test.h"

static void test_every_code_named(void) {
#define XX(name, value, msg)                                                   \
  CHECK_EQ_INT(ES_##name, value);                                              \
  CHECK_EQ_STR(es_err_name(ES_##name), "ES_" #name);                           \
  CHECK_EQ_STR(es_strerror(ES_##name), msg);                                   \
  CHECK(ES_##name > ES_ERRNO_MIN_ && ES_##name < -4096);
  ES_ERRNO_MAP(XX)
#undef XX
}

static void test_codes_distinct(void) {
  int codes[] = {
#define XX(name, value, msg) value,
      ES_ERRNO_MAP(XX)
#undef XX
  };
  size_t n = sizeof(codes) / sizeof(codes[0]), i, j;
  for (i = 0; i < n; i++)
    for (j = i + 1; j < n; j++)
      CHECK(codes[i] != codes[j]);
}

static void test_uv_codes_pass_through(void) {
  CHECK_EQ_STR(es_err_name(UV_ECONNREFUSED), "ECONNREFUSED");
  CHECK_EQ_STR(es_strerror(UV_ECONNREFUSED), uv_strerror(UV_ECONNREFUSED));
  CHECK_EQ_STR(es_err_name(UV_EOF), "EOF");
  CHECK_EQ_STR(es_err_name(UV_EAI_NONAME), "EAI_NONAME");
  CHECK_EQ_STR(es_err_name(UV_ETIMEDOUT), "ETIMEDOUT");
}

static void test_unknown_codes(void) {
  CHECK_EQ_STR(es_err_name(-29999), "UNKNOWN");
  CHECK_EQ_STR(es_strerror(-29999), "unknown error");
  CHECK_EQ_STR(es_err_name(-123456), "UNKNOWN");
  CHECK_EQ_STR(es_err_name(42), "UNKNOWN");
  CHECK_EQ_STR(es_strerror(-4000), "unknown error");
  CHECK_EQ_STR(es_err_name(0), "OK");
}

static void test_version(void) {
  char want[32];
  snprintf(want, sizeof(want), "%d.%d.%d", ES_VERSION_MAJOR, ES_VERSION_MINOR,
           ES_VERSION_PATCH);
  CHECK_EQ_STR(es_version_string(), want);
  CHECK_EQ_INT(es_version(), ES_VERSION_HEX);
}

int main(void) {
  RUN(test_every_code_named);
  RUN(test_codes_distinct);
  RUN(test_uv_codes_pass_through);
  RUN(test_unknown_codes);
  RUN(test_version);
  return TEST_DONE();
}
