/* Server URL parsing. Pure; no I/O.
 *   redis[s]://[[user]:password@]host[:port][?params]
 *   redis[s]+sentinel://[[user]:password@]host[:port][,host[:port]...]/MASTER[?params]
 *   redis[s]+cluster://[[user]:password@]host[:port][,host[:port]...][?params]
 *   unix:///path[?params]
 * params: cacert, cert, key (TLS schemes), sentinel_user, sentinel_password
 * (sentinel schemes), and the deployment settings of settings.c; values
 * percent-decoded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

void miscache__wipe(void *p, size_t n) {
  volatile unsigned char *v = p; /* not optimised away before a free */
  while (n--) *v++ = 0;
}

void miscache__secret_free(char *secret) {
  if (!secret) return;
  /* do not leave the secret in freed memory */
  miscache__wipe(secret, strlen(secret));
  free(secret);
}

/* url for a message: whatever stands before its last '@' (the userinfo,
 * or what a mistyped scheme makes of it: "rediss//app:Hunter2@host") is
 * replaced by "***"; cut to 64 characters. */
static void redacted(const char *url, char *out, size_t outlen) {
  const char *at = strrchr(url, '@');
  if (!at) {
    snprintf(out, outlen, "%.64s", url);
    return;
  }
  const char *sep = strstr(url, "://");
  int keep = sep && sep < at ? (int)(sep + 3 - url) : 0;
  snprintf(out, outlen, "%.*s***@%.48s", keep > 24 ? 24 : keep, url, at + 1);
}

void miscache__tls_conf_clear(miscache__tls_conf_t *t) {
  free(t->cacert);
  free(t->cert);
  free(t->key);
  memset(t, 0, sizeof *t);
}

void miscache__endpoint_clear(miscache__endpoint_t *ep) {
  free(ep->host);
  free(ep->path);
  free(ep->user);
  miscache__secret_free(ep->password);
  miscache__tls_conf_clear(&ep->tls_conf);
  free(ep->master);
  for (size_t i = 0; i < ep->naddrs; i++) free(ep->addrs[i].host);
  free(ep->addrs);
  free(ep->sentinel_user);
  miscache__secret_free(ep->sentinel_password);
  memset(ep, 0, sizeof *ep);
}

bool miscache__dup(char **dst, const char *src) {
  *dst = src ? strdup(src) : NULL;
  return !src || *dst;
}

miscache_status_t miscache__tls_conf_copy(miscache__tls_conf_t *dst,
                                          const miscache__tls_conf_t *src) {
  miscache__tls_conf_t t = {.insecure_skip_verify = src->insecure_skip_verify};
  bool ok = miscache__dup(&t.cacert, src->cacert);
  ok = miscache__dup(&t.cert, src->cert) && ok;
  ok = miscache__dup(&t.key, src->key) && ok;
  if (!ok) {
    miscache__tls_conf_clear(&t);
    return MISCACHE_ERR_NOMEM;
  }
  *dst = t;
  return MISCACHE_OK;
}

miscache_status_t miscache__endpoint_copy(miscache__endpoint_t *dst,
                                          const miscache__endpoint_t *src) {
  miscache__endpoint_t e = {
      .kind = src->kind, .port = src->port, .tls = src->tls, .set = src->set};
  memcpy(e.val, src->val, sizeof e.val);
  memcpy(e.ns, src->ns, sizeof e.ns);
  bool ok = miscache__dup(&e.host, src->host);
  ok = miscache__dup(&e.path, src->path) && ok;
  ok = miscache__dup(&e.user, src->user) && ok;
  ok = miscache__dup(&e.password, src->password) && ok;
  ok = miscache__dup(&e.master, src->master) && ok;
  ok = miscache__dup(&e.sentinel_user, src->sentinel_user) && ok;
  ok = miscache__dup(&e.sentinel_password, src->sentinel_password) && ok;
  ok = miscache__tls_conf_copy(&e.tls_conf, &src->tls_conf) == MISCACHE_OK &&
       ok;
  if (ok && src->naddrs) {
    e.addrs = calloc(src->naddrs, sizeof *e.addrs);
    ok = e.addrs != NULL;
    for (size_t i = 0; ok && i < src->naddrs; i++) {
      e.naddrs = i + 1;
      e.addrs[i].port = src->addrs[i].port;
      ok = miscache__dup(&e.addrs[i].host, src->addrs[i].host);
    }
  }
  if (!ok) {
    miscache__endpoint_clear(&e);
    return MISCACHE_ERR_NOMEM;
  }
  *dst = e;
  return MISCACHE_OK;
}

