/* Background mode: a loop and a thread of the library's own run an ordinary
 * client; completions run on that thread, or wait in a queue (signalled by
 * an eventfd) until the caller polls them on its own thread. The blocking
 * calls (flush_sync, close_sync) hand a command to the loop with uv_async
 * and wait on a condition variable, never past their timeout, and refuse
 * to run where waiting would deadlock. */
#include "background.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <uv.h>

#include "alloc.h"
#include "queue.h"

_Thread_local int es__in_callback;

typedef struct es__bg_done {
  es__queue node;
  es_publish_cb cb;
  void *data;
  es_publish_result r;
  char strings[]; /* copies of the result's strings */
} es__bg_done;

struct es__bg {
  uv_loop_t loop;
  uv_thread_t thread;
  uv_async_t cmd;
  uv_mutex_t lock;
  uv_cond_t cond;
  const es_client_options *opts; /* valid during start only */
  es_client *client;
  es_delivery delivery;
  int efd;
  int started, init_rc;
  /* completions waiting for es_client_poll (under lock) */
  es__queue done;
  int signalled; /* efd holds a count */
  /* commands (under lock) */
  uint64_t flush_gen, flush_issued, flush_done_gen;
  uint64_t flush_timeout_ms;
  int flush_status;
  int close_requested, close_issued, closed;
  uint64_t close_timeout_ms;
  uint64_t canceled;
};

/* ---- on the library's thread ----------------------------------------------
 */

int es__bg_deliver(es__bg *bg, es_client *c, const es_publish_result *r,
                   es_publish_cb cb, void *data) {
  const char *strs[4] = {r->error_code, r->message, r->event_type,
                         r->event_name};
  size_t lens[4], total = 0, i;
  es__bg_done *d;
  char *p;
  uint64_t one = 1;

  (void)c;
  if (r->status == ES_ECANCELED) {
    uv_mutex_lock(&bg->lock);
    bg->canceled++;
    uv_mutex_unlock(&bg->lock);
  }
  if (bg->delivery != ES_DELIVER_BY_POLL)
    return 0;
  for (i = 0; i < 4; i++) {
    lens[i] = strs[i] ? strlen(strs[i]) + 1 : 0;
    total += lens[i];
  }
  d = es__malloc(sizeof(*d) + total);
  if (d == NULL)
    return 0; /* cannot queue it: run it here rather than lose it */
  d->cb = cb;
  d->data = data;
  d->r = *r;
  p = d->strings;
  for (i = 0; i < 4; i++) {
    const char **dst = i == 0   ? &d->r.error_code
                       : i == 1 ? &d->r.message
                       : i == 2 ? &d->r.event_type
                                : &d->r.event_name;
    if (strs[i] == NULL) {
      *dst = NULL;
      continue;
    }
    memcpy(p, strs[i], lens[i]);
    *dst = p;
    p += lens[i];
  }
  uv_mutex_lock(&bg->lock);
  es__queue_insert_tail(&bg->done, &d->node);
  if (!bg->signalled) {
    bg->signalled = 1;
    if (write(bg->efd, &one, sizeof(one)) < 0) {
      /* an eventfd write fails only on counter overflow: already readable */
    }
  }
  uv_mutex_unlock(&bg->lock);
  return 1;
}

void es__bg_closed(es__bg *bg) {
  /* The client's handles are closed; ours goes too, and the loop ends. */
  uv_close((uv_handle_t *)&bg->cmd, NULL);
}

static void es__bg_flushed(es_client *c, int status, size_t remaining,
                           void *data) {
  es__bg *bg = es__client_bg(c);
  uint64_t gen = (uint64_t)(uintptr_t)data;
  (void)remaining;
  uv_mutex_lock(&bg->lock);
  if (gen > bg->flush_done_gen) {
    bg->flush_done_gen = gen;
    bg->flush_status = status;
  }
  uv_cond_broadcast(&bg->cond);
  uv_mutex_unlock(&bg->lock);
}

static void es__bg_client_closed(es_client *c) {
  es__bg *bg = es__client_bg(c);
  uv_mutex_lock(&bg->lock);
  bg->closed = 1;
  uv_cond_broadcast(&bg->cond);
  uv_mutex_unlock(&bg->lock);
}

