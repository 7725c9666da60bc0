/* Options: defaults, setters (each copies its input), deep copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void miscache__options_defaults(miscache_options_t *o) {
  memset(o, 0, sizeof *o);
  o->connect_timeout_ms = 1000;
  o->command_timeout_ms = 1000;
  for (int i = 0; i < MISCACHE_DB_COUNT; i++) o->db[i] = i;
  for (int i = 0; i < MISCACHE_TTL_CLASS_COUNT; i++)
    o->ttl[i] = miscache_ttl_default((miscache_ttl_class_t)i);
  o->scan_count = 1000;
  o->unlink_batch = 1000;
  o->pending_max = 1024;
}

miscache_options_t *miscache_options_new(void) {
  miscache_options_t *o = malloc(sizeof *o);
  if (o) miscache__options_defaults(o);
  return o;
}

void miscache__options_clear(miscache_options_t *o) {
  miscache__endpoint_clear(&o->ep);
  o->ep_set = false;
}

void miscache_options_free(miscache_options_t *opts) {
  if (!opts) return;
  miscache__options_clear(opts);
  free(opts);
}

miscache_status_t miscache__options_copy(miscache_options_t *dst,
                                         const miscache_options_t *src) {
  *dst = *src;
  memset(&dst->ep, 0, sizeof dst->ep);
  return miscache__endpoint_copy(&dst->ep, &src->ep);
}

const char *miscache_options_errmsg(const miscache_options_t *opts) {
  return opts ? opts->err : "";
}

miscache_status_t miscache_options_set_url(miscache_options_t *opts,
                                           const char *url) {
  if (!opts || !url) return MISCACHE_ERR_INVALID;
  miscache__endpoint_t ep;
  opts->err[0] = 0;
  miscache_status_t st =
      miscache__url_parse(url, &ep, opts->err, sizeof opts->err);
  if (st != MISCACHE_OK) return st;
  miscache__endpoint_clear(&opts->ep);
  opts->ep = ep;
  opts->ep_set = true;
  return MISCACHE_OK;
}

static miscache_status_t set_endpoint(miscache_options_t *opts,
                                      miscache__ep_kind_t kind,
                                      const char *where, int port) {
  char *copy = strdup(where);
  if (!copy) return MISCACHE_ERR_NOMEM;
  /* credentials stay: they are set separately */
  free(opts->ep.host);
  free(opts->ep.path);
  opts->ep.host = kind == MISCACHE__EP_TCP ? copy : NULL;
  opts->ep.path = kind == MISCACHE__EP_UNIX ? copy : NULL;
  opts->ep.port = port;
  opts->ep.kind = kind;
  opts->ep_set = true;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_tcp(miscache_options_t *opts,
                                           const char *host, int port) {
  if (!opts || !host || !host[0] || port < 1 || port > 65535)
    return MISCACHE_ERR_INVALID;
  return set_endpoint(opts, MISCACHE__EP_TCP, host, port);
}

miscache_status_t miscache_options_set_unix(miscache_options_t *opts,
                                            const char *path) {
  if (!opts || !path || !path[0]) return MISCACHE_ERR_INVALID;
  return set_endpoint(opts, MISCACHE__EP_UNIX, path, 0);
}

miscache_status_t miscache_options_set_auth(miscache_options_t *opts,
                                            const char *user,
                                            const char *password) {
  if (!opts) return MISCACHE_ERR_INVALID;
  char *u = user && user[0] && password ? strdup(user) : NULL;
  char *p = password ? strdup(password) : NULL;
  if ((user && user[0] && password && !u) || (password && !p)) {
    free(u);
    free(p);
    return MISCACHE_ERR_NOMEM;
  }
  free(opts->ep.user);
  miscache__secret_free(opts->ep.password);
  opts->ep.user = u;
  opts->ep.password = p;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_connect_timeout(miscache_options_t *opts,
                                                       int ms) {
  if (!opts || ms <= 0) return MISCACHE_ERR_INVALID;
  opts->connect_timeout_ms = ms;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_command_timeout(miscache_options_t *opts,
                                                       int ms) {
  if (!opts || ms <= 0) return MISCACHE_ERR_INVALID;
  opts->command_timeout_ms = ms;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_db(miscache_options_t *opts,
                                          miscache_db_t db, int number) {
  if (!opts || !miscache__db_valid(db) || number < 0 || number > 1000000)
    return MISCACHE_ERR_INVALID;
  opts->db[db] = number;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_ttl(miscache_options_t *opts,
                                           miscache_ttl_class_t cls,
                                           int64_t seconds) {
  /* upper bound keeps seconds * 1000 and jitter far from overflow */
  if (!opts || !miscache__ttl_valid(cls) || seconds <= 0 ||
      seconds > INT64_C(1) << 40)
    return MISCACHE_ERR_INVALID;
  opts->ttl[cls] = seconds;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_ttl_jitter(miscache_options_t *opts,
                                                  unsigned percent) {
  if (!opts || percent > 50) return MISCACHE_ERR_INVALID;
  opts->jitter_pct = percent;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_namespace(miscache_options_t *opts,
                                                 const char *ns) {
  if (!opts) return MISCACHE_ERR_INVALID;
  if (!ns) ns = "";
  size_t n = strlen(ns);
  if (n > MISCACHE__NS_MAX) return MISCACHE_ERR_KEY;
  for (size_t i = 0; i < n; i++) {
    char ch = ns[i];
    bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || strchr("_-.:", ch);
    if (!ok) return MISCACHE_ERR_KEY;
  }
  memcpy(opts->ns, ns, n + 1);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_scan(miscache_options_t *opts,
                                            unsigned scan_count,
                                            unsigned unlink_batch) {
  if (!opts || scan_count < 1 || scan_count > 1000000 || unlink_batch < 1 ||
      unlink_batch > 100000)
    return MISCACHE_ERR_INVALID;
  opts->scan_count = scan_count;
  opts->unlink_batch = unlink_batch;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_lazy_connect(miscache_options_t *opts,
                                                    bool lazy) {
  if (!opts) return MISCACHE_ERR_INVALID;
  opts->lazy = lazy;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_pending_max(miscache_options_t *opts,
                                                   unsigned max) {
  if (!opts || max < 1 || max > 1000000) return MISCACHE_ERR_INVALID;
  opts->pending_max = max;
  return MISCACHE_OK;
}
