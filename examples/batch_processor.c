/* The guide's "batch event processor": process a batch of incoming events,
 * then publish one summary event with the batch size and the distinct event
 * types, enriched with processor_type and batch_id custom metadata
 * (publish_event_simple). The sidecar address comes from the environment
 * (DAPR_HTTP_ENDPOINT or DAPR_HTTP_PORT), as in the library. Exits 1 when
 * the summary could not be published. */
#include <stdio.h>
#include <string.h>

#include <uv.h>

#include "eventstore.h"

static int failed = -1;

static void on_published(es_client *client, const es_publish_result *r,
                         void *data) {
  (void)client;
  (void)data;
  failed = r->status != 0;
  if (r->status != 0)
    /* log, don't fail the main work */
    fprintf(stderr, "batch_processor: summary not published: %s (HTTP %d) %s\n",
            es_strerror(r->status), r->http_status,
            r->message ? r->message : "");
  else
    printf("batch_processor: summary published (%u attempt(s), %llu us)\n",
           r->attempts, (unsigned long long)r->latency_us);
}

int main(void) {
  static const char *incoming[] = {"orders.created", "orders.paid",
                                   "orders.created", "users.signed_up",
                                   "orders.shipped", "orders.paid"};
  size_t n = sizeof(incoming) / sizeof(incoming[0]), i, j;
  uv_loop_t loop;
  es_client *client;
  es_event *summary;
  cJSON *data, *types, *custom;
  char batch_id[32];
  int rc;

  /* Process the batch (here: collect the distinct event types). */
  data = cJSON_CreateObject();
  cJSON_AddNumberToObject(data, "batch_size", (double)n);
  types = cJSON_AddArrayToObject(data, "event_types");
  for (i = 0; i < n; i++) {
    for (j = 0; j < i && strcmp(incoming[i], incoming[j]) != 0; j++)
      ;
    if (j == i)
      cJSON_AddItemToArray(types, cJSON_CreateString(incoming[i]));
  }

  uv_loop_init(&loop);
  rc = es_client_init(&loop, &client, NULL);
  if (rc != 0) {
    fprintf(stderr, "batch_processor: %s\n", es_strerror(rc));
    return 1;
  }
  rc = es_event_new(&summary, "processor_events", "batch_processed", data);
  snprintf(batch_id, sizeof(batch_id), "batch-%llu",
           (unsigned long long)(uv_hrtime() / 1000000));
  custom = cJSON_CreateObject();
  cJSON_AddStringToObject(custom, "processor_type", "kafka_batch");
  cJSON_AddStringToObject(custom, "batch_id", batch_id);
  if (rc == 0)
    rc = es_publish_event_simple(client, summary, custom, on_published, NULL);
  if (rc != 0)
    fprintf(stderr, "batch_processor: not accepted: %s\n", es_strerror(rc));
  es_event_free(summary); /* the client has its own copy */
  cJSON_Delete(custom);
  cJSON_Delete(data);

  uv_run(&loop, UV_RUN_DEFAULT); /* returns once the summary completed */
  es_client_close(client, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  return rc == 0 && failed == 0 ? 0 : 1;
}
