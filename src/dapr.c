/* The Dapr HTTP protocol (see dapr.h and DESIGN.md, "Wire format"). */
#include "dapr.h"

#include <string.h>
#include <time.h>

#include "alloc.h"
#include "json.h"

static void es__append_pct(es__buf *b, const char *s);

static int es__unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
}

int es__dapr_append_segment(es__buf *b, const char *name) {
  int rc;

  rc = es__check_name(name);
  if (rc != 0)
    return rc;
  /* Encoded or not, these would move the path up or nowhere. */
  if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
    return ES_EINVAL;
  es__append_pct(b, name);
  return es__buf_error(b);
}

static void es__append_pct(es__buf *b, const char *s) {
  static const char hex[] = "0123456789ABCDEF";
  const unsigned char *p;
  for (p = (const unsigned char *)s; *p; p++) {
    if (es__unreserved(*p)) {
      es__buf_append_char(b, (char)*p);
    } else {
      char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
      es__buf_append(b, esc, 3);
    }
  }
}

int es__dapr_append_query(es__buf *b, const es_header *md, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    int rc = es__check_name(md[i].name);
    if (rc != 0)
      return rc;
    if (md[i].value == NULL)
      return ES_EINVAL;
    if (!es__utf8_valid(md[i].value, strlen(md[i].value)))
      return ES_EUTF8;
    es__buf_append_str(b, i == 0 ? "?metadata." : "&metadata.");
    es__append_pct(b, md[i].name);
    es__buf_append_char(b, '=');
    es__append_pct(b, md[i].value);
  }
  return es__buf_error(b);
}

void es__dapr_cloudevent_begin(es__buf *b, const char *id, const char *source,
                               const char *type, long long unix_time) {
  char when[32];
  time_t t = (time_t)unix_time;
  struct tm tm;

  gmtime_r(&t, &tm);
  strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
  es__buf_append_str(b, "{\"specversion\":\"1.0\",\"id\":");
  es__json_write_string(b, id, strlen(id));
  es__buf_append_str(b, ",\"source\":");
  es__json_write_string(b, source, strlen(source));
  es__buf_append_str(b, ",\"type\":");
  es__json_write_string(b, type, strlen(type));
  es__buf_append_str(b, ",\"time\":\"");
  es__buf_append_str(b, when);
  es__buf_append_str(b, "\",\"datacontenttype\":\"application/json\","
                        "\"data\":");
}

void es__dapr_cloudevent_end(es__buf *b) {
  es__buf_append_char(b, '}');
}

int es__dapr_failed_entries(const char *body, size_t len,
                            void (*each)(const char *id, const char *error,
                                         void *arg),
                            void *arg) {
  cJSON *j = cJSON_ParseWithLength(body, len);
  const cJSON *list, *e;
  int n = 0;

  list = cJSON_GetObjectItemCaseSensitive(j, "failedEntries");
  if (!cJSON_IsArray(list)) {
    cJSON_Delete(j);
    return -1;
  }
  cJSON_ArrayForEach(e, list) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(e, "entryId");
    const cJSON *er = cJSON_GetObjectItemCaseSensitive(e, "error");
    if (!cJSON_IsString(id))
      continue;
    each(id->valuestring, cJSON_IsString(er) ? er->valuestring : NULL, arg);
    n++;
  }
  cJSON_Delete(j);
  return n;
}

static int es__is_tchar(unsigned char c) {
  return es__unreserved(c) || strchr("!#$%&'*+^`|", c) != NULL;
}

int es__dapr_check_header(const char *name, const char *value) {
  const unsigned char *p;

  if (name == NULL || name[0] == '\0' || value == NULL)
    return ES_EINVAL;
  for (p = (const unsigned char *)name; *p; p++)
    if (!es__is_tchar(*p))
      return ES_EINVAL;
  for (p = (const unsigned char *)value; *p; p++)
    if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
      return ES_EINVAL;
  return es__utf8_valid(value, strlen(value)) ? 0 : ES_EUTF8;
}

void es__dapr_head_rest(es__buf *b, const char *host, const char *ctype,
                        const char *token) {
  es__buf_append_str(b, " HTTP/1.1\r\nHost: ");
  es__buf_append_str(b, host);
  es__buf_append_str(b, "\r\nContent-Type: ");
  es__buf_append_str(b, ctype);
  es__buf_append_str(b, "\r\n");
  if (token != NULL && token[0] != '\0') {
    es__buf_append_str(b, "dapr-api-token: ");
    es__buf_append_str(b, token);
    es__buf_append_str(b, "\r\n");
  }
  es__buf_append_str(b, "Content-Length: ");
}

