#include "json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "eventstore.h"

static const char es__hex[] = "0123456789abcdef";

/* Bytes a JSON string cannot hold as they are: controls, '"', '\\'. */
static const unsigned char es__esc[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1, ['\\'] = 1};

#define ES__ONES 0x0101010101010101ULL
#define ES__HIGHS 0x8080808080808080ULL

/* Nonzero when one of the eight bytes in x is '"', '\\' or < 0x20 (bytes
 * >= 0x80 too when with_high). Exact as a yes/no answer, and the lowest
 * flagged byte is a real hit: the borrows of the subtractions only spill
 * above a byte that is itself one. */
static inline uint64_t es__swar_special(uint64_t x, int with_high) {
  uint64_t q = x ^ (ES__ONES * '"'), b = x ^ (ES__ONES * '\\');
  return (((q - ES__ONES) & ~q) | ((b - ES__ONES) & ~b) |
          ((x - ES__ONES * 0x20) & (with_high ? ~(uint64_t)0 : ~x)) |
          (with_high ? x : 0)) &
         ES__HIGHS;
}

void es__json_write_string(es__buf *b, const char *s, size_t len) {
  size_t i = 0, run = 0;
  char *d;

  if (es__buf_reserve(b, len + 2) != 0)
    return;
  /* Most strings need no escaping: find out eight bytes at a time and copy
   * them whole. */
  while (len - i >= 8) {
    uint64_t x;
    memcpy(&x, s + i, 8);
    if (es__swar_special(x, 0))
      break;
    i += 8;
  }
  while (i < len && !es__esc[(unsigned char)s[i]])
    i++;
  if (i == len) {
    d = b->data + b->len;
    d[0] = '"';
    memcpy(d + 1, s, len);
    d[len + 1] = '"';
    b->len += len + 2;
    return;
  }
  b->data[b->len++] = '"';
  for (; i < len; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[6];
    size_t n = 2;

    if (c >= 0x20 && c != '"' && c != '\\')
      continue;
    es__buf_append(b, s + run, i - run);
    run = i + 1;
    esc[0] = '\\';
    switch (c) {
    case '"':
      esc[1] = '"';
      break;
    case '\\':
      esc[1] = '\\';
      break;
    case '\b':
      esc[1] = 'b';
      break;
    case '\f':
      esc[1] = 'f';
      break;
    case '\n':
      esc[1] = 'n';
      break;
    case '\r':
      esc[1] = 'r';
      break;
    case '\t':
      esc[1] = 't';
      break;
    default:
      esc[1] = 'u';
      esc[2] = '0';
      esc[3] = '0';
      esc[4] = es__hex[c >> 4];
      esc[5] = es__hex[c & 15];
      n = 6;
      break;
    }
    es__buf_append(b, esc, n);
  }
  es__buf_append(b, s + run, len - run);
  es__buf_append_char(b, '"');
}

static void es__json_write_number(es__buf *b, double d) {
  char tmp[32];
  int n;

  if (!isfinite(d)) {
    /* JSON has no NaN or infinity; cJSON writes null too. */
    es__buf_append(b, "null", 4);
    return;
  }
  if (d == floor(d) && fabs(d) < 9007199254740992.0) {
    es__buf_append_i64(b, (long long)d);
    return;
  }
  /* Shortest of 15 or 17 significant digits that reads back exactly. */
  n = snprintf(tmp, sizeof(tmp), "%.15g", d);
  if (strtod(tmp, NULL) != d)
    n = snprintf(tmp, sizeof(tmp), "%.17g", d);
  es__buf_append(b, tmp, (size_t)n);
}

