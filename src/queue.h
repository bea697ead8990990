/* Intrusive circular doubly linked lists, container-of style: a node lives
 * inside the object it links, so queueing never allocates. */
#ifndef ES_QUEUE_H
#define ES_QUEUE_H

#include <stddef.h>

typedef struct es__queue {
  struct es__queue *next;
  struct es__queue *prev;
} es__queue;

#define es__container_of(ptr, type, member)                                    \
  ((type *)((char *)(ptr)-offsetof(type, member)))

static inline void es__queue_init(es__queue *q) {
  q->next = q;
  q->prev = q;
}

static inline int es__queue_empty(const es__queue *q) {
  return q->next == q;
}

static inline es__queue *es__queue_head(const es__queue *q) {
  return q->next;
}

static inline void es__queue_insert_tail(es__queue *h, es__queue *q) {
  q->next = h;
  q->prev = h->prev;
  q->prev->next = q;
  h->prev = q;
}

static inline void es__queue_insert_head(es__queue *h, es__queue *q) {
  q->next = h->next;
  q->prev = h;
  q->next->prev = q;
  h->next = q;
}

static inline void es__queue_remove(es__queue *q) {
  q->prev->next = q->next;
  q->next->prev = q->prev;
  es__queue_init(q);
}

/* Moves every node of from to the tail of to; from ends up empty. */
static inline void es__queue_move_tail(es__queue *from, es__queue *to) {
  if (es__queue_empty(from))
    return;
  from->next->prev = to->prev;
  to->prev->next = from->next;
  from->prev->next = to;
  to->prev = from->prev;
  es__queue_init(from);
}

#define es__queue_foreach(q, h)                                                \
  for ((q) = (h)->next; (q) != (h); (q) = (q)->next)

#endif
