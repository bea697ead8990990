/* The 300-byte binding request body the benchmarks and the nginx test
 * send: a typical enriched event inside {"data": ..., "operation":
 * "create", "metadata": {...}}. */
#ifndef ES_TEST_BODY300_H
#define ES_TEST_BODY300_H

static const char body300[] =
    "{\"data\":{\"metadata\":{\"application_name\":\"default\","
    "\"created_timestamp\":1764860000,\"workflow_state\":\"unknown\","
    "\"topic_name\":\"processor_events\",\"processor_id\":\"kafka-batch-1\","
    "\"batch_id\":\"abc123\"},\"event_type\":\"processor_events\","
    "\"event_name\":\"batch_processed\",\"data\":{\"batch_size\":50,"
    "\"ok\":true}},\"operation\":\"create\",\"metadata\":{\"content-type\":"
    "\"application/json\"}}";

#endif
