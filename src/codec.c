/* JSON codec: compact UTF-8 out, any JSON value in. Pure. */
#include <stdio.h>
#include <stdlib.h>

#include "internal.h"

json_t *miscache__decode(const char *buf, size_t len, char *err,
                         size_t errlen) {
  json_error_t je;
  /* JSON_DECODE_ANY: plain numbers (counters) are JSON too. jansson rejects
   * invalid UTF-8, NUL escapes and nesting deeper than its limit. */
  json_t *v = json_loadb(buf, len, JSON_DECODE_ANY, &je);
  if (!v && err)
    snprintf(err, errlen, "invalid JSON at byte %d: %s", je.position,
             je.text);
  return v;
}

char *miscache__encode(const json_t *v, size_t *len) {
  char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
  if (s && len) {
    size_t n = 0;
    while (s[n]) n++;
    *len = n;
  }
  return s;
}
