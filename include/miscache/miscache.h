/*
 * libmiscache — C client library for the MIS v2 cache layer on Redis.
 * Include this header; it pulls in the others.
 */
#ifndef MISCACHE_MISCACHE_H
#define MISCACHE_MISCACHE_H

#include "common.h"
#include "client.h"
#include "keys.h"
#include "cache.h"
#include "lock.h"
#include "session.h"
#include "permissions.h"
#include "master.h"
#include "stats.h"
#include "temp.h"
#include "batch.h"
#include "gift.h"
#include "events.h"
#include "monitor.h"
#include "queue.h"
#include "patterns.h"
#include "async.h"
#include <miscache/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Library version string at run time, e.g. "0.4.0". Static string. */
MISCACHE_EXPORT const char *miscache_version(void);

#ifdef __cplusplus
}
#endif
#endif /* MISCACHE_MISCACHE_H */
