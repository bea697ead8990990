/* Allocation failure: fail the n-th allocation of an enrich + serialize +
 * parse cycle, for every n until the cycle completes untouched. No crash,
 * no leak (every allocation freed: the counting allocator checks it, and
 * ASan/valgrind runs check it again), and each failure reported as
 * ES_ENOMEM. */
#include <stdlib.h>

#include "eventstore.h"
#include "test.h"

static long fail_at = -1; /* fail the allocation with this index */
static long n_allocs, live;

static void *t_malloc(size_t n) {
  void *p;
  if (n_allocs++ == fail_at)
    return NULL;
  p = malloc(n);
  if (p)
    live++;
  return p;
}

static void *t_realloc(void *ptr, size_t n) {
  void *p;
  if (n_allocs++ == fail_at)
    return NULL;
  p = realloc(ptr, n);
  if (p && !ptr)
    live++;
  return p;
}

static void *t_calloc(size_t c, size_t n) {
  void *p;
  if (n_allocs++ == fail_at)
    return NULL;
  p = calloc(c, n);
  if (p)
    live++;
  return p;
}

static void t_free(void *p) {
  if (p) {
    live--;
    free(p);
  }
}

/* One full cycle; returns 0 or the first error. */
static int cycle(void) {
  static const char in[] =
      "{\"event_type\":\"t\",\"event_name\":\"n\",\"data\":{\"k\":[1,\"s\"]},"
      "\"metadata\":{\"workflow_id\":\"w\",\"x\":{\"y\":null}},\"extra\":1}";
  es_event *ev = NULL, *back = NULL, *copy = NULL;
  cJSON *custom = NULL, *data = NULL;
  char *json = NULL;
  size_t len;
  int rc;

  custom = cJSON_Parse("{\"processor_id\":\"p\",\"attempt\":2}");
  data = cJSON_Parse("{\"batch_size\":50,\"event_types\":[\"a\"]}");
  if (custom == NULL || data == NULL) {
    rc = ES_ENOMEM;
    goto out;
  }
  if ((rc = es_event_new(&ev, "processor_events", "batch_processed", data)))
    goto out;
  if ((rc = es_event_enrich_simple(ev, custom)))
    goto out;
  if ((rc = es_event_set_metadata_string(ev, "more", "v")))
    goto out;
  if ((rc = es_event_to_json(ev, 0, &json, &len)))
    goto out;
  if ((rc = es_event_parse(&back, json, len, NULL, 0)))
    goto out;
  if ((rc = es_event_clone(back, &copy)))
    goto out;
  es_free(json);
  json = NULL;
  es_event_free(ev);
  ev = NULL;
  rc = es_event_parse(&ev, in, sizeof(in) - 1, NULL, 0);
out:
  es_free(json);
  es_event_free(ev);
  es_event_free(back);
  es_event_free(copy);
  cJSON_Delete(custom);
  cJSON_Delete(data);
  return rc;
}

static void test_every_allocation_fails_once(void) {
  long total, n;
  int rc;

  fail_at = -1;
  n_allocs = 0;
  live = 0;
  ASSERT(cycle() == 0);
  total = n_allocs;
  CHECK_EQ_INT(live, 0);
  CHECK(total > 20);
  for (n = 0; n < total; n++) {
    fail_at = n;
    n_allocs = 0;
    rc = cycle();
    if (rc != ES_ENOMEM)
      fprintf(stderr, "failing allocation %ld gave %s\n", n, es_err_name(rc));
    CHECK_EQ_INT(rc, ES_ENOMEM);
    CHECK_EQ_INT(live, 0);
  }
  fprintf(stderr, "%ld allocations per cycle, each failed once\n", total);
  fail_at = -1;
}

int main(void) {
  CHECK_EQ_INT(es_replace_allocator(NULL, realloc, calloc, free), ES_EINVAL);
  CHECK_EQ_INT(es_replace_allocator(t_malloc, t_realloc, t_calloc, t_free), 0);
  RUN(test_every_allocation_fails_once);
  return TEST_DONE();
}