static int hexval(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

/* Percent-decode [s, s+n) into a new string. NULL on a bad escape or %00
 * (*nomem false) or when out of memory (*nomem true). */
static char *pct_decode(const char *s, size_t n, bool *nomem) {
  char *out = malloc(n + 1);
  *nomem = out == NULL;
  if (!out) return NULL;
  size_t o = 0;
  for (size_t i = 0; i < n; i++) {
    if (s[i] != '%') {
      out[o++] = s[i];
      continue;
    }
    int h = i + 2 < n ? hexval(s[i + 1]) : -1;
    int l = i + 2 < n ? hexval(s[i + 2]) : -1;
    if (h < 0 || l < 0 || (h == 0 && l == 0)) {
      free(out);
      return NULL;
    }
    out[o++] = (char)(h * 16 + l);
    i += 2;
  }
  out[o] = 0;
  return out;
}

#define URL_FAIL(...)                                                          \
  do {                                                                         \
    snprintf(err, errlen, __VA_ARGS__);                                        \
    st = MISCACHE_ERR_URL;                                                     \
    goto fail;                                                                 \
  } while (0)

static bool has_ctl_or_space(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || *s == 0x7f) return true;
  return false;
}

/* "host[:port]" or "[v6][:port]" in [p, end). ERR_URL with err set. */
static miscache_status_t parse_hostport(const char *p, const char *end,
                                        int default_port,
                                        miscache__hostport_t *out, char *err,
                                        size_t errlen) {
  miscache_status_t st = MISCACHE_OK;
  miscache__hostport_t hp = {0};
  const char *host_end;
  const char *port_str = NULL;
  if (*p == '[') {
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (!rb) URL_FAIL("unterminated [ in IPv6 host");
    hp.host = strndup(p + 1, (size_t)(rb - p - 1));
    host_end = rb + 1;
    if (host_end < end) {
      if (*host_end != ':') URL_FAIL("unexpected text after ]");
      port_str = host_end + 1;
    }
  } else {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    host_end = colon ? colon : end;
    if (colon) port_str = colon + 1;
    hp.host = strndup(p, (size_t)(host_end - p));
  }
  if (!hp.host) {
    snprintf(err, errlen, "out of memory parsing URL");
    return MISCACHE_ERR_NOMEM;
  }
  if (!hp.host[0]) URL_FAIL("URL has no host");
  if (strpbrk(hp.host, "@[]/%,")) URL_FAIL("bad character in host \"%s\"", hp.host);
  hp.port = default_port;
  if (port_str) {
    long v = 0;
    if (port_str == end) URL_FAIL("empty port");
    for (const char *q = port_str; q < end; q++) {
      if (*q < '0' || *q > '9') URL_FAIL("port is not a number");
      v = v * 10 + (*q - '0');
      if (v > 65535) break;
    }
    if (v < 1 || v > 65535) URL_FAIL("port out of range 1..65535");
    hp.port = (int)v;
  }
  *out = hp;
  return MISCACHE_OK;
fail:
  free(hp.host);
  return st;
}

/* One "name=value" of the query into e: a TLS or Sentinel parameter here,
 * a deployment setting through settings.c. */
