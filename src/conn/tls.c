/*
 * TLS for the transport, on OpenSSL. One SSL_CTX per handle (CA, client
 * certificate and key loaded once), one SSL per connection. Peer
 * verification is on unless the caller turned it off with the option named
 * for what it is (miscache_options_set_tls_insecure_skip_verify); the
 * certificate must name the host of the URL (DNS name, or IP address when
 * the host is one), and the host goes out as SNI.
 *
 * OpenSSL writes to the socket through a BIO of ours that uses
 * send(MSG_NOSIGNAL), so a closed connection gives EPIPE and never SIGPIPE,
 * as on the plain transport. Closing frees the SSL without a close_notify:
 * no byte is written, which is what a forked child must do.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "transport_ops.h"

struct miscache__tls {
  miscache__tls_head_t head; /* first: the functions transports take */
  SSL_CTX *ctx;
  bool verify;
  bool own_ca; /* a CA file was given (else the system trust store) */
};

static const miscache__transport_ops_t tls_ops; /* below */

/* ---- a socket BIO that never raises SIGPIPE ------------------------------ */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_fd(BIO *b) {
  return (int)(intptr_t)BIO_get_data(b);
}

static int bio_write(BIO *b, const char *buf, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n = send(bio_fd(b), buf, (size_t)len, MSG_NOSIGNAL);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    BIO_set_retry_write(b);
  return (int)n;
}

static int bio_read(BIO *b, char *buf, int len) {
  BIO_clear_retry_flags(b);
  ssize_t n = recv(bio_fd(b), buf, (size_t)len, 0);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
    BIO_set_retry_read(b);
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b, (void)num, (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static void make_bio_method(void) {
  BIO_METHOD *m =
      BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "miscache");
  if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
      BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create)) {
    bio_method = m;
    return;
  }
  BIO_meth_free(m);
}

/* ---- context --------------------------------------------------------------- */

/* The first queued OpenSSL error as text (and the queue cleared). */
static void ssl_errtext(char *buf, size_t n) {
  unsigned long e = ERR_get_error();
  if (e)
    ERR_error_string_n(e, buf, n);
  else
    snprintf(buf, n, "unknown error");
  ERR_clear_error();
}