void es__json_write(es__buf *b, const cJSON *item) {
  const cJSON *child;

  switch (item->type & 0xff) {
  case cJSON_False:
    es__buf_append(b, "false", 5);
    break;
  case cJSON_True:
    es__buf_append(b, "true", 4);
    break;
  case cJSON_NULL:
  case cJSON_Invalid:
    es__buf_append(b, "null", 4);
    break;
  case cJSON_Number:
    es__json_write_number(b, item->valuedouble);
    break;
  case cJSON_String:
    if (item->valuestring == NULL)
      es__buf_append(b, "null", 4);
    else
      es__json_write_string(b, item->valuestring, strlen(item->valuestring));
    break;
  case cJSON_Raw:
    if (item->valuestring != NULL)
      es__buf_append_str(b, item->valuestring);
    else
      es__buf_append(b, "null", 4);
    break;
  case cJSON_Array:
    es__buf_append_char(b, '[');
    for (child = item->child; child != NULL; child = child->next) {
      if (child != item->child)
        es__buf_append_char(b, ',');
      es__json_write(b, child);
    }
    es__buf_append_char(b, ']');
    break;
  case cJSON_Object:
    es__buf_append_char(b, '{');
    for (child = item->child; child != NULL; child = child->next) {
      const char *key = child->string ? child->string : "";
      if (child != item->child)
        es__buf_append_char(b, ',');
      es__json_write_string(b, key, strlen(key));
      es__buf_append_char(b, ':');
      es__json_write(b, child);
    }
    es__buf_append_char(b, '}');
    break;
  default:
    es__buf_append(b, "null", 4);
    break;
  }
}

