/* The engine of es-sidecar, separate from its main() so that tests and the
 * fuzzer can run it in-process. */
#ifndef ES_SIDECAR_H
#define ES_SIDECAR_H

#include <stdio.h>

#include <uv.h>

typedef struct es_sidecar_options {
  const char *host;       /* default 127.0.0.1 */
  unsigned long port;     /* default 3500; 0: any free port */
  const char *unix_path;  /* listen there instead of TCP */
  const char *components; /* comma separated; default "eventstore,pubsub" */
  const char *token;      /* required dapr-api-token, or NULL */
  const char *out_path;   /* NULL: stdout */
  unsigned long fail_every, close_every, delay_ms, retry_after_every;
  unsigned long retry_after_secs, keepalive_max, bulk_fail_every, max_body;
  int chunked;
  int handle_signals; /* stop on SIGINT/SIGTERM (default 1) */
} es_sidecar_options;

typedef struct es_sidecar es_sidecar;

void es_sidecar_options_init(es_sidecar_options *o);
int es_sidecar_start(uv_loop_t *loop, const es_sidecar_options *o,
                     es_sidecar **out);
int es_sidecar_port(const es_sidecar *sc);
/* Closes the listener and every connection; the loop then runs out. */
void es_sidecar_stop(es_sidecar *sc);
void es_sidecar_print_counters(const es_sidecar *sc, FILE *f);
/* After the loop has run out. */
void es_sidecar_free(es_sidecar *sc);

/* For the fuzzer: feeds bytes to a connection-less request parser with the
 * same handling (answers are discarded). Returns 0, or -1 when the
 * connection would have been closed. */
typedef struct es_sidecar_conn es_sidecar_conn;
es_sidecar_conn *es_sidecar_conn_new_detached(es_sidecar *sc);
int es_sidecar_conn_feed(es_sidecar_conn *c, const char *data, size_t len);
void es_sidecar_conn_free_detached(es_sidecar_conn *c);

#endif
