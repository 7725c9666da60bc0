/* JSON codec: compact UTF-8 out, any JSON value in. Pure. */
#include <stdio.h>
#include <stdlib.h>

#include "base/base.h"

json_t *miscache__decode(const char *buf, size_t len, char *err,
                         size_t errlen) {
  /* any value (plain numbers are counters); what jansson's json_loadb
   * with JSON_DECODE_ANY accepts, read without its per-byte stream */
  return miscache__json_parse(buf, len, err, errlen);
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
