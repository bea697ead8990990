#include <stdio.h>

#include <uv.h>

#include "eventstore.h"

#define ES__STR(x) ES__STR2(x)
#define ES__STR2(x) #x

unsigned int es_version(void) {
  return ES_VERSION_HEX;
}

const char *es_version_string(void) {
  return ES__STR(ES_VERSION_MAJOR) "." ES__STR(ES_VERSION_MINOR) "." ES__STR(
      ES_VERSION_PATCH);
}

/* Is err one of libuv's codes? uv_err_name() answers "Unknown system error"
 * style strings it allocates (and leaks) for unknown codes, so only codes in
 * libuv's range are handed to it, and only ones it names itself. */
static int es__is_uv_error(int err) {
  return err < 0 && err > ES_ERRNO_MIN_ && err >= -4096;
}

const char *es_strerror(int err) {
  switch (err) {
  case 0:
    return "success";
#define ES__ERR_MSG(name, value, msg)                                          \
  case ES_##name:                                                              \
    return msg;
    ES_ERRNO_MAP(ES__ERR_MSG)
#undef ES__ERR_MSG
  default:
    break;
  }
  if (es__is_uv_error(err)) {
    switch (err) {
#define ES__UV_MSG(name, msg)                                                  \
  case UV_##name:                                                              \
    return msg;
      UV_ERRNO_MAP(ES__UV_MSG)
#undef ES__UV_MSG
    default:
      break;
    }
  }
  return "unknown error";
}

const char *es_err_name(int err) {
  switch (err) {
  case 0:
    return "OK";
#define ES__ERR_NAME(name, value, msg)                                         \
  case ES_##name:                                                              \
    return "ES_" #name;
    ES_ERRNO_MAP(ES__ERR_NAME)
#undef ES__ERR_NAME
  default:
    break;
  }
  if (es__is_uv_error(err)) {
    switch (err) {
#define ES__UV_NAME(name, msg)                                                 \
  case UV_##name:                                                              \
    return #name;
      UV_ERRNO_MAP(ES__UV_NAME)
#undef ES__UV_NAME
    default:
      break;
    }
  }
  return "UNKNOWN";
}
