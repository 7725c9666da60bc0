/* Server URL parsing: redis://[[user]:password@]host[:port] and
 * unix:///path. Pure; no I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

void miscache__secret_free(char *secret) {
  if (!secret) return;
  /* do not leave the secret in freed memory */
  volatile char *p = secret;
  while (*p) *p++ = 0;
  free(secret);
}

void miscache__endpoint_clear(miscache__endpoint_t *ep) {
  free(ep->host);
  free(ep->path);
  free(ep->user);
  miscache__secret_free(ep->password);
  memset(ep, 0, sizeof *ep);
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

miscache_status_t miscache__endpoint_copy(miscache__endpoint_t *dst,
                                          const miscache__endpoint_t *src) {
  miscache__endpoint_t e = {.kind = src->kind, .port = src->port};
  e.host = dup_or_null(src->host);
  e.path = dup_or_null(src->path);
  e.user = dup_or_null(src->user);
  e.password = dup_or_null(src->password);
  if ((src->host && !e.host) || (src->path && !e.path) ||
      (src->user && !e.user) || (src->password && !e.password)) {
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

miscache_status_t miscache__url_parse(const char *url, miscache__endpoint_t *ep,
                                      char *err, size_t errlen) {
  miscache__endpoint_t e = {0};
  miscache_status_t st = MISCACHE_OK;
  bool nomem = false;
  if (!url) {
    snprintf(err, errlen, "URL is NULL");
    return MISCACHE_ERR_INVALID;
  }
  if (has_ctl_or_space(url))
    URL_FAIL("URL holds a space or control character");

  if (strncmp(url, "unix://", 7) == 0) {
    const char *path = url + 7;
    if (path[0] != '/')
      URL_FAIL("unix URL needs an absolute path: unix:///path/to/socket");
    if (strchr(path, '?') || strchr(path, '#'))
      URL_FAIL("unix URL takes no query or fragment");
    e.kind = MISCACHE__EP_UNIX;
    e.path = pct_decode(path, strlen(path), &nomem);
    if (!e.path) {
      if (nomem) goto oom;
      URL_FAIL("bad percent escape in unix socket path");
    }
    *ep = e;
    return MISCACHE_OK;
  }
  if (strncmp(url, "redis://", 8) != 0) {
    if (strncmp(url, "rediss://", 9) == 0)
      URL_FAIL("rediss:// (TLS) is not supported by this build");
    URL_FAIL("unsupported URL scheme in \"%.64s\": use redis:// or unix://",
             url);
  }
  const char *p = url + 8;
  const char *end = p + strlen(p);
  /* userinfo: everything up to the last '@' (a password may hold '/') */
  const char *at = strrchr(p, '@');
  const char *hostpart = at ? at + 1 : p;
  if (strpbrk(hostpart, "?#")) URL_FAIL("redis URL takes no query or fragment");
  const char *slash = strchr(hostpart, '/');
  if (slash) {
    if (slash[1] != 0)
      URL_FAIL("database numbers in the URL are not used: databases are "
               "chosen per logical name (miscache_options_set_db)");
    end = slash;
  }
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon) {
      /* "redis://secret@host": a lone password, as redis-cli reads it */
      e.password = pct_decode(p, (size_t)(at - p), &nomem);
    } else {
      if (colon > p) {
        e.user = pct_decode(p, (size_t)(colon - p), &nomem);
        if (!e.user) {
          if (nomem) goto oom;
          URL_FAIL("bad percent escape in URL user name");
        }
      }
      e.password = pct_decode(colon + 1, (size_t)(at - colon - 1), &nomem);
    }
    if (!e.password) {
      if (nomem) goto oom;
      URL_FAIL("bad percent escape in URL password");
    }
    if (!e.password[0] && !e.user) {
      free(e.password);
      e.password = NULL;
    } else if (!e.password[0]) {
      URL_FAIL("URL names user \"%s\" without a password", e.user);
    }
    p = at + 1;
  }
  const char *host_end;
  const char *port_str = NULL;
  if (*p == '[') {
    const char *rb = memchr(p, ']', (size_t)(end - p));
    if (!rb) URL_FAIL("unterminated [ in IPv6 host");
    e.host = strndup(p + 1, (size_t)(rb - p - 1));
    host_end = rb + 1;
    if (host_end < end) {
      if (*host_end != ':') URL_FAIL("unexpected text after ]");
      port_str = host_end + 1;
    }
  } else {
    const char *colon = memchr(p, ':', (size_t)(end - p));
    host_end = colon ? colon : end;
    if (colon) port_str = colon + 1;
    e.host = strndup(p, (size_t)(host_end - p));
  }
  if (!e.host) goto oom;
  if (!e.host[0]) URL_FAIL("URL has no host");
  if (strpbrk(e.host, "@[]/%")) URL_FAIL("bad character in host \"%s\"", e.host);
  e.port = 6379;
  if (port_str) {
    long v = 0;
    if (port_str == end) URL_FAIL("empty port");
    for (const char *q = port_str; q < end; q++) {
      if (*q < '0' || *q > '9') URL_FAIL("port is not a number");
      v = v * 10 + (*q - '0');
      if (v > 65535) break;
    }
    if (v < 1 || v > 65535) URL_FAIL("port out of range 1..65535");
    e.port = (int)v;
  }
  e.kind = MISCACHE__EP_TCP;
  *ep = e;
  return MISCACHE_OK;
oom:
  snprintf(err, errlen, "out of memory parsing URL");
  st = MISCACHE_ERR_NOMEM;
fail:
  miscache__endpoint_clear(&e);
  return st;
}
