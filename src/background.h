/* Background mode: the client on a loop and thread of the library's own,
 * with completions run on that thread or queued for es_client_poll(). The
 * hooks client.c calls. */
#ifndef ES_BACKGROUND_H
#define ES_BACKGROUND_H

#include "eventstore.h"

typedef struct es__bg es__bg;

/* Set while this thread runs a completion callback: the sync calls refuse
 * to block there. */
extern _Thread_local int es__in_callback;

/* Called by es__complete for a background client: queues the completion
 * for es_client_poll (returns 1) or lets the caller run it now (0). */
int es__bg_deliver(es__bg *bg, es_client *c, const es_publish_result *r,
                   es_publish_cb cb, void *data);
/* Called once the client's handles are all closed: the memory stays for
 * es_client_close_sync to free. */
void es__bg_closed(es__bg *bg);

/* client.c */
void es__client_attach_bg(es_client *c, es__bg *bg);
es__bg *es__client_bg(const es_client *c);
void es__client_set_close_timeout(es_client *c, uint64_t ms);
void es__client_destroy(es_client *c);

#endif