int es__utf8_valid(const char *str, size_t len) {
  const unsigned char *s = (const unsigned char *)str;
  size_t i = 0;

  while (i < len) {
    unsigned char c = s[i];
    size_t n;
    unsigned int cp, min;

    if (c < 0x80) {
      i++;
      continue;
    }
    if ((c & 0xe0) == 0xc0) {
      n = 1, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      n = 2, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      n = 3, cp = c & 0x07, min = 0x10000;
    } else {
      return 0;
    }
    if (len - i <= n)
      return 0;
    for (size_t k = 1; k <= n; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += n + 1;
  }
  return 1;
}

int es__check_name_len(const char *s, size_t *len) {
  const unsigned char *p = (const unsigned char *)s;
  unsigned char high = 0;
  size_t i;

  if (s == NULL || s[0] == '\0')
    return ES_EINVAL;
  for (i = 0; p[i] != '\0'; i++) {
    if (p[i] < 0x20 || p[i] == 0x7f)
      return ES_EINVAL;
    high |= p[i];
  }
  if (len != NULL)
    *len = i;
  return (high & 0x80) == 0 || es__utf8_valid(s, i) ? 0 : ES_EUTF8;
}

int es__check_name(const char *s) {
  return es__check_name_len(s, NULL);
}

static int es__cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Duplicate keys: quadratic for the small objects events carry, sorted
 * copies of the key pointers for large ones so hostile input stays cheap. */
static int es__has_duplicate_keys(const cJSON *obj) {
  const cJSON *a, *b;
  const char **keys;
  size_t n = 0, i;
  int dup = 0;

  for (a = obj->child; a != NULL; a = a->next)
    n++;
  if (n <= 16) {
    for (a = obj->child; a != NULL; a = a->next)
      for (b = a->next; b != NULL; b = b->next)
        if (strcmp(a->string, b->string) == 0)
          return 1;
    return 0;
  }
  keys = es__malloc(n * sizeof(*keys));
  if (keys == NULL)
    return -1;
  for (i = 0, a = obj->child; a != NULL; a = a->next)
    keys[i++] = a->string;
  qsort(keys, n, sizeof(*keys), es__cmp_str);
  for (i = 1; i < n && !dup; i++)
    dup = strcmp(keys[i - 1], keys[i]) == 0;
  es__free(keys);
  return dup;
}

static int es__json_check_depth(const cJSON *item, int depth,
                                const char **what) {
  const cJSON *child;
  int rc;

  switch (item->type & 0xff) {
  case cJSON_String:
    if (item->valuestring != NULL &&
        !es__utf8_valid(item->valuestring, strlen(item->valuestring))) {
      *what = "a string is not valid UTF-8";
      return ES_EUTF8;
    }
    return 0;
  case cJSON_Raw:
    *what = "raw JSON values are not accepted";
    return ES_EINVAL;
  case cJSON_Object:
  case cJSON_Array:
    if (depth >= ES_JSON_MAX_DEPTH) {
      *what = "JSON nested deeper than the limit";
      return ES_EPARSE;
    }
    for (child = item->child; child != NULL; child = child->next) {
      if ((item->type & 0xff) == cJSON_Object) {
        if (child->string == NULL) {
          *what = "object member without a key";
          return ES_EINVAL;
        }
        if (!es__utf8_valid(child->string, strlen(child->string))) {
          *what = "an object key is not valid UTF-8";
          return ES_EUTF8;
        }
      }
      rc = es__json_check_depth(child, depth + 1, what);
      if (rc != 0)
        return rc;
    }
    if ((item->type & 0xff) == cJSON_Object) {
      rc = es__has_duplicate_keys(item);
      if (rc < 0) {
        *what = "out of memory";
        return ES_ENOMEM;
      }
      if (rc > 0) {
        *what = "an object has duplicate keys";
        return ES_EINVAL;
      }
    }
    return 0;
  default:
    return 0;
  }
}

int es__json_check(const cJSON *item, const char **what) {
  const char *dummy;
  return es__json_check_depth(item, 0, what ? what : &dummy);
}

int es__json_get_int(const cJSON *item, long long *out) {
  double d;

  if (!cJSON_IsNumber(item))
    return 0;
  d = item->valuedouble;
  if (!isfinite(d) || d != floor(d) || fabs(d) > 9007199254740992.0)
    return 0;
  *out = (long long)d;
  return 1;
}

/* Nesting of the raw text, counted before cJSON sees it so that hostile
 * input never reaches cJSON's own (much deeper) recursion limit. */
static int es__json_text_too_deep(const char *s, size_t len) {
  int depth = 0, in_string = 0;
  size_t i;

  for (i = 0; i < len; i++) {
    char c = s[i];
    if (in_string) {
      if (c == '\\')
        i++;
      else if (c == '"')
        in_string = 0;
    } else if (c == '"') {
      in_string = 1;
    } else if (c == '{' || c == '[') {
      if (++depth > ES_JSON_MAX_DEPTH)
        return 1;
    } else if (c == '}' || c == ']') {
      depth--;
    }
  }
  return 0;
}

int es__json_parse(const char *text, size_t len, cJSON **out,
                   const char **what) {
  const char *dummy, *end = NULL;
  cJSON *root;
  int rc, valid;

  if (what == NULL)
    what = &dummy;
  if (text == NULL) {
    *what = "no JSON text";
    return ES_EINVAL;
  }
  /* The validator first: strict where cJSON is lax (a bad hex digit in \u
   * reads as U+0000, numbers such as 01), and when it accepts, the nesting
   * is within the limit and there is no NUL byte. Only text it refuses is
   * looked at again, for the reason. */
  valid = es__json_validate(text, len, 0);
  if (valid != 0 && es__json_text_too_deep(text, len)) {
    *what = "JSON nested deeper than the limit";
    return ES_EPARSE;
  }
  if (valid != 0 && memchr(text, '\0', len) != NULL) {
    *what = "JSON text contains a NUL byte";
    return ES_EPARSE;
  }
  /* cJSON does not tell allocation failure from bad input; our allocator
   * (cJSON's hooks once es_replace_allocator ran) records failures. */
  es__alloc_failed = 0;
  root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
  if (root == NULL) {
    if (es__alloc_failed) {
      *what = "out of memory";
      return ES_ENOMEM;
    }
    *what = "invalid JSON";
    return ES_EPARSE;
  }
  while (end != NULL && (size_t)(end - text) < len &&
         (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r'))
    end++;
  if (end == NULL || (size_t)(end - text) != len) {
    cJSON_Delete(root);
    *what = "trailing characters after the JSON value";
    return ES_EPARSE;
  }
  if (valid == ES_EPARSE) { /* what only cJSON accepts */
    cJSON_Delete(root);
    *what = "invalid JSON";
    return ES_EPARSE;
  }
  rc = es__json_check(root, what);
  if (rc == 0 && valid != 0) { /* never laxer than the validator */
    *what = "JSON string is not valid UTF-8";
    rc = valid;
  }
  if (rc != 0) {
    cJSON_Delete(root);
    return rc;
  }
  *out = root;
  return 0;
}

/* ---- a validating scanner, for JSON text that is queued as is ---------- */

/* es_publish_json validates every event it queues, so this is on the
 * publishing hot path. It is one loop with an explicit stack instead of a
 * recursive descent, skips plain string content eight bytes at a time
 * (SWAR: portable, no alignment needed) and checks UTF-8 only in strings
 * that hold bytes >= 0x80. fuzz_event_parse compares it with cJSON. */

static const unsigned char *es__ws_slow(const unsigned char *p,
                                        const unsigned char *end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

/* Compact JSON has no whitespace: test one byte before calling. */
#define ES__WS(p, end)                                                         \
  do {                                                                         \
    if ((p) < (end) && *(p) <= ' ')                                            \
      (p) = es__ws_slow((p), (end));                                           \
  } while (0)

/* Bytes that end a run of plain string content: controls, '"', '\\' and
 * (so that UTF-8 is checked only when present) bytes >= 0x80. */
#define ES__S4(a) a, a, a, a
#define ES__S16(a) ES__S4(a), ES__S4(a), ES__S4(a), ES__S4(a)
static const unsigned char es__str_stop[256] = {
    ES__S16(1), ES__S16(1), /* 0x00-0x1f */
    0,          0,          1,          0,          0, 0, 0, 0, 0,
    0,          0,          0,          0,          0, 0, 0, /* 0x20-0x2f: '"'
                                                              */
    ES__S16(0), ES__S16(0),                                  /* 0x30-0x4f */
    0,          0,          0,          0,          0, 0, 0, 0, 0,
    0,          0,          0,          1,          0, 0, 0, /* 0x50-0x5f: '\\'
                                                              */
    ES__S16(0), ES__S16(0),                                  /* 0x60-0x7f */
    ES__S16(2), ES__S16(2), ES__S16(2), ES__S16(2),          /* 0x80-0xbf */
    ES__S16(2), ES__S16(2), ES__S16(2), ES__S16(2),          /* 0xc0-0xff */
};
#undef ES__S4
#undef ES__S16

/* Moves p to the first hit of es__swar_special: its lowest flagged byte is a
 * real one, which is the first in memory on a little-endian machine;
 * elsewhere a byte loop finds it (it is within the eight). */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) &&                            \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ES__TO_FIRST_HIT(p, hit) ((p) += (size_t)__builtin_ctzll(hit) / 8)
#else
#define ES__TO_FIRST_HIT(p, hit)                                               \
  do {                                                                         \
    while (es__str_stop[*(p)] == 0)                                            \
      (p)++;                                                                   \
  } while (0)
#endif

/* The scanner's loop is faster with the string scan inside it. */
#if defined(__GNUC__)
#define ES__ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ES__ALWAYS_INLINE inline
#endif

#define ES__BAD_HEX4 0x10000u

/* The four hex digits at p as a number, or ES__BAD_HEX4. */
static unsigned es__hex4(const unsigned char *p, const unsigned char *end) {
  unsigned v = 0;
  int i;

  if (end - p < 4)
    return ES__BAD_HEX4;
  for (i = 0; i < 4; i++) {
    unsigned char c = p[i];
    if (c >= '0' && c <= '9')
      v = v * 16 + (unsigned)(c - '0');
    else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
      v = v * 16 + (unsigned)((c | 0x20) - 'a' + 10);
    else
      return ES__BAD_HEX4;
  }
  return v;
}

/* p is just after the opening quote; returns the byte after the closing
 * one, or NULL with *err set. */
static ES__ALWAYS_INLINE const unsigned char *
es__scan_str(const unsigned char *p, const unsigned char *end, int *err) {
  const unsigned char *start = p;
  int high = 0;

  for (;;) {
    for (;;) { /* to the next byte that is not plain content */
      uint64_t x, hit;
      if (end - p < 8) {
        while (p < end && es__str_stop[*p] == 0)
          p++;
        break;
      }
      memcpy(&x, p, 8);
      if ((hit = es__swar_special(x, 1)) != 0) {
        ES__TO_FIRST_HIT(p, hit);
        break;
      }
      p += 8;
    }
    if (p >= end || *p < 0x20) {
      *err = ES_EPARSE;
      return NULL;
    }
    if (*p >= 0x80) { /* non-ASCII: checked once the string is known */
      high = 1;
      p++;
      continue;
    }
    if (*p == '"')
      break;
    /* a backslash */
    if (++p >= end) {
      *err = ES_EPARSE;
      return NULL;
    }
    if (*p == 'u') {
      /* As cJSON reads it: a low surrogate alone, or a high one not
       * followed by a low one, is an error. */
      unsigned code = es__hex4(p + 1, end);
      if (code == ES__BAD_HEX4 || (code >= 0xdc00 && code <= 0xdfff)) {
        *err = ES_EPARSE;
        return NULL;
      }
      p += 5;
      if (code >= 0xd800 && code <= 0xdbff) {
        unsigned low = end - p >= 6 && p[0] == '\\' && p[1] == 'u'
                           ? es__hex4(p + 2, end)
                           : ES__BAD_HEX4;
        if (low < 0xdc00 || low > 0xdfff) {
          *err = ES_EPARSE;
          return NULL;
        }
        p += 6;
      }
    } else if (*p == '"' || *p == '\\' || *p == '/' || *p == 'b' || *p == 'f' ||
               *p == 'n' || *p == 'r' || *p == 't') {
      p++;
    } else {
      *err = ES_EPARSE;
      return NULL;
    }
  }
  if (high && !es__utf8_valid((const char *)start, (size_t)(p - start))) {
    *err = ES_EUTF8;
    return NULL;
  }
  return p + 1;
}

static const unsigned char *es__scan_num(const unsigned char *p,
                                         const unsigned char *end) {
  if (p < end && *p == '-')
    p++;
  if (p >= end)
    return NULL;
  if (*p == '0') {
    p++;
  } else if (*p >= '1' && *p <= '9') {
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  } else {
    return NULL;
  }
  if (p < end && *p == '.') {
    p++;
    if (p >= end || *p < '0' || *p > '9')
      return NULL;
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    if (p >= end || *p < '0' || *p > '9')
      return NULL;
    while (p < end && *p >= '0' && *p <= '9')
      p++;
  }
  return p;
}

int es__json_validate(const char *text, size_t len, int want_object) {
  const unsigned char *p = (const unsigned char *)text, *end = p + len;
  unsigned char open[ES_JSON_MAX_DEPTH]; /* '}' or ']' per open container */
  int depth = 0, err = ES_EPARSE;

  ES__WS(p, end);
  if (want_object && (p >= end || *p != '{'))
    return ES_EINVAL;

value: /* p: where a value may start, after optional whitespace */
  ES__WS(p, end);
  if (p >= end)
    return ES_EPARSE;
  switch (*p) {
  case '"':
    if ((p = es__scan_str(p + 1, end, &err)) == NULL)
      return err;
    break;
  case '{':
  case '[':
    if (depth == ES_JSON_MAX_DEPTH)
      return ES_EPARSE;
    open[depth++] = *p == '{' ? '}' : ']';
    p++;
    ES__WS(p, end);
    if (p < end && *p == open[depth - 1]) { /* empty */
      p++;
      depth--;
      break;
    }
    if (open[depth - 1] == ']')
      goto value;
    goto key;
  case 't':
    if (end - p < 4 || memcmp(p, "true", 4) != 0)
      return ES_EPARSE;
    p += 4;
    break;
  case 'f':
    if (end - p < 5 || memcmp(p, "false", 5) != 0)
      return ES_EPARSE;
    p += 5;
    break;
  case 'n':
    if (end - p < 4 || memcmp(p, "null", 4) != 0)
      return ES_EPARSE;
    p += 4;
    break;
  default:
    if ((p = es__scan_num(p, end)) == NULL)
      return ES_EPARSE;
    break;
  }

  /* after a value: a separator, the end of containers, or the end */
  while (depth > 0) {
    ES__WS(p, end);
    if (p >= end)
      return ES_EPARSE;
    if (*p == ',') {
      p++;
      if (open[depth - 1] == ']')
        goto value;
      ES__WS(p, end);
      goto key;
    }
    if (*p != open[depth - 1])
      return ES_EPARSE;
    p++;
    depth--;
  }
  ES__WS(p, end);
  return p == end ? 0 : ES_EPARSE;

key: /* p: at the '"' of a member's name, whitespace skipped */
  if (p >= end || *p != '"')
    return ES_EPARSE;
  if ((p = es__scan_str(p + 1, end, &err)) == NULL)
    return err;
  ES__WS(p, end);
  if (p >= end || *p != ':')
    return ES_EPARSE;
  p++;
  goto value;
}
