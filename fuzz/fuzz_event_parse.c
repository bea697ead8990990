/* libFuzzer: the event JSON parser. A parsed event must serialize, and its
 * JSON must parse back to the same JSON. Also the validating scanner that
 * es_publish_json uses: whatever it accepts, cJSON must parse too (the
 * scanner is stricter, never laxer), with the same UTF-8 and depth rules. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eventstore.h"
#include "json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  es_event *ev = NULL, *back = NULL;
  char err[128], *json = NULL, *json2 = NULL;
  size_t len, len2;

  {
    cJSON *root = NULL;
    int v = es__json_validate((const char *)data, size, 0);
    int p = es__json_parse((const char *)data, size, &root, NULL);
    /* accepted by the scanner: cJSON agrees (duplicate keys aside, which
     * only the tree check looks for) */
    if (v == 0 && p != 0 && p != ES_EINVAL)
      abort();
    cJSON_Delete(root);
  }
  if (es_event_parse(&ev, (const char *)data, size, err, sizeof(err)) != 0) {
    if (ev != NULL || err[0] == '\0')
      abort(); /* a failure leaves no event and says why */
    return 0;
  }
  if (es_event_enrich_simple(ev, NULL) != 0 ||
      es_event_to_json(ev, 0, &json, &len) != 0 ||
      es_event_parse(&back, json, len, err, sizeof(err)) != 0 ||
      es_event_to_json(back, 0, &json2, &len2) != 0 || len != len2 ||
      memcmp(json, json2, len) != 0)
    abort();
  es_free(json);
  es_free(json2);
  es_event_free(ev);
  es_event_free(back);
  return 0;
}
