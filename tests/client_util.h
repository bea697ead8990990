/* Helpers shared by the client tests: a tally of callbacks per event, an
 * in-process es-sidecar, and readers of its output. */
#ifndef ES_TEST_CLIENT_UTIL_H
#define ES_TEST_CLIENT_UTIL_H

#include <uv.h>

#include "eventstore.h"
#include "sidecar.h"

#define MAXEV 20000

typedef struct tally {
  int calls[MAXEV];
  int status[MAXEV];
  unsigned attempts[MAXEV];
  int http[MAXEV];
  uint64_t latency_us[MAXEV];
  int total, ok, accepted;
  char last_message[256];
  int closed;
} tally;

extern tally T;
extern uv_mutex_t tally_lock;

void tally_reset(void);
/* The publish callback: data is the event's index. */
void on_done(es_client *c, const es_publish_result *r, void *data);
/* 1 when events 0..n-1 each got exactly one callback. */
int exactly_once(int n);
void on_closed(es_client *c);
/* Publishes {"i": i} as an event of the given type (T.accepted counts). */
int publish_typed(es_client *c, int i, const char *type, const char *name);
int publish_i(es_client *c, int i, const char *name);
/* Closes the client and runs the loop until its close callback. */
void close_client(uv_loop_t *loop, es_client *c);

/* An in-process es-sidecar on the test's loop. */
typedef struct insc {
  es_sidecar *sc;
  char out[128];
  char url[64];
} insc;
int insc_start(uv_loop_t *loop, insc *s, es_sidecar_options *o);
void insc_stop(uv_loop_t *loop, insc *s);
void insc_free(insc *s);
/* Counts in seen[i] the events whose body.data.i (or, for CloudEvents,
 * body.data.data.i) is i; returns the lines; *first (if not NULL) gets the
 * first line parsed. */
int read_output(const char *path, int *seen, int n, cJSON **first);
/* Client options for tests: endpoint url, short backoffs. */
void base_options(es_client_options *o, const char *url);

#endif
