/* A growable byte buffer. Errors are sticky: after an allocation failure or
 * an exceeded limit every append is a no-op and es__buf_error() tells, so
 * writers can append freely and check once at the end. */
#ifndef ES_BUF_H
#define ES_BUF_H

#include <stddef.h>
#include <string.h>

typedef struct es__buf {
  char *data;
  size_t len;
  size_t cap;
  size_t max; /* 0: unlimited */
  int err;    /* 0, ES_ENOMEM or ES_E2BIG */
} es__buf;

void es__buf_init(es__buf *b, size_t max);
void es__buf_free(es__buf *b);
/* Makes room for n more bytes; returns 0 or the sticky error. */
int es__buf_grow(es__buf *b, size_t n);

/* The appends are on every event's path: the common case (room, no error,
 * no limit in the way) is inline. */
static inline int es__buf_reserve(es__buf *b, size_t n) {
  if (b->err == 0 && b->len + n + 1 <= b->cap && b->len + n >= b->len &&
      (b->max == 0 || b->len + n <= b->max))
    return 0;
  return es__buf_grow(b, n);
}

static inline void es__buf_append(es__buf *b, const void *p, size_t n) {
  if (n == 0 || es__buf_reserve(b, n) != 0)
    return;
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static inline void es__buf_append_str(es__buf *b, const char *s) {
  es__buf_append(b, s, strlen(s));
}

static inline void es__buf_append_char(es__buf *b, char c) {
  if (es__buf_reserve(b, 1) != 0)
    return;
  b->data[b->len++] = c;
}
void es__buf_append_u64(es__buf *b, unsigned long long v);
void es__buf_append_i64(es__buf *b, long long v);
/* Hands the NUL-terminated contents to the caller (who frees them with
 * es__free) and resets the buffer. NULL when the buffer is in error. */
char *es__buf_steal(es__buf *b, size_t *len);

static inline int es__buf_error(const es__buf *b) {
  return b->err;
}

#endif
