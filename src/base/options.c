/* Options: defaults, setters (each copies its input), deep copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

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
  o->backoff_min_ms = 100;
  o->backoff_max_ms = 5000;
  o->stampede.single_flight = true;
  o->stampede.lease_ms = 2000;
  o->stampede.early_ms = 100;
  miscache__limits_default(&o->limits);
  o->scan_timeout_ms = 30000;
  o->near.max_entries = 10000;
  o->near.max_bytes = (size_t)64 << 20;
  o->near.ping_ms = 100;
}

miscache_options_t *miscache_options_new(void) {
  miscache_options_t *o = malloc(sizeof *o);
  if (o) miscache__options_defaults(o);
  return o;
}

void miscache__options_clear(miscache_options_t *o) {
  miscache__endpoint_clear(&o->ep);
  o->ep_set = false;
  miscache__tls_conf_clear(&o->tls);
  o->tls_on = false;
  free(o->sentinel_user);
  miscache__secret_free(o->sentinel_password);
  o->sentinel_user = o->sentinel_password = NULL;
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
  memset(&dst->tls, 0, sizeof dst->tls);
  dst->sentinel_user = dst->sentinel_password = NULL;
  if (miscache__endpoint_copy(&dst->ep, &src->ep) != MISCACHE_OK ||
      miscache__tls_conf_copy(&dst->tls, &src->tls) != MISCACHE_OK ||
      !miscache__dup(&dst->sentinel_user, src->sentinel_user) ||
      !miscache__dup(&dst->sentinel_password, src->sentinel_password)) {
    miscache__options_clear(dst);
    return MISCACHE_ERR_NOMEM;
  }
  return MISCACHE_OK;
}

/* Replace *slot with a copy of v (NULL clears). false: out of memory. */
static bool replace_str(char **slot, const char *v, bool secret) {
  char *c = v ? strdup(v) : NULL;
  if (v && !c) return false;
  if (secret)
    miscache__secret_free(*slot);
  else
    free(*slot);
  *slot = c;
  return true;
}

miscache_status_t miscache__options_endpoint(const miscache_options_t *o,
                                             const char *url,
                                             miscache__endpoint_t *out,
                                             char *err, size_t errlen) {
  miscache__endpoint_t ep;
  miscache_status_t st = url ? miscache__url_parse(url, &ep, err, errlen)
                             : miscache__endpoint_copy(&ep, &o->ep);
  if (st != MISCACHE_OK) {
    if (st == MISCACHE_ERR_NOMEM) snprintf(err, errlen, "out of memory");
    return st;
  }
  bool ok = true;
  if (url && o->ep.password) { /* miscache_options_set_auth() wins */
    ok = replace_str(&ep.user, o->ep.user, false) &&
         replace_str(&ep.password, o->ep.password, true);
  }
  if (o->tls_on) {
    ep.tls = true;
    if (o->tls.cacert) ok = ok && replace_str(&ep.tls_conf.cacert, o->tls.cacert, false);
    if (o->tls.cert) ok = ok && replace_str(&ep.tls_conf.cert, o->tls.cert, false);
    if (o->tls.key) ok = ok && replace_str(&ep.tls_conf.key, o->tls.key, false);
  }
  if (o->tls.insecure_skip_verify) ep.tls_conf.insecure_skip_verify = true;
  if (o->sentinel_password) {
    ok = ok && replace_str(&ep.sentinel_user, o->sentinel_user, false) &&
         replace_str(&ep.sentinel_password, o->sentinel_password, true);
  }
  if (!ok) {
    miscache__endpoint_clear(&ep);
    snprintf(err, errlen, "out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  if (ep.tls && ep.kind == MISCACHE__EP_UNIX) {
    miscache__endpoint_clear(&ep);
    snprintf(err, errlen, "TLS over a unix socket is not supported");
    return MISCACHE_ERR_INVALID;
  }
  *out = ep;
  return MISCACHE_OK;
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
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_CONNECT_TIMEOUT);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_command_timeout(miscache_options_t *opts,
                                                       int ms) {
  if (!opts || ms <= 0) return MISCACHE_ERR_INVALID;
  opts->command_timeout_ms = ms;
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_COMMAND_TIMEOUT);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_db(miscache_options_t *opts,
                                          miscache_db_t db, int number) {
  if (!opts || !miscache__db_valid(db) || number < 0 || number > 1000000)
    return MISCACHE_ERR_INVALID;
  opts->db[db] = number;
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_DB_SESSION + (int)db);
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
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_TTL_SESSION + (int)cls);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_ttl_jitter(miscache_options_t *opts,
                                                  unsigned percent) {
  if (!opts || percent > 50) return MISCACHE_ERR_INVALID;
  opts->jitter_pct = percent;
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_JITTER);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_namespace(miscache_options_t *opts,
                                                 const char *ns) {
  if (!opts) return MISCACHE_ERR_INVALID;
  if (!ns) ns = "";
  size_t n = strlen(ns);
  if (!miscache__ns_valid(ns, n)) return MISCACHE_ERR_KEY;
  memcpy(opts->ns, ns, n + 1);
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_NAMESPACE);
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
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_SCAN_COUNT) |
               MISCACHE__SET_BIT(MISCACHE__SET_UNLINK_BATCH);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_lazy_connect(miscache_options_t *opts,
                                                    bool lazy) {
  if (!opts) return MISCACHE_ERR_INVALID;
  opts->lazy = lazy;
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_LAZY);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_pending_max(miscache_options_t *opts,
                                                   unsigned max) {
  if (!opts || max < 1 || max > 1000000) return MISCACHE_ERR_INVALID;
  opts->pending_max = max;
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_PENDING_MAX);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_tls(miscache_options_t *opts,
                                           const char *cacert,
                                           const char *cert,
                                           const char *key) {
  if (!opts || (!cert != !key) || (cacert && !cacert[0]) ||
      (cert && !cert[0]) || (key && !key[0]))
    return MISCACHE_ERR_INVALID;
  miscache__tls_conf_t t = {.insecure_skip_verify =
                                opts->tls.insecure_skip_verify};
  if (!miscache__dup(&t.cacert, cacert) || !miscache__dup(&t.cert, cert) ||
      !miscache__dup(&t.key, key)) {
    miscache__tls_conf_clear(&t);
    return MISCACHE_ERR_NOMEM;
  }
  miscache__tls_conf_clear(&opts->tls);
  opts->tls = t;
  opts->tls_on = true;
  return MISCACHE_OK;
}