static void es__append_headers_json(es__buf *b, const es_header *h, size_t n) {
  size_t i;
  for (i = 0; i < n; i++) {
    es__buf_append_char(b, ',');
    es__json_write_string(b, h[i].name, strlen(h[i].name));
    es__buf_append_char(b, ':');
    es__json_write_string(b, h[i].value, strlen(h[i].value));
  }
}

void es__dapr_binding_tail(es__buf *b, const es_header *a, size_t na,
                           const es_header *p, size_t np) {
  es__buf_append_str(b, ",\"operation\":\"create\",\"metadata\":{"
                        "\"content-type\":\"application/json\"");
  es__append_headers_json(b, a, na);
  es__append_headers_json(b, p, np);
  es__buf_append_str(b, "}}");
}

void es__dapr_get_head(es__buf *b, const char *path, const char *host,
                       const char *token) {
  es__buf_append_str(b, "GET ");
  es__buf_append_str(b, path);
  es__buf_append_str(b, " HTTP/1.1\r\nHost: ");
  es__buf_append_str(b, host);
  es__buf_append_str(b, "\r\n");
  if (token != NULL && token[0] != '\0') {
    es__buf_append_str(b, "dapr-api-token: ");
    es__buf_append_str(b, token);
    es__buf_append_str(b, "\r\n");
  }
  es__buf_append_str(b, "\r\n");
}

/* Dapr error answers are {"errorCode": "...", "message": "..."}; a 401 has
 * a plain text body, which becomes the message. */
static void es__parse_error_body(const es__http_response *res,
                                 es__dapr_outcome *out) {
  cJSON *j;
  const cJSON *code, *msg;
  size_t n = res->body_len;

  if (n == 0)
    return;
  j = cJSON_ParseWithLength(res->body, n);
  if (j != NULL && cJSON_IsObject(j)) {
    code = cJSON_GetObjectItemCaseSensitive(j, "errorCode");
    msg = cJSON_GetObjectItemCaseSensitive(j, "message");
    if (cJSON_IsString(code))
      out->error_code = es__strdup(code->valuestring);
    if (cJSON_IsString(msg))
      out->message = es__strdup(msg->valuestring);
  } else {
    /* Keep a readable, bounded, single-line excerpt. */
    size_t i, k = n < 200 ? n : 200;
    out->message = es__strndup(res->body, k);
    for (i = 0; out->message && i < k; i++)
      if ((unsigned char)out->message[i] < 0x20)
        out->message[i] = ' ';
  }
  cJSON_Delete(j);
}

void es__dapr_classify(int err, int written, const es__http_response *res,
                       es__dapr_outcome *out) {
  memset(out, 0, sizeof(*out));
  out->retry_after_ms = -1;
  if (err != 0) {
    out->code = err;
    out->not_sent = !written;
    switch (err) {
    case ES_ECANCELED:
    case ES_ETOOLARGE:
    case ES_ENOMEM:
      out->retryable = 0;
      break;
    default:
      /* Connection errors, timeouts, resets, malformed answers. */
      out->retryable = 1;
      break;
    }
    return;
  }
  out->http_status = res->status;
  if (res->status >= 200 && res->status < 300)
    return;
  out->retry_after_ms = res->retry_after_ms;
  es__parse_error_body(res, out);
  switch (res->status) {
  case 401:
    out->code = ES_EUNAUTHORIZED;
    break;
  case 408:
  case 429:
  case 500:
  case 502:
  case 503:
  case 504:
    out->code = ES_EHTTP;
    out->retryable = 1;
    break;
  default:
    out->code = ES_EHTTP;
    break;
  }
}

void es__dapr_outcome_free(es__dapr_outcome *out) {
  es__free(out->error_code);
  es__free(out->message);
  out->error_code = out->message = NULL;
}

int es__dapr_has_component(const char *body, size_t len, const char *name) {
  cJSON *j = cJSON_ParseWithLength(body, len);
  const cJSON *comps, *c;
  int found = 0;

  if (j == NULL)
    return ES_EPARSE;
  comps = cJSON_GetObjectItemCaseSensitive(j, "components");
  if (!cJSON_IsArray(comps) && !cJSON_IsNull(comps) && comps != NULL) {
    cJSON_Delete(j);
    return ES_EPARSE;
  }
  cJSON_ArrayForEach(c, comps) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(c, "name");
    if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0)
      found = 1;
  }
  cJSON_Delete(j);
  return found;
}