static void es__bg_cmd(uv_async_t *a) {
  es__bg *bg = a->data;
  uint64_t gen = 0, timeout = 0, close_timeout = 0;
  int do_close = 0, rc;

  uv_mutex_lock(&bg->lock);
  if (bg->flush_gen > bg->flush_issued) {
    gen = bg->flush_issued = bg->flush_gen;
    timeout = bg->flush_timeout_ms;
  }
  if (bg->close_requested && !bg->close_issued) {
    bg->close_issued = 1;
    do_close = 1;
    close_timeout = bg->close_timeout_ms;
  }
  uv_mutex_unlock(&bg->lock);
  if (gen != 0) {
    rc = es_client_flush(bg->client, timeout, es__bg_flushed,
                         (void *)(uintptr_t)gen);
    if (rc != 0)
      es__bg_flushed(bg->client, rc, 0, (void *)(uintptr_t)gen);
  }
  if (do_close) {
    es__client_set_close_timeout(bg->client, close_timeout);
    es_client_close(bg->client, es__bg_client_closed);
  }
}

static void es__bg_main(void *arg) {
  es__bg *bg = arg;
  int rc;

  rc = uv_loop_init(&bg->loop);
  if (rc == 0) {
    uv_async_init(&bg->loop, &bg->cmd, es__bg_cmd);
    bg->cmd.data = bg;
    rc = es_client_init(&bg->loop, &bg->client, bg->opts);
    if (rc == 0)
      es__client_attach_bg(bg->client, bg);
    else
      uv_close((uv_handle_t *)&bg->cmd, NULL);
  }
  uv_mutex_lock(&bg->lock);
  bg->init_rc = rc;
  bg->started = 1;
  uv_cond_broadcast(&bg->cond);
  uv_mutex_unlock(&bg->lock);
  uv_run(&bg->loop, UV_RUN_DEFAULT);
  uv_loop_close(&bg->loop);
}

/* ---- the caller's side -----------------------------------------------------
 */

static es__bg *es__bg_of(const es_client *c) {
  return c ? es__client_bg(c) : NULL;
}

static int es__bg_on_own_thread(es__bg *bg) {
  uv_thread_t self = uv_thread_self();
  return uv_thread_equal(&self, &bg->thread);
}

static void es__bg_free(es__bg *bg) {
  while (!es__queue_empty(&bg->done)) {
    es__queue *q = es__queue_head(&bg->done);
    es__queue_remove(q);
    es__free(es__container_of(q, es__bg_done, node));
  }
  if (bg->efd >= 0)
    close(bg->efd);
  uv_cond_destroy(&bg->cond);
  uv_mutex_destroy(&bg->lock);
  es__free(bg);
}

int es_client_start_background(es_client **out,
                               const es_client_options *options,
                               es_delivery delivery) {
  es__bg *bg;
  int rc;

  if (out == NULL || (delivery != ES_DELIVER_ON_LIBRARY_THREAD &&
                      delivery != ES_DELIVER_BY_POLL))
    return ES_EINVAL;
  bg = es__calloc(1, sizeof(*bg));
  if (bg == NULL)
    return ES_ENOMEM;
  bg->efd = -1;
  bg->delivery = delivery;
  bg->opts = options;
  es__queue_init(&bg->done);
  if (uv_mutex_init(&bg->lock) != 0) {
    es__free(bg);
    return ES_ENOMEM;
  }
  if (uv_cond_init(&bg->cond) != 0) {
    uv_mutex_destroy(&bg->lock);
    es__free(bg);
    return ES_ENOMEM;
  }
  if (delivery == ES_DELIVER_BY_POLL) {
    bg->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (bg->efd < 0) {
      rc = uv_translate_sys_error(errno);
      es__bg_free(bg);
      return rc;
    }
  }
  rc = uv_thread_create(&bg->thread, es__bg_main, bg);
  if (rc != 0) {
    es__bg_free(bg);
    return rc;
  }
  uv_mutex_lock(&bg->lock);
  while (!bg->started)
    uv_cond_wait(&bg->cond, &bg->lock);
  rc = bg->init_rc;
  uv_mutex_unlock(&bg->lock);
  bg->opts = NULL;
  if (rc != 0) {
    uv_thread_join(&bg->thread);
    es__bg_free(bg);
    return rc;
  }
  *out = bg->client;
  return 0;
}

