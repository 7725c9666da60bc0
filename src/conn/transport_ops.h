/* The transport's table of functions and its struct: shared by transport.c
 * (plain sockets, the reply reader, deadlines) and tls.c. Not for anyone
 * else. */
#ifndef MISCACHE_TRANSPORT_OPS_H
#define MISCACHE_TRANSPORT_OPS_H

#include <sys/types.h>

#include "transport.h"

/* Results of the io functions below, besides a byte count. */
#define MISCACHE__IO_AGAIN (-1) /* wait for t->want, then call again */
#define MISCACHE__IO_ERROR (-2) /* t->errstr and t->failure say why */

typedef struct miscache__transport_ops {
  const char *name;
  /* on the connected socket t->fd: finish setting up (TLS handshake) */
  miscache_status_t (*connect)(miscache__transport_t *t, const char *host,
                               int64_t deadline, char *err, size_t errlen);
  /* the same in steps, for the async handle: begin sets up (no I/O), step
   * goes on: OK when done, MISCACHE_MISS when it waits for t->want */
  miscache_status_t (*begin)(miscache__transport_t *t, const char *host,
                             char *err, size_t errlen);
  miscache_status_t (*step)(miscache__transport_t *t, const char *host,
                            char *err, size_t errlen);
  /* >= 0 bytes written, or IO_AGAIN / IO_ERROR */
  ssize_t (*write)(miscache__transport_t *t, const char *buf, size_t len);
  /* > 0 bytes read, 0 at EOF, or IO_AGAIN / IO_ERROR */
  ssize_t (*read)(miscache__transport_t *t, char *buf, size_t len);
  /* wait for t->want until deadline: T_OK when ready */
  miscache__tstatus_t (*wait)(miscache__transport_t *t, int64_t deadline);
  /* an idle connection is readable: closed by the peer, or stray bytes? */
  bool (*broken)(miscache__transport_t *t);
  /* release the layer's state without writing */
  void (*close)(miscache__transport_t *t);
} miscache__transport_ops_t;

struct miscache__transport {
  const miscache__transport_ops_t *ops;
  int fd;
  short want;        /* POLLIN or POLLOUT after IO_AGAIN */
  struct miscache__reader *reader;
  void *ssl;         /* TLS: the SSL object */
  miscache__tls_t *tls;
  miscache__tstatus_t failure; /* what an IO_ERROR was */
  /* a connect in steps (miscache__transport_open with steps): 3 the host
   * name is being resolved (fd: an eventfd, readable when done), 1 the TCP
   * connect is under way, 2 the layer's handshake, 0 done; the addresses
   * left to try and the host (SNI, the certificate check) */
  int stage;
  struct addrinfo *ai_all, *ai_next;
  char *host;
  struct miscache__resolve *resolving; /* stage 3: a name's resolution */
  char errstr[256];
};

/* Poll t->fd for t->want until deadline; EINTR polls again with the time
 * that is left. */
miscache__tstatus_t miscache__poll_fd(miscache__transport_t *t,
                                      int64_t deadline);
/* poll(POLLIN, 0) on t->fd. */
bool miscache__fd_readable(miscache__transport_t *t);

/* What a TLS context (tls.c) begins with: its table of functions,
 * installed by miscache__tls_new, so a transport given a context takes its
 * functions from it without naming tls.c. */
typedef struct miscache__tls_head {
  const miscache__transport_ops_t *ops;
} miscache__tls_head_t;

#endif /* MISCACHE_TRANSPORT_OPS_H */
