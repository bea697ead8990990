#include "alloc.h"

#include <stdlib.h>
#include <string.h>

#include "eventstore.h"

/* Process-wide, like libuv's allocator: replaced once, before anything else
 * runs, so reading them unsynchronized is safe. */
static es_malloc_func es__malloc_fn = malloc;
static es_realloc_func es__realloc_fn = realloc;
static es_calloc_func es__calloc_fn = calloc;
static es_free_func es__free_fn = free;

int es_replace_allocator(es_malloc_func malloc_func,
                         es_realloc_func realloc_func,
                         es_calloc_func calloc_func, es_free_func free_func) {
  cJSON_Hooks hooks;

  if (malloc_func == NULL || realloc_func == NULL || calloc_func == NULL ||
      free_func == NULL)
    return ES_EINVAL;
  es__malloc_fn = malloc_func;
  es__realloc_fn = realloc_func;
  es__calloc_fn = calloc_func;
  es__free_fn = free_func;
  /* cJSON keeps its own global hooks; route them through ours so that the
   * JSON trees of events are accounted for like everything else. */
  hooks.malloc_fn = es__malloc;
  hooks.free_fn = es__free;
  cJSON_InitHooks(&hooks);
  return 0;
}

_Thread_local int es__alloc_failed;

static void *es__check(void *p) {
  if (p == NULL)
    es__alloc_failed = 1;
  return p;
}

void *es__malloc(size_t size) {
  return size == 0 ? NULL : es__check(es__malloc_fn(size));
}

void *es__realloc(void *ptr, size_t size) {
  if (size == 0) {
    es__free(ptr);
    return NULL;
  }
  return es__check(es__realloc_fn(ptr, size));
}

void *es__calloc(size_t count, size_t size) {
  if (count == 0 || size == 0)
    return NULL;
  return es__check(es__calloc_fn(count, size));
}

void es__free(void *ptr) {
  if (ptr != NULL)
    es__free_fn(ptr);
}

void es_free(void *ptr) {
  es__free(ptr);
}

char *es__strndup(const char *s, size_t len) {
  char *copy;

  if (s == NULL)
    return NULL;
  copy = es__malloc(len + 1);
  if (copy == NULL)
    return NULL;
  memcpy(copy, s, len);
  copy[len] = '\0';
  return copy;
}

char *es__strdup(const char *s) {
  return s == NULL ? NULL : es__strndup(s, strlen(s));
}
