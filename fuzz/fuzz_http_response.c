/* libFuzzer: a response stream through the HTTP client's read path, cut at
 * random points, for up to 8 pipelined requests (some HEAD), then EOF.
 * Every request must end exactly once, whatever the bytes. */
#include <stddef.h>
#include <stdint.h>

#include "http_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  return es__http_fuzz_responses(data, size);
}
