/* libFuzzer: es-publish's input line parser, with and without -m
 * metadata. */
#include <stdint.h>
#include <stdlib.h>

#include "publish_line.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static cJSON *base;
  es_event *ev;
  cJSON *custom;
  char err[256];
  int k;

  if (base == NULL) {
    base = cJSON_CreateObject();
    es_publish_add_metadata_arg(base, "processor_id=kafka-1");
    es_publish_add_metadata_arg(base, "n=[1,2]");
  }
  for (k = 0; k < 2; k++) {
    int rc = es_publish_parse_line((const char *)data, size, k ? base : NULL,
                                   &ev, &custom, err, sizeof(err));
    if (rc == 0) {
      if (ev == NULL)
        abort();
      es_event_free(ev);
      cJSON_Delete(custom);
    } else if (ev != NULL || custom != NULL) {
      abort();
    }
  }
  return 0;
}
