/* A program built against the installed library only, as a user would. */
#include <stdio.h>
#include <string.h>

#include <eventstore.h>
#include <uv.h>

static int seen, done_ok;

static void on_request(es_client *c, const es_request_info *req, void *arg) {
  (void)c;
  (void)arg;
  seen = strstr(req->body, "\"event_name\":\"installed\"") != NULL;
}

static void on_done(es_client *c, const es_publish_result *r, void *d) {
  (void)c;
  (void)d;
  done_ok = r->status == 0;
}

int main(void) {
  uv_loop_t loop;
  es_client_options o;
  es_client *client;
  es_event *ev;

  printf("libeventstore %s\n", es_version_string());
  uv_loop_init(&loop);
  es_client_options_init(&o);
  o.endpoint = "http://127.0.0.1:1";
  o.dry_run = 1; /* nothing is sent */
  o.request_cb = on_request;
  if (es_client_init(&loop, &client, &o) != 0 ||
      es_event_new(&ev, "consumer", "installed", NULL) != 0 ||
      es_publish_event_simple(client, ev, NULL, on_done, NULL) != 0)
    return 1;
  es_event_free(ev);
  uv_run(&loop, UV_RUN_DEFAULT);
  es_client_close(client, NULL);
  uv_run(&loop, UV_RUN_DEFAULT);
  if (uv_loop_close(&loop) != 0)
    return 1;
  printf("consumer: request seen %d, completed %d\n", seen, done_ok);
  return seen && done_ok ? 0 : 1;
}