static miscache_status_t parse_param(const char *p, const char *end,
                                     miscache__endpoint_t *e, char *err,
                                     size_t errlen) {
  miscache_status_t st = MISCACHE_OK;
  bool nomem = false;
  const char *eq = memchr(p, '=', (size_t)(end - p));
  size_t nlen = (size_t)((eq ? eq : end) - p);
  char **slot = NULL;
  bool tls_only = false, sentinel_only = false;
#define PARAM(name) (nlen == sizeof name - 1 && memcmp(p, name, nlen) == 0)
  if (PARAM("cacert")) slot = &e->tls_conf.cacert, tls_only = true;
  else if (PARAM("cert")) slot = &e->tls_conf.cert, tls_only = true;
  else if (PARAM("key")) slot = &e->tls_conf.key, tls_only = true;
  else if (PARAM("sentinel_user"))
    slot = &e->sentinel_user, sentinel_only = true;
  else if (PARAM("sentinel_password"))
    slot = &e->sentinel_password, sentinel_only = true;
  bool may_be_empty = PARAM("namespace");
#undef PARAM
  if (!eq || (eq + 1 == end && !may_be_empty))
    URL_FAIL("URL parameter \"%.*s\" has no value", (int)(nlen > 64 ? 64 : nlen),
             p);
  char *value = pct_decode(eq + 1, (size_t)(end - eq - 1), &nomem);
  if (!value) {
    if (nomem) {
      snprintf(err, errlen, "out of memory parsing URL");
      return MISCACHE_ERR_NOMEM;
    }
    URL_FAIL("bad percent escape in URL parameter \"%.*s\"",
             (int)(nlen > 64 ? 64 : nlen), p);
  }
  if (!slot) {
    st = miscache__setting_parse(p, nlen, value, e, err, errlen);
    free(value);
    return st;
  }
  if (tls_only && !e->tls)
    snprintf(err, errlen, "URL parameter \"%.*s\" needs a TLS scheme (rediss://)",
             (int)nlen, p);
  else if (sentinel_only && e->kind != MISCACHE__EP_SENTINEL)
    snprintf(err, errlen, "URL parameter \"%.*s\" needs redis+sentinel://",
             (int)nlen, p);
  else if (*slot)
    snprintf(err, errlen, "URL parameter \"%.*s\" given twice", (int)nlen, p);
  else {
    *slot = value;
    return MISCACHE_OK;
  }
  if (slot == &e->sentinel_password)
    miscache__secret_free(value);
  else
    free(value);
  return MISCACHE_ERR_URL;
fail:
  return st;
}

static const struct {
  const char *prefix;
  bool tls;
  miscache__ep_kind_t kind;
} schemes[] = {
    {"redis://", false, MISCACHE__EP_TCP},
    {"rediss://", true, MISCACHE__EP_TCP},
    {"redis+sentinel://", false, MISCACHE__EP_SENTINEL},
    {"rediss+sentinel://", true, MISCACHE__EP_SENTINEL},
    {"redis+cluster://", false, MISCACHE__EP_CLUSTER},
    {"rediss+cluster://", true, MISCACHE__EP_CLUSTER},
};

/* "host[:port][,host[:port]...]" in [p, end) into e->addrs. */
static miscache_status_t parse_hostlist(const char *p, const char *end,
                                        int default_port,
                                        miscache__endpoint_t *e, char *err,
                                        size_t errlen) {
  size_t n = 1;
  for (const char *q = p; q < end; q++) n += *q == ',';
  e->addrs = calloc(n, sizeof *e->addrs);
  if (!e->addrs) {
    snprintf(err, errlen, "out of memory parsing URL");
    return MISCACHE_ERR_NOMEM;
  }
  for (const char *q = p; q <= end;) {
    const char *comma = memchr(q, ',', (size_t)(end - q));
    const char *item_end = comma ? comma : end;
    if (item_end == q) {
      snprintf(err, errlen, "empty host in the host list");
      return MISCACHE_ERR_URL;
    }
    miscache_status_t st = parse_hostport(q, item_end, default_port,
                                          &e->addrs[e->naddrs], err, errlen);
    if (st != MISCACHE_OK) return st;
    e->naddrs++;
    q = item_end + 1;
  }
  return MISCACHE_OK;
}