miscache_status_t
miscache_options_set_tls_insecure_skip_verify(miscache_options_t *opts,
                                              bool skip) {
  if (!opts) return MISCACHE_ERR_INVALID;
  opts->tls.insecure_skip_verify = skip;
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_TLS_INSECURE);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_sentinel_auth(miscache_options_t *opts,
                                                     const char *user,
                                                     const char *password) {
  if (!opts || (user && user[0] && !password)) return MISCACHE_ERR_INVALID;
  char *u = NULL, *p = NULL;
  if (!miscache__dup(&u, user && user[0] ? user : NULL) || !miscache__dup(&p, password)) {
    free(u);
    free(p);
    return MISCACHE_ERR_NOMEM;
  }
  free(opts->sentinel_user);
  miscache__secret_free(opts->sentinel_password);
  opts->sentinel_user = u;
  opts->sentinel_password = p;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_hash_tags(miscache_options_t *opts,
                                                bool on) {
  if (!opts) return MISCACHE_ERR_INVALID;
  opts->hash_tags = on;
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_HASH_TAGS);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_stampede(miscache_options_t *opts,
                                                const miscache_stampede_t *s) {
  if (!opts) return MISCACHE_ERR_INVALID;
  const uint64_t all = MISCACHE__SET_BIT(MISCACHE__SET_SINGLE_FLIGHT) |
                       MISCACHE__SET_BIT(MISCACHE__SET_STAMPEDE_WAIT) |
                       MISCACHE__SET_BIT(MISCACHE__SET_LEASE) |
                       MISCACHE__SET_BIT(MISCACHE__SET_LEASE_MS) |
                       MISCACHE__SET_BIT(MISCACHE__SET_EARLY) |
                       MISCACHE__SET_BIT(MISCACHE__SET_EARLY_MS);
  if (!s) { /* the defaults, chosen: the URL's stampede settings lose */
    miscache_options_t d;
    miscache__options_defaults(&d);
    opts->stampede = d.stampede;
    opts->set |= all;
    return MISCACHE_OK;
  }
  if (s->wait_ms < 0 || s->lease_ms < 0 || s->early_ms < 0 ||
      s->lease_ms > 600000 || s->early_ms > 600000 || s->wait_ms > 600000)
    return MISCACHE_ERR_INVALID;
  opts->stampede = *s;
  /* a field left 0 takes the URL's value, else the default */
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_SINGLE_FLIGHT);
  if (s->wait_ms) opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_STAMPEDE_WAIT);
  if (s->lease_categories) opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_LEASE);
  if (s->lease_ms) opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_LEASE_MS);
  if (s->early_categories) opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_EARLY);
  if (s->early_ms) opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_EARLY_MS);
  if (!opts->stampede.lease_ms) opts->stampede.lease_ms = 2000;
  if (!opts->stampede.early_ms) opts->stampede.early_ms = 100;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_near_cache(miscache_options_t *opts,
                                                  const miscache_near_t *n) {
  if (!opts) return MISCACHE_ERR_INVALID;
  miscache_options_t d;
  miscache__options_defaults(&d);
  if (!n) { /* off, chosen: a URL's near=on loses */
    opts->near = d.near;
    opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_NEAR);
    return MISCACHE_OK;
  }
  uint64_t all = (1ull << MISCACHE_KEY_FAMILY_COUNT) - 1;
  if ((n->families & MISCACHE__NEAR_NEVER) || (n->families & ~all) ||
      (n->ping_ms && (n->ping_ms < 10 || n->ping_ms > 60000)))
    return MISCACHE_ERR_INVALID;
  opts->near = *n;
  /* a field left 0 takes the URL's value, else the default */
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_NEAR) |
               MISCACHE__SET_BIT(MISCACHE__SET_NEAR_COPY);
  if (n->ping_ms) opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_NEAR_PING);
  if (n->max_entries)
    opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_NEAR_MAX_ENTRIES);
  if (n->max_bytes) opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_NEAR_MAX_BYTES);
  if (!opts->near.families) opts->near.families = MISCACHE__NEAR_DEFAULT;
  if (!opts->near.max_entries) opts->near.max_entries = 10000;
  if (!opts->near.max_bytes) opts->near.max_bytes = (size_t)64 << 20;
  if (!opts->near.ping_ms) opts->near.ping_ms = 100;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_backoff(miscache_options_t *opts,
                                               int min_ms, int max_ms) {
  if (!opts || min_ms < 1 || max_ms < min_ms || max_ms > 600000)
    return MISCACHE_ERR_INVALID;
  opts->backoff_min_ms = min_ms;
  opts->backoff_max_ms = max_ms;
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_BACKOFF_MIN) |
               MISCACHE__SET_BIT(MISCACHE__SET_BACKOFF_MAX);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_reply_limits(miscache_options_t *opts,
                                                   size_t max_elements,
                                                   size_t max_bulk,
                                                   size_t max_reply_bytes) {
  if (!opts) return MISCACHE_ERR_INVALID;
  miscache__limits_t l;
  miscache__limits_default(&l);
  if (max_elements) l.max_elements = max_elements;
  if (max_bulk) l.max_bulk = max_bulk;
  if (max_reply_bytes) l.max_bytes = max_reply_bytes;
  if ((uint64_t)l.max_elements > UINT64_C(1) << 31 || l.max_bulk < 1024 ||
      (uint64_t)l.max_bulk > UINT64_C(1) << 32 || l.max_bytes < 4096 ||
      (uint64_t)l.max_bytes > UINT64_C(1) << 34 || l.max_bytes < l.max_bulk) {
    snprintf(opts->err, sizeof opts->err,
             "reply limits: elements 1..2^31, bulk 1 KiB..4 GiB, reply 4 "
             "KiB..16 GiB and at least the bulk limit");
    return MISCACHE_ERR_INVALID;
  }
  opts->limits = l;
  if (max_elements) opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_MAX_ELEMENTS);
  if (max_bulk) opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_MAX_BULK);
  if (max_reply_bytes)
    opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_MAX_REPLY_BYTES);
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_scan_timeout(miscache_options_t *opts,
                                                   int ms) {
  if (!opts || ms < 1 || ms > 3600000) return MISCACHE_ERR_INVALID;
  opts->scan_timeout_ms = ms;
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_SCAN_TIMEOUT);
  return MISCACHE_OK;
}

