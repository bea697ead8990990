#include "buf.h"

#include "alloc.h"
#include "eventstore.h"

void es__buf_init(es__buf *b, size_t max) {
  b->data = NULL;
  b->len = 0;
  b->cap = 0;
  b->max = max;
  b->err = 0;
}

void es__buf_free(es__buf *b) {
  es__free(b->data);
  es__buf_init(b, b->max);
}

int es__buf_grow(es__buf *b, size_t n) {
  size_t need, cap;
  char *p;

  if (b->err)
    return b->err;
  /* +1 keeps room for the terminating NUL of es__buf_steal. */
  need = b->len + n + 1;
  if (need < b->len || (b->max != 0 && b->len + n > b->max)) {
    b->err = ES_E2BIG;
    return b->err;
  }
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap *= 2;
  p = es__realloc(b->data, cap);
  if (p == NULL) {
    b->err = ES_ENOMEM;
    return b->err;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

void es__buf_append_u64(es__buf *b, unsigned long long v) {
  char tmp[24];
  size_t i = sizeof(tmp);

  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  es__buf_append(b, tmp + i, sizeof(tmp) - i);
}

void es__buf_append_i64(es__buf *b, long long v) {
  if (v < 0) {
    es__buf_append_char(b, '-');
    es__buf_append_u64(b, 0ULL - (unsigned long long)v);
  } else {
    es__buf_append_u64(b, (unsigned long long)v);
  }
}

char *es__buf_steal(es__buf *b, size_t *len) {
  char *p;

  if (b->err || es__buf_reserve(b, 0) != 0) {
    es__buf_free(b);
    return NULL;
  }
  b->data[b->len] = '\0';
  p = b->data;
  if (len != NULL)
    *len = b->len;
  b->data = NULL;
  b->len = b->cap = 0;
  return p;
}