int es_client_poll(es_client *c, unsigned max) {
  es__bg *bg = es__bg_of(c);
  es__queue local;
  unsigned n = 0;
  uint64_t drained;

  if (bg == NULL || bg->delivery != ES_DELIVER_BY_POLL)
    return ES_EINVAL;
  es__queue_init(&local);
  uv_mutex_lock(&bg->lock);
  while (!es__queue_empty(&bg->done) && (max == 0 || n < max)) {
    es__queue *q = es__queue_head(&bg->done);
    es__queue_remove(q);
    es__queue_insert_tail(&local, q);
    n++;
  }
  if (es__queue_empty(&bg->done) && bg->signalled) {
    bg->signalled = 0;
    if (read(bg->efd, &drained, sizeof(drained)) < 0) {
      /* EAGAIN: nothing to drain */
    }
  }
  uv_mutex_unlock(&bg->lock);
  while (!es__queue_empty(&local)) {
    es__bg_done *d =
        es__container_of(es__queue_head(&local), es__bg_done, node);
    es__queue_remove(&d->node);
    es__in_callback++;
    d->cb(c, &d->r, d->data);
    es__in_callback--;
    es__free(d);
  }
  return (int)n;
}

int es_client_fd(const es_client *c) {
  es__bg *bg = es__bg_of(c);
  if (bg == NULL || bg->delivery != ES_DELIVER_BY_POLL)
    return ES_EINVAL;
  return bg->efd;
}

/* Waits on the condition until *done or the deadline (0: none). */
static int es__bg_wait(es__bg *bg, uint64_t deadline_ns,
                       int (*done)(es__bg *bg, uint64_t arg), uint64_t arg) {
  while (!done(bg, arg)) {
    if (deadline_ns == 0) {
      uv_cond_wait(&bg->cond, &bg->lock);
    } else {
      uint64_t now = uv_hrtime();
      if (now >= deadline_ns)
        return ES_ETIMEDOUT;
      uv_cond_timedwait(&bg->cond, &bg->lock, deadline_ns - now);
    }
  }
  return 0;
}

static int es__bg_flush_done(es__bg *bg, uint64_t gen) {
  return bg->flush_done_gen >= gen;
}

static int es__bg_is_closed(es__bg *bg, uint64_t unused) {
  (void)unused;
  return bg->closed;
}

int es_client_flush_sync(es_client *c, uint64_t timeout_ms) {
  es__bg *bg = es__bg_of(c);
  uint64_t gen, deadline;
  int rc;

  if (bg == NULL)
    return ES_EINVAL;
  if (es__in_callback || es__bg_on_own_thread(bg))
    return ES_EBUSY;
  deadline = timeout_ms ? uv_hrtime() + timeout_ms * 1000000 : 0;
  uv_mutex_lock(&bg->lock);
  if (bg->close_requested) {
    uv_mutex_unlock(&bg->lock);
    return ES_ECLOSED;
  }
  gen = ++bg->flush_gen;
  bg->flush_timeout_ms = timeout_ms;
  uv_async_send(&bg->cmd);
  rc = es__bg_wait(bg, deadline, es__bg_flush_done, gen);
  if (rc == 0)
    rc = bg->flush_status;
  uv_mutex_unlock(&bg->lock);
  return rc;
}

int es_client_close_sync(es_client *c, uint64_t timeout_ms) {
  es__bg *bg = es__bg_of(c);
  uint64_t canceled;

  if (bg == NULL)
    return ES_EINVAL;
  if (es__in_callback || es__bg_on_own_thread(bg))
    return ES_EBUSY;
  uv_mutex_lock(&bg->lock);
  if (bg->close_requested) {
    uv_mutex_unlock(&bg->lock);
    return ES_ECLOSED;
  }
  bg->close_requested = 1;
  bg->close_timeout_ms = timeout_ms;
  uv_async_send(&bg->cmd);
  /* The client's own close is bounded by timeout_ms (then it cancels), so
   * this wait is too. */
  es__bg_wait(bg, 0, es__bg_is_closed, 0);
  uv_mutex_unlock(&bg->lock);
  uv_thread_join(&bg->thread);
  /* Completions still waiting to be polled run here, on the caller's
   * thread, before the memory goes. */
  if (bg->delivery == ES_DELIVER_BY_POLL)
    es_client_poll(c, 0);
  uv_mutex_lock(&bg->lock);
  canceled = bg->canceled;
  uv_mutex_unlock(&bg->lock);
  es__client_destroy(c);
  es__bg_free(bg);
  return canceled ? ES_ETIMEDOUT : 0;
}