/* unix:///path (path: what follows "unix://", up to its query). */
static miscache_status_t parse_unix(const char *path, const char *end,
                                    miscache__endpoint_t *e, char *err,
                                    size_t errlen) {
  miscache_status_t st;
  bool nomem = false;
  if (path[0] != '/')
    URL_FAIL("unix URL needs an absolute path: unix:///path/to/socket");
  if (memchr(path, '#', (size_t)(end - path)))
    URL_FAIL("unix URL takes no fragment");
  e->kind = MISCACHE__EP_UNIX;
  e->path = pct_decode(path, (size_t)(end - path), &nomem);
  if (!e->path && nomem) {
    snprintf(err, errlen, "out of memory parsing URL");
    return MISCACHE_ERR_NOMEM;
  }
  if (!e->path) URL_FAIL("bad percent escape in unix socket path");
  return MISCACHE_OK;
fail:
  return st;
}

/* "[user:]password" in [p, at). */
static miscache_status_t parse_userinfo(const char *p, const char *at,
                                        miscache__endpoint_t *e, char *err,
                                        size_t errlen) {
  miscache_status_t st;
  bool nomem = false;
  const char *colon = memchr(p, ':', (size_t)(at - p));
  if (!colon) {
    /* "redis://secret@host": a lone password, as redis-cli reads it */
    e->password = pct_decode(p, (size_t)(at - p), &nomem);
  } else {
    if (colon > p) {
      e->user = pct_decode(p, (size_t)(colon - p), &nomem);
      if (!e->user) {
        if (nomem) goto oom;
        URL_FAIL("bad percent escape in URL user name");
      }
    }
    e->password = pct_decode(colon + 1, (size_t)(at - colon - 1), &nomem);
  }
  if (!e->password) {
    if (nomem) goto oom;
    URL_FAIL("bad percent escape in URL password");
  }
  if (!e->password[0] && !e->user) {
    free(e->password);
    e->password = NULL;
  } else if (!e->password[0]) {
    URL_FAIL("URL names a user without a password");
  }
  return MISCACHE_OK;
oom:
  snprintf(err, errlen, "out of memory parsing URL");
  return MISCACHE_ERR_NOMEM;
fail:
  return st;
}

/* The hosts in [hostpart, end) and the path after slash (NULL: none), as
 * the scheme wants them. */
static miscache_status_t parse_hosts(const char *hostpart, const char *slash,
                                     const char *end, miscache__endpoint_t *e,
                                     char *err, size_t errlen) {
  miscache_status_t st;
  bool nomem = false;
  const char *hosts_end = slash ? slash : end;
  if (e->kind == MISCACHE__EP_SENTINEL) {
    if (!slash || slash + 1 == end)
      URL_FAIL("redis+sentinel URL needs the master name as its path: "
               "redis+sentinel://host:26379[,host:port...]/mymaster");
    e->master = pct_decode(slash + 1, (size_t)(end - slash - 1), &nomem);
    if (!e->master && nomem) {
      snprintf(err, errlen, "out of memory parsing URL");
      return MISCACHE_ERR_NOMEM;
    }
    if (!e->master) URL_FAIL("bad percent escape in the master name");
    if (strchr(e->master, '/')) URL_FAIL("master name holds a '/'");
    return parse_hostlist(hostpart, hosts_end, 26379, e, err, errlen);
  }
  if (e->kind == MISCACHE__EP_CLUSTER) {
    if (slash && slash + 1 != end)
      URL_FAIL("a cluster URL takes no path: a cluster has only db 0");
    return parse_hostlist(hostpart, hosts_end, 6379, e, err, errlen);
  }
  if (slash && slash + 1 != end)
    URL_FAIL("database numbers in the URL are not used: databases are "
             "chosen per logical name (miscache_options_set_db)");
  if (memchr(hostpart, ',', (size_t)(hosts_end - hostpart)))
    URL_FAIL("a list of hosts needs redis+sentinel:// or redis+cluster://");
  miscache__hostport_t hp;
  st = parse_hostport(hostpart, hosts_end, 6379, &hp, err, errlen);
  if (st != MISCACHE_OK) return st;
  e->host = hp.host;
  e->port = hp.port;
  return MISCACHE_OK;
fail:
  return st;
}

