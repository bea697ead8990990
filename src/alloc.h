/* Allocation: every allocation of the library goes through these, so that
 * es_replace_allocator() (and the allocation-failure tests) see all of it. */
#ifndef ES_ALLOC_H
#define ES_ALLOC_H

#include <stddef.h>

void *es__malloc(size_t size);
void *es__realloc(void *ptr, size_t size);
void *es__calloc(size_t count, size_t size);
void es__free(void *ptr);
/* Copies of strings; NULL in gives NULL out (and is not an error). */
char *es__strdup(const char *s);
char *es__strndup(const char *s, size_t len);

/* Set on this thread whenever an allocation fails; lets callers of code that
 * hides the reason for a NULL (cJSON's parser) tell ENOMEM from bad input. */
extern _Thread_local int es__alloc_failed;

#endif