void miscache__limits_default(miscache__limits_t *l) {
  l->max_elements = MISCACHE_DEFAULT_MAX_ELEMENTS;
  l->max_bulk = MISCACHE_DEFAULT_MAX_BULK;
  l->max_bytes = MISCACHE_DEFAULT_MAX_REPLY_BYTES;
}

miscache_status_t miscache__options_resolve(miscache_options_t *o, char *err,
                                            size_t errlen) {
  const char *env = getenv("MISCACHE_URL");
  const char *url = o->ep_set     ? NULL
                    : env && env[0] ? env
                                    : "redis://127.0.0.1:6379";
  miscache__endpoint_t ep;
  miscache_status_t st = miscache__options_endpoint(o, url, &ep, err, errlen);
  if (st == MISCACHE_OK) {
    miscache__endpoint_clear(&o->ep);
    o->ep = ep;
    o->ep_set = true;
    st = miscache__options_apply(o, &o->ep, err, errlen);
    /* the URL's tls_insecure_skip_verify reaches the endpoint the TLS
     * layer reads (the setter's was laid over it above) */
    if (o->tls.insecure_skip_verify) o->ep.tls_conf.insecure_skip_verify = true;
  }
  if (st != MISCACHE_OK && url && url == env) {
    char msg[MISCACHE_ERRMSG_SIZE];
    snprintf(msg, sizeof msg, "MISCACHE_URL: %s", err);
    snprintf(err, errlen, "%s", msg);
  }
  return st;
}

