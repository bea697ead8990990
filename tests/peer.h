/* A scripted HTTP peer for tests, on the test's own loop: it accepts
 * connections on loopback TCP, counts complete requests with llhttp, and
 * once a connection has received `expect` of them it sends `script` (split
 * into pieces at the given offsets, one write per loop iteration), then does
 * what `after` says. */
#ifndef ES_TEST_PEER_H
#define ES_TEST_PEER_H

#include <stddef.h>

#include <uv.h>

enum peer_after {
  PEER_KEEP,  /* keep the connection open, answer the next batch again */
  PEER_CLOSE, /* close gracefully after the script */
  PEER_RESET, /* reset (RST) after the script */
  PEER_SILENT /* never answer */
};

typedef struct peer {
  uv_loop_t *loop;
  uv_tcp_t server;
  int port;
  const char *script;
  size_t script_len;
  size_t splits[8]; /* offsets where the script is cut, ascending, 0-ended */
  unsigned expect;  /* requests before answering (default 1) */
  enum peer_after after;
  int unsolicited;  /* send the script right after accepting */
  unsigned drip_ms; /* if set: one byte every drip_ms (splits ignored) */
  unsigned accepted;
  unsigned requests;
  int closed;
  struct peer_conn *conns;
} peer;

int peer_start(peer *p, uv_loop_t *loop);
void peer_stop(peer *p);

/* Open descriptors of this process (to check for leaks). The first loop a
 * process creates makes libuv's process-wide signal pipe (two descriptors
 * kept until exit), so the count makes and closes a loop first. */
int count_fds(void);
/* Runs the loop until *counter reaches target or timeout_ms passes;
 * returns 0 when it was reached. */
int run_until_n(uv_loop_t *loop, const int *counter, int target,
                unsigned timeout_ms);
#define run_until(loop, flag, ms) run_until_n((loop), (flag), 1, (ms))
/* Closes every handle still open and closes the loop; returns
 * uv_loop_close's result on the first try (0 when nothing was left). */
int close_loop(uv_loop_t *loop);

#endif
