/*
 * libFuzzer target for the server URL parser (miscache_options_set_url).
 * Properties:
 *   - OK leaves no message and a usable endpoint: TCP with a non-empty host
 *     and a port in 1..65535, or unix with a non-empty path;
 *   - a refusal is ERR_URL with a message, and leaves the endpoint set
 *     before it exactly in place;
 *   - the same URL parses the same way twice.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "base/base.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *url = malloc(size + 1);
  if (!url) return 0;
  memcpy(url, data, size);
  url[size] = 0; /* an embedded NUL ends the URL, as in C */
  miscache_options_t *o = miscache_options_new();
  if (!o) FAIL("options_new");
  if (miscache_options_set_url(o, "redis://127.0.0.1:6399") != MISCACHE_OK)
    FAIL("known-good URL refused");
  miscache_status_t st = miscache_options_set_url(o, url);
  const char *msg = miscache_options_errmsg(o);
  const miscache__endpoint_t *ep = &o->ep;
  if (st == MISCACHE_OK) {
    if (msg[0]) FAIL("OK with a message: %s", msg);
    if (ep->kind == MISCACHE__EP_TCP &&
        (!ep->host || !ep->host[0] || ep->port < 1 || ep->port > 65535))
      FAIL("accepted TCP endpoint without host or port");
    if (ep->kind == MISCACHE__EP_UNIX && (!ep->path || !ep->path[0]))
      FAIL("accepted unix endpoint without a path");
  } else {
    if (st != MISCACHE_ERR_URL) FAIL("status %d for a bad URL", (int)st);
    if (!msg[0]) FAIL("refused without a message");
    if (ep->kind != MISCACHE__EP_TCP || !ep->host ||
        strcmp(ep->host, "127.0.0.1") != 0 || ep->port != 6399 || ep->user ||
        ep->password)
      FAIL("a refused URL changed the endpoint set before it");
  }
  /* deterministic */
  miscache_options_t *o2 = miscache_options_new();
  if (miscache_options_set_url(o2, url) != st) FAIL("second parse differs");
  miscache_options_free(o2);
  miscache_options_free(o);
  free(url);
  return 0;
}