/* The text of o's effective settings into buf; see client.h. */
static miscache_status_t describe_into(miscache_options_t *o, char *buf,
                                       size_t size, size_t *len_out) {
  char err[MISCACHE_ERRMSG_SIZE];
  miscache_status_t st = miscache__options_resolve(o, err, sizeof err);
  size_t n;
  if (st != MISCACHE_OK) {
    n = strlen(err);
    if (buf && size) snprintf(buf, size, "%s", err);
  } else {
    n = miscache__options_describe(o, buf, size);
    if (n >= size) st = MISCACHE_ERR_INVALID;
  }
  if (len_out) *len_out = n;
  return st;
}

miscache_status_t miscache_options_describe(const miscache_options_t *opts,
                                            char *buf, size_t size,
                                            size_t *len_out) {
  if (len_out) *len_out = 0;
  if ((!buf && size) || (buf && !size)) return MISCACHE_ERR_INVALID;
  miscache_options_t o;
  miscache_status_t st;
  if (opts)
    st = miscache__options_copy(&o, opts);
  else {
    miscache__options_defaults(&o);
    st = MISCACHE_OK;
  }
  if (st != MISCACHE_OK) return st;
  st = describe_into(&o, buf, size, len_out);
  miscache__options_clear(&o);
  return st;
}

miscache_status_t miscache_url_describe(const char *url, char *buf,
                                        size_t size, size_t *len_out) {
  if (len_out) *len_out = 0;
  if ((!buf && size) || (buf && !size)) return MISCACHE_ERR_INVALID;
  miscache_options_t o;
  miscache__options_defaults(&o);
  miscache_status_t st = url ? miscache_options_set_url(&o, url) : MISCACHE_OK;
  if (st != MISCACHE_OK) {
    if (buf) snprintf(buf, size, "%s", o.err);
    if (len_out) *len_out = strlen(o.err);
  } else {
    st = describe_into(&o, buf, size, len_out);
  }
  miscache__options_clear(&o);
  return st;
}

miscache_status_t miscache_options_set_event_hook(miscache_options_t *opts,
                                                  miscache_event_fn fn,
                                                  void *userdata) {
  if (!opts) return MISCACHE_ERR_INVALID;
  opts->hook.fn = fn;
  opts->hook.userdata = fn ? userdata : NULL;
  return MISCACHE_OK;
}

miscache_status_t miscache_options_set_slow_call(miscache_options_t *opts,
                                                 int ms) {
  if (!opts || ms < 0 || ms > 3600000) return MISCACHE_ERR_INVALID;
  opts->slow_call_ms = ms;
  opts->set |= MISCACHE__SET_BIT(MISCACHE__SET_SLOW_CALL);
  return MISCACHE_OK;
}