miscache_status_t miscache__tls_new(const miscache__tls_conf_t *conf,
                                    miscache__tls_t **out, char *err,
                                    size_t errlen) {
  *out = NULL;
  char why[256];
  pthread_once(&bio_once, make_bio_method);
  miscache__tls_t *tls = calloc(1, sizeof *tls);
  if (!tls || !bio_method) {
    free(tls);
    snprintf(err, errlen, "TLS: out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  ERR_clear_error();
  tls->head.ops = &tls_ops; /* installed on the context */
  tls->ctx = SSL_CTX_new(TLS_client_method());
  if (!tls->ctx) {
    free(tls);
    snprintf(err, errlen, "TLS: out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  SSL_CTX_set_min_proto_version(tls->ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(tls->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  tls->verify = !conf->insecure_skip_verify;
  tls->own_ca = conf->cacert != NULL;
  SSL_CTX_set_verify(tls->ctx, tls->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE,
                     NULL);
  int ok = conf->cacert
               ? SSL_CTX_load_verify_locations(tls->ctx, conf->cacert, NULL)
               : SSL_CTX_set_default_verify_paths(tls->ctx);
  if (ok != 1) {
    ssl_errtext(why, sizeof why);
    snprintf(err, errlen, "TLS: cannot load the CA certificates %s%s: %s",
             conf->cacert ? "from " : "of the system trust store",
             conf->cacert ? conf->cacert : "", why);
    miscache__tls_free(tls);
    return MISCACHE_ERR_TLS;
  }
  if (conf->cert) {
    if (SSL_CTX_use_certificate_chain_file(tls->ctx, conf->cert) != 1) {
      ssl_errtext(why, sizeof why);
      snprintf(err, errlen, "TLS: cannot load the client certificate %s: %s",
               conf->cert, why);
      miscache__tls_free(tls);
      return MISCACHE_ERR_TLS;
    }
    if (SSL_CTX_use_PrivateKey_file(tls->ctx, conf->key, SSL_FILETYPE_PEM) !=
            1 ||
        SSL_CTX_check_private_key(tls->ctx) != 1) {
      ssl_errtext(why, sizeof why);
      snprintf(err, errlen,
               "TLS: cannot use the private key %s with the certificate %s: "
               "%s",
               conf->key, conf->cert, why);
      miscache__tls_free(tls);
      return MISCACHE_ERR_TLS;
    }
  }
  *out = tls;
  return MISCACHE_OK;
}

void miscache__tls_free(miscache__tls_t *tls) {
  if (!tls) return;
  SSL_CTX_free(tls->ctx);
  free(tls);
}

/* ---- handshake ------------------------------------------------------------- */

static bool is_ip(const char *host) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, host, buf) == 1 ||
         inet_pton(AF_INET6, host, buf) == 1;
}

/* Why the certificate was refused, in words an operator can act on. */
static void verify_reason(miscache__transport_t *t, const char *host,
                          long v, char *err, size_t errlen) {
  const char *text = X509_verify_cert_error_string(v);
  switch (v) {
  case X509_V_ERR_CERT_HAS_EXPIRED:
    snprintf(err, errlen,
             "TLS: certificate expired: the server's certificate has "
             "expired (%s)",
             text);
    break;
  case X509_V_ERR_CERT_NOT_YET_VALID:
    snprintf(err, errlen,
             "TLS: certificate not yet valid: check the clocks (%s)", text);
    break;
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
  case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
  case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
  case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
  case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
  case X509_V_ERR_CERT_SIGNATURE_FAILURE:
    snprintf(err, errlen,
             "TLS: unknown CA: the server's certificate is not signed by a "
             "CA in %s (%s)",
             t->tls->own_ca ? "the cacert file" : "the system trust store",
             text);
    break;
  case X509_V_ERR_HOSTNAME_MISMATCH:
  case X509_V_ERR_IP_ADDRESS_MISMATCH:
    snprintf(err, errlen,
             "TLS: name mismatch: the server's certificate is not for %s "
             "\"%s\" (%s)",
             v == X509_V_ERR_IP_ADDRESS_MISMATCH ? "IP address" : "host",
             host, text);
    break;
  default:
    snprintf(err, errlen, "TLS: certificate verify failed: %s", text);
  }
}

/* The SSL object of t, set up for host (SNI, the certificate check); no
 * byte sent yet. */
static miscache_status_t tls_begin(miscache__transport_t *t, const char *host,
                                   char *err, size_t errlen) {
  ERR_clear_error();
  SSL *ssl = SSL_new(t->tls->ctx);
  BIO *bio = ssl ? BIO_new(bio_method) : NULL;
  if (!bio) {
    SSL_free(ssl);
    snprintf(err, errlen, "TLS: out of memory");
    return MISCACHE_ERR_NOMEM;
  }
  BIO_set_data(bio, (void *)(intptr_t)t->fd);
  SSL_set_bio(ssl, bio, bio);
  t->ssl = ssl;
  bool ip = is_ip(host);
  if (!ip) SSL_set_tlsext_host_name(ssl, host); /* SNI: names only */
  if (t->tls->verify) {
    int set = ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)
                 : SSL_set1_host(ssl, host);
    if (set != 1) {
      snprintf(err, errlen, "TLS: cannot check the certificate against \"%s\"",
               host);
      return MISCACHE_ERR_TLS;
    }
  }
  SSL_set_connect_state(ssl);
  return MISCACHE_OK;
}

/* One step of the handshake: OK when done, MISS when it waits for t->want,
 * else the failure (err says why). */
static miscache_status_t tls_step(miscache__transport_t *t, const char *host,
                                  char *err, size_t errlen) {
  ERR_clear_error();
  int r = SSL_connect(t->ssl);
  if (r == 1) return MISCACHE_OK;
  int e = SSL_get_error(t->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    t->want = e == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT;
    return MISCACHE_MISS;
  }
  long v = SSL_get_verify_result(t->ssl);
  if (t->tls->verify && v != X509_V_OK) {
    verify_reason(t, host, v, err, errlen);
    ERR_clear_error();
    return MISCACHE_ERR_TLS;
  }
  if (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0) {
    snprintf(err, errlen,
             "TLS handshake failed: the server closed the connection (%s; "
             "is this a TLS port?)",
             errno ? strerror(errno) : "end of file");
    return MISCACHE_ERR_TLS;
  }
  char why[256];
  ssl_errtext(why, sizeof why);
  snprintf(err, errlen, "TLS handshake failed: %s", why);
  return MISCACHE_ERR_TLS;
}

static miscache_status_t tls_connect(miscache__transport_t *t,
                                     const char *host, int64_t deadline,
                                     char *err, size_t errlen) {
  miscache_status_t st = tls_begin(t, host, err, errlen);
  while (st == MISCACHE_OK && (st = tls_step(t, host, err, errlen)) ==
                                  MISCACHE_MISS) {
    miscache__tstatus_t s = miscache__poll_fd(t, deadline);
    if (s == MISCACHE__T_TIMEOUT) {
      snprintf(err, errlen,
               "TLS handshake timed out (is this a TLS port? a plain Redis "
               "port waits for the rest of a command)");
      return MISCACHE_ERR_UNAVAILABLE;
    }
    if (s != MISCACHE__T_OK) {
      snprintf(err, errlen, "TLS handshake: %s", t->errstr);
      return MISCACHE_ERR_UNAVAILABLE;
    }
    st = MISCACHE_OK;
  }
  return st;
}

/* ---- I/O ------------------------------------------------------------------- */

static ssize_t tls_result(miscache__transport_t *t, int r, const char *what) {
  int e = SSL_get_error(t->ssl, r);
  switch (e) {
  case SSL_ERROR_WANT_READ: t->want = POLLIN; return MISCACHE__IO_AGAIN;
  case SSL_ERROR_WANT_WRITE: t->want = POLLOUT; return MISCACHE__IO_AGAIN;
  case SSL_ERROR_ZERO_RETURN: return 0; /* close_notify: end of stream */
  case SSL_ERROR_SYSCALL:
    if (ERR_peek_error() == 0) {
      if (errno == 0 || r == 0) return 0; /* EOF without close_notify */
      snprintf(t->errstr, sizeof t->errstr, "%s: %s", what, strerror(errno));
      t->failure = MISCACHE__T_LOST;
      return MISCACHE__IO_ERROR;
    }
    /* fall through */
  default: {
    char why[200];
    ssl_errtext(why, sizeof why);
    snprintf(t->errstr, sizeof t->errstr, "TLS %s: %s", what, why);
    t->failure = MISCACHE__T_TLS;
    return MISCACHE__IO_ERROR;
  }
  }
}

static ssize_t tls_write(miscache__transport_t *t, const char *buf,
                         size_t len) {
  ERR_clear_error();
  errno = 0;
  int n = SSL_write(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
  return n > 0 ? n : tls_result(t, n, "write");
}

static ssize_t tls_read(miscache__transport_t *t, char *buf, size_t len) {
  ERR_clear_error();
  errno = 0;
  int n = SSL_read(t->ssl, buf, len > INT32_MAX ? INT32_MAX : (int)len);
  return n > 0 ? n : tls_result(t, n, "read");
}

static miscache__tstatus_t tls_wait(miscache__transport_t *t,
                                    int64_t deadline) {
  /* bytes OpenSSL already decrypted are not visible to poll() */
  if (t->want == POLLIN && SSL_pending(t->ssl) > 0) return MISCACHE__T_OK;
  return miscache__poll_fd(t, deadline);
}

/* Readable while idle: TLS 1.3 servers send session tickets after the
 * handshake, which are not a reason to drop the connection. Let OpenSSL
 * consume records; only application data, EOF or an error is "broken". */
static bool tls_broken(miscache__transport_t *t) {
  if (SSL_pending(t->ssl) > 0) return true;
  if (!miscache__fd_readable(t)) return false;
  char c;
  ERR_clear_error();
  int n = SSL_peek(t->ssl, &c, 1);
  if (n > 0) return true;
  int e = SSL_get_error(t->ssl, n);
  ERR_clear_error();
  return e != SSL_ERROR_WANT_READ;
}

static void tls_close(miscache__transport_t *t) {
  SSL_free(t->ssl); /* no SSL_shutdown: nothing is written */
  t->ssl = NULL;
}

static const miscache__transport_ops_t tls_ops = {
    "tls",    tls_connect, tls_begin,  tls_step, tls_write,
    tls_read, tls_wait,    tls_broken, tls_close};
