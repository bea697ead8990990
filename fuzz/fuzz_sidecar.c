/* libFuzzer: es-sidecar's request handling (llhttp in request mode, routing,
 * JSON bodies, bulk entries, fault injection), fed in random pieces. */
#include <stdint.h>
#include <stdlib.h>

#include "sidecar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static es_sidecar *sc;
  es_sidecar_conn *c;
  size_t off = 0;
  uint32_t rng = 0x9e3779b9u ^ (uint32_t)size;

  if (sc == NULL) {
    es_sidecar_options o;
    es_sidecar_options_init(&o);
    o.out_path = "/dev/null";
    o.token = NULL;
    o.fail_every = 5;
    o.close_every = 7;
    o.retry_after_every = 3;
    o.bulk_fail_every = 2;
    o.max_body = 64 * 1024;
    if (es_sidecar_start(NULL, &o, &sc) != 0)
      abort();
  }
  c = es_sidecar_conn_new_detached(sc);
  while (off < size) {
    size_t len;
    rng = rng * 1103515245u + 12345u;
    len = 1 + (rng >> 16) % 128;
    if (len > size - off)
      len = size - off;
    if (es_sidecar_conn_feed(c, (const char *)data + off, len) != 0)
      break;
    off += len;
  }
  es_sidecar_conn_free_detached(c);
  return 0;
}