/* "name=value&..." after the '?' at query. */
static miscache_status_t parse_query(const char *query,
                                     miscache__endpoint_t *e, char *err,
                                     size_t errlen) {
  miscache_status_t st;
  const char *q = query + 1;
  const char *qend = q + strlen(q);
  if (q == qend) URL_FAIL("empty URL query");
  while (q <= qend) {
    const char *amp = memchr(q, '&', (size_t)(qend - q));
    const char *item_end = amp ? amp : qend;
    if (item_end == q) URL_FAIL("empty URL parameter");
    st = parse_param(q, item_end, e, err, errlen);
    if (st != MISCACHE_OK) return st;
    q = item_end + 1;
  }
  return MISCACHE_OK;
fail:
  return st;
}

miscache_status_t miscache__url_parse(const char *url, miscache__endpoint_t *ep,
                                      char *err, size_t errlen) {
  miscache__endpoint_t e = {0};
  miscache_status_t st = MISCACHE_OK;
  if (!url) {
    snprintf(err, errlen, "URL is NULL");
    return MISCACHE_ERR_INVALID;
  }
  if (has_ctl_or_space(url))
    URL_FAIL("URL holds a space or control character");
  if (strncmp(url, "unix://", 7) == 0) {
    const char *query = strchr(url + 7, '?');
    st = parse_unix(url + 7, query ? query : url + strlen(url), &e, err,
                    errlen);
    if (st == MISCACHE_OK && query) st = parse_query(query, &e, err, errlen);
    if (st != MISCACHE_OK) goto fail;
    *ep = e;
    return MISCACHE_OK;
  }
  const char *p = NULL;
  for (size_t i = 0; i < sizeof schemes / sizeof *schemes; i++)
    if (strncmp(url, schemes[i].prefix, strlen(schemes[i].prefix)) == 0) {
      p = url + strlen(schemes[i].prefix);
      e.tls = schemes[i].tls;
      e.kind = schemes[i].kind;
    }
  if (!p) {
    char shown[96];
    redacted(url, shown, sizeof shown);
    URL_FAIL("unsupported URL scheme in \"%s\": use redis://, rediss://, "
             "redis+sentinel://, redis+cluster:// (or their rediss+ forms) "
             "or unix://",
             shown);
  }
  /* userinfo: everything up to the last '@' (a password may hold '/' or
   * '?'; an '@' in a parameter value must be written %40) */
  const char *at = strrchr(p, '@');
  const char *hostpart = at ? at + 1 : p;
  if (strchr(hostpart, '#')) URL_FAIL("redis URL takes no fragment");
  const char *query = strchr(hostpart, '?');
  const char *end = query ? query : hostpart + strlen(hostpart);
  const char *slash = memchr(hostpart, '/', (size_t)(end - hostpart));
  if (at && (st = parse_userinfo(p, at, &e, err, errlen)) != MISCACHE_OK)
    goto fail;
  st = parse_hosts(hostpart, slash, end, &e, err, errlen);
  if (st != MISCACHE_OK) goto fail;
  if (query && (st = parse_query(query, &e, err, errlen)) != MISCACHE_OK)
    goto fail;
  if (!e.tls_conf.cert != !e.tls_conf.key)
    URL_FAIL("URL parameters cert and key go together (client certificate "
             "and its private key)");
  *ep = e;
  return MISCACHE_OK;
fail:
  miscache__endpoint_clear(&e);
  return st;
}
