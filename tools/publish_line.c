#include "publish_line.h"

#include <stdio.h>
#include <string.h>

int es_publish_parse_line(const char *line, size_t len,
                          const cJSON *base_custom, es_event **ev,
                          cJSON **custom, char *err, size_t errlen) {
  cJSON *root, *md, *merged = NULL, *item;
  size_t i;
  int rc;

  *ev = NULL;
  *custom = NULL;
  for (i = 0; i < len; i++)
    if (line[i] != ' ' && line[i] != '\t' && line[i] != '\r')
      break;
  if (i == len) {
    snprintf(err, errlen, "empty line");
    return ES_EINVAL;
  }
  /* The event parser says precisely what is wrong with the line. */
  rc = es_event_parse(ev, line, len, err, errlen);
  if (rc != 0)
    return rc;
  root = cJSON_ParseWithLength(line, len);
  if (root == NULL) { /* cannot happen after es_event_parse, but be safe */
    es_event_free(*ev);
    *ev = NULL;
    snprintf(err, errlen, "invalid JSON");
    return ES_EPARSE;
  }
  md = cJSON_GetObjectItemCaseSensitive(root, "metadata");
  if (base_custom != NULL || cJSON_IsObject(md)) {
    merged =
        base_custom ? cJSON_Duplicate(base_custom, 1) : cJSON_CreateObject();
    if (merged == NULL)
      goto nomem;
    cJSON *from = cJSON_IsObject(md) ? md : NULL;
    cJSON_ArrayForEach(item, from) {
      cJSON *copy = cJSON_Duplicate(item, 1);
      if (copy == NULL)
        goto nomem;
      cJSON_DeleteItemFromObjectCaseSensitive(merged, item->string);
      if (!cJSON_AddItemToObject(merged, item->string, copy)) {
        cJSON_Delete(copy);
        goto nomem;
      }
    }
  }
  cJSON_Delete(root);
  *custom = merged;
  return 0;

nomem:
  cJSON_Delete(merged);
  cJSON_Delete(root);
  es_event_free(*ev);
  *ev = NULL;
  snprintf(err, errlen, "out of memory");
  return ES_ENOMEM;
}

int es_publish_add_metadata_arg(cJSON *obj, const char *arg) {
  const char *eq = strchr(arg, '=');
  char key[256];
  cJSON *v;

  if (eq == NULL || eq == arg || (size_t)(eq - arg) >= sizeof(key))
    return ES_EINVAL;
  memcpy(key, arg, (size_t)(eq - arg));
  key[eq - arg] = '\0';
  v = cJSON_Parse(eq + 1);
  if (v == NULL)
    v = cJSON_CreateString(eq + 1);
  if (v == NULL)
    return ES_ENOMEM;
  cJSON_DeleteItemFromObjectCaseSensitive(obj, key);
  if (!cJSON_AddItemToObject(obj, key, v)) {
    cJSON_Delete(v);
    return ES_ENOMEM;
  }
  return 0;
}
