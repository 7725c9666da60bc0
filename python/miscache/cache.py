"""miscache.Cache: the C library's keyspace from Python, on redis-py.

Keys, databases, TTLs, payload checks, invalidation events and locks all
come from the keyspace table the C library prints, so both sides agree:
a key Python builds is the key C builds, a value either side writes the
other reads, an event removes the same keys, a lock excludes both."""
import datetime
import json
import os
import random
import socket
import time
import uuid

import redis

from . import keys as _keys
from . import values as _values
from ._table import DATABASES, EVENTS, FAMILIES, SCRIPTS
from .config import Settings
from .errors import ConfigError, KeyRefused, LockedError, NotOwnerError, ValueRefused


def _now_iso():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _today():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%d")


class Cache:
    """One deployment's cache. Build with Cache.from_url(). Thread-safe as
    redis-py clients are (one connection pool per physical db)."""

    def __init__(self, settings):
        self.settings = settings
        self.namespace = settings["namespace"]
        self.hash_tags = settings["hash_tags"]
        self._clients = {}
        self._cluster = None
        self._sentinel = None
        self._rng = random.SystemRandom()

    @classmethod
    def from_url(cls, url=None, **settings):
        """url: the C library's URL grammar and parameters (None:
        MISCACHE_URL, else redis://127.0.0.1:6379). Keyword settings (URL
        parameter names) win over the URL, as the C option setters do.
        Connects lazily. ConfigError for a bad URL or setting."""
        return cls(Settings.resolve(url, **settings))

    def describe(self):
        """The effective settings, as miscache_url_describe() prints them."""
        return self.settings.describe()

    # ---- connections ----------------------------------------------------

    def _common(self):
        s, ep = self.settings, self.settings.endpoint
        kw = {"socket_timeout": s["command_timeout_ms"] / 1000.0,
              "socket_connect_timeout": s["connect_timeout_ms"] / 1000.0}
        if ep.tls:
            insecure = s["tls_insecure_skip_verify"]
            kw.update(ssl=True, ssl_ca_certs=ep.cacert, ssl_certfile=ep.cert,
                      ssl_keyfile=ep.key,
                      ssl_cert_reqs="none" if insecure else "required",
                      ssl_check_hostname=not insecure)
        return kw

    def _auth(self):
        ep = self.settings.endpoint
        return {"username": ep.user, "password": ep.password}

    def client(self, logical_db):
        """The redis-py client of a logical db ("session", "cache", ...):
        on a cluster the one cluster client (db 0 only)."""
        ep = self.settings.endpoint
        if ep.kind == "cluster":
            if self._cluster is None:
                from redis.cluster import ClusterNode, RedisCluster
                self._cluster = RedisCluster(
                    startup_nodes=[ClusterNode(h, p) for h, p in ep.addrs],
                    **self._auth(), **self._common())
            return self._cluster
        if logical_db not in DATABASES:
            raise ValueError("unknown logical db %r" % (logical_db,))
        n = self.settings.db_number(logical_db)
        c = self._clients.get(n)
        if c is not None:
            return c
        if ep.kind == "sentinel":
            if self._sentinel is None:
                from redis.sentinel import Sentinel
                skw = dict(self._common())
                if ep.sentinel_password is not None:
                    skw.update(username=ep.sentinel_user,
                               password=ep.sentinel_password)
                self._sentinel = Sentinel(ep.addrs, sentinel_kwargs=skw,
                                          **self._common())
            c = self._sentinel.master_for(ep.master, db=n, **self._auth())
        elif ep.kind == "unix":
            kw = self._common()
            kw.pop("socket_connect_timeout", None)
            c = redis.Redis(unix_socket_path=ep.path, db=n, **self._auth(), **kw)
        else:
            c = redis.Redis(host=ep.host, port=ep.port, db=n, **self._auth(),
                            **self._common())
        self._clients[n] = c
        return c

    def close(self):
        for c in list(self._clients.values()) + [self._cluster]:
            if c is not None:
                c.close()
        self._clients, self._cluster = {}, None

    # ---- keys -------------------------------------------------------------

    def key(self, family, *ids):
        """The full key of family for ids: byte for byte what the C library
        (and `miscache key FAMILY ID...`) uses. KeyRefused for an id C
        refuses."""
        return self.namespace + _keys.logical_key(family, ids, self.hash_tags)

    def pattern(self, family, *ids):
        """A SCAN pattern of family: None ids match any one id."""
        return self.namespace + _keys.logical_key(family, ids, self.hash_tags,
                                                  pattern=True)

    def _db(self, family):
        return FAMILIES[family]["db"]

    def ttl_ms(self, family):
        """The TTL a write of family gets, in ms, with the TTL jitter drawn
        as C draws it (+-ttl_jitter_pct percent); None: no TTL."""
        cls = FAMILIES[family]["ttl_class"]
        if cls is None:
            return None
        ms = self.settings.ttl_seconds(cls) * 1000
        pct = self.settings["ttl_jitter_pct"]
        if pct:
            span = ms * pct // 100
            ms += self._rng.randrange(2 * span + 1) - span
            ms = max(ms, 1)
        return ms

    # ---- values -------------------------------------------------------------

    def get(self, family, *ids):
        """The value of family for ids, decoded, or None when it is absent
        or is a value the C library would refuse (wrong type, missing
        required member, not JSON jansson reads): then a loader replaces
        it, as in C."""
        raw = self.client(self._db(family)).get(self.key(family, *ids))
        if raw is None:
            return None
        try:
            v = _values.loads(raw)
            _values.check(family, v)
        except _values.Unusable:
            return None
        return v

    def set(self, family, *ids_and_value):
        """set(family, *ids, value): store value with the family's TTL (and
        jitter), after the checks C makes of the family's payload members.
        Lock families and the batch fence are refused: use lock() and
        batch_lock()."""
        if not ids_and_value:
            raise TypeError("set(family, *ids, value): value missing")
        *ids, value = ids_and_value
        f = FAMILIES.get(family)
        if f is None:
            raise KeyRefused("unknown key family %r" % (family,))
        if f["value"]["type"] == "lock" or f["ttl_class"] is None:
            raise ValueRefused("%s is written by the lock calls only" % family)
        try:
            _values.check(family, value)
            raw = _values.dumps(value)
        except (_values.Unusable, TypeError, ValueError) as e:
            raise ValueRefused("%s: %s" % (family, e)) from None
        key = self.key(family, *ids)
        self.client(f["db"]).set(key, raw, px=self.ttl_ms(family))

    def delete(self, family, *ids):
        """Remove one key; whether it was there."""
        return self.client(self._db(family)).unlink(self.key(family, *ids)) > 0

    def ttl(self, family, *ids):
        """Seconds left (redis TTL: -2 absent, -1 no TTL)."""
        return self.client(self._db(family)).ttl(self.key(family, *ids))

    def get_or_set(self, family, *ids, loader):
        """The cached value, else loader()'s, stored (None is not)."""
        v = self.get(family, *ids)
        if v is None:
            v = loader()
            if v is not None:
                self.set(family, *ids, v)
        return v

    # ---- invalidation ---------------------------------------------------------

    def _scan(self, logical_db, pattern):
        """Every key matching pattern in a logical db (all masters of a
        cluster), as (connection, key) pairs."""
        count = self.settings["scan_count"]
        deadline = time.monotonic() + self.settings["scan_timeout_ms"] / 1000.0
        c = self.client(logical_db)
        conns = [c]
        if self._cluster is not None and c is self._cluster:
            conns = [c.get_redis_connection(n) for n in c.get_primaries()]
        for conn in conns:
            cursor, seen = 0, set()
            while True:
                cursor, found = conn.scan(cursor=cursor, match=pattern, count=count)
                for k in found:
                    yield conn, k
                if cursor == 0:
                    break
                if cursor in seen:
                    raise redis.ResponseError("SCAN cursor came back to %d" % cursor)
                seen.add(cursor)
                if time.monotonic() > deadline:
                    raise redis.TimeoutError("SCAN of %s took longer than "
                                             "scan_timeout_ms" % pattern)

    def _event_steps(self, event, args):
        ev = EVENTS.get(event)
        if ev is None:
            raise ValueError("unknown invalidation event %r (known: %s)"
                             % (event, ", ".join(EVENTS)))
        steps = []
        for s in ev["steps"]:
            f = FAMILIES[s["family"]]
            if s["prefix_glob"]:
                steps.append((f["db"], self.namespace + f["prefix"] + "*", True))
                continue
            names = [a.rstrip(".") for a in ev["args"]]
            segs = s["match"].split(":")[len(f["prefix"].split(":")):]
            ids = [None if seg == "*" else args[names.index(seg[1:-1])]
                   for seg in segs]
            key = (self.pattern if s["pattern"] else self.key)(s["family"], *ids)
            steps.append((f["db"], key, s["pattern"]))
        return steps

    def invalidate(self, event, *args, date=None, dry_run=False):
        """Run an invalidation event of the C library (and of `miscache
        invalidate`): permissions USER_ID, batch-config COMPANY, gift-rules
        COMPANY, company COMPANY, brand BRAND, daily YYYYMMDD, post-batch
        COMPANY... (date= the day, default today UTC). Removes exactly the
        keys the C event removes (SCAN + UNLINK for patterns). Every key is
        built before anything is removed, so a bad id removes nothing.
        Returns how many keys went; dry_run: the [(db, key)] that would."""
        ev = EVENTS.get(event)
        if ev is None:
            raise ValueError("unknown invalidation event %r" % (event,))
        if ev["per_company"]:
            day = _today() if date is None else date
            if not _keys.date_ok(day, 8):
                raise KeyRefused('date "%.32s" is not YYYYMMDD' % (day,))
            plans = [self._event_steps(event, [c, day]) for c in args]
        else:
            if len(args) != len(ev["args"]):
                raise TypeError("invalidate %s takes %s" % (event, " ".join(ev["args"])))
            if "YYYYMMDD" in ev["args"] and not _keys.date_ok(args[0], 8):
                raise KeyRefused('date "%.32s" is not YYYYMMDD' % (args[0],))
            plans = [self._event_steps(event, list(args))]
        found, removed = [], 0
        for steps in plans:
            for db, key, pattern in steps:
                if pattern:
                    batch = {}
                    for conn, k in self._scan(db, key):
                        if dry_run:
                            found.append((db, k.decode("utf-8", "surrogateescape")))
                        else:
                            batch.setdefault(id(conn), (conn, []))[1].append(k)
                    for conn, ks in batch.values():
                        removed += self._unlink(conn, ks)
                elif dry_run:
                    if self.client(db).exists(key):
                        found.append((db, key))
                else:
                    removed += self.client(db).unlink(key)
        return found if dry_run else removed

    def _unlink(self, conn, ks):
        n = 0
        size = self.settings["unlink_batch"]
        for i in range(0, len(ks), size):
            part = ks[i:i + size]
            if self._cluster is not None:  # keys of one node, not one slot
                p = conn.pipeline(transaction=False)
                for k in part:
                    p.unlink(k)
                n += sum(p.execute())
            else:
                n += conn.unlink(*part)
        return n

    # ---- locks ----------------------------------------------------------------

    def lock(self, family, *ids, ttl_ms=None, locked_by=None, batch_id=None):
        """Take the token lock of a lock family (serial-lock, process-lock,
        classification-lock) once: SET NX PX with the C library's value
        {"token","locked_by","locked_at","batch_id"}. A Lock, or
        LockedError when anyone (C or Python) holds it. ttl_ms default:
        the family's TTL."""
        f = FAMILIES[family]
        if f["value"]["type"] != "lock" or family == "batch-lock":
            raise ValueError("%s is not a token lock family (batch-lock: "
                             "batch_lock())" % family)
        key = self.key(family, *ids)
        ttl = ttl_ms if ttl_ms is not None else self.settings.ttl_seconds(f["ttl_class"]) * 1000
        if ttl <= 0:
            raise ValueError("ttl_ms must be > 0")
        token = str(uuid.uuid4())
        value = _values.dumps({"token": token, "locked_by": locked_by,
                               "locked_at": _now_iso(), "batch_id": batch_id})
        c = self.client(f["db"])
        if not c.set(key, value, nx=True, px=ttl):
            raise LockedError("lock %s is held by %s" % (key, _holder(c.get(key))))
        return Lock(self, c, key, token, 0)

    def batch_lock(self, company, locked_by=None, batch_id=None):
        """Take a company's fenced batch lock (batch:lock + batch:fence, the
        C library's fence_acquire script): a Lock whose .fence is larger
        than any earlier holder's, or LockedError. On a cluster it needs
        hash tags, as in C."""
        if self.settings.endpoint.kind == "cluster" and not self.hash_tags:
            raise ConfigError("the fenced batch lock on a Redis Cluster needs "
                              "the hash-tagged key format (hash_tags=true)")
        key = self.key("batch-lock", company)
        fence = self.key("batch-fence", company)
        token = str(uuid.uuid4())
        head = _values.dumps({"token": token, "locked_by": locked_by,
                              "locked_at": _now_iso(), "batch_id": batch_id,
                              "host": socket.gethostname(), "pid": os.getpid()})
        ttl = self.settings.ttl_seconds(FAMILIES["batch-lock"]["ttl_class"]) * 1000
        c = self.client(FAMILIES["batch-lock"]["db"])
        f = c.eval(SCRIPTS["fence_acquire"], 2, key, fence, head[:-1], ttl)
        if not f or int(f) <= 0:
            raise LockedError("lock %s is held by %s" % (key, _holder(c.get(key))))
        return Lock(self, c, key, token, int(f))


def _holder(raw):
    try:
        v = json.loads(raw)
        return "%s since %s" % (v.get("locked_by"), v.get("locked_at"))
    except (TypeError, ValueError, AttributeError):
        return "another owner"


class Lock:
    """A held lock; release() and extend() check the token on the server
    (the C library's scripts), so an expired holder never frees or extends
    the next holder's lock."""

    def __init__(self, cache, client, key, token, fence):
        self.cache, self._c, self.key, self.token, self.fence = \
            cache, client, key, token, fence

    def release(self):
        """NotOwnerError when the lock expired (and may be someone else's)."""
        if int(self._c.eval(SCRIPTS["release"], 1, self.key, self.token)) != 1:
            raise NotOwnerError("lock %s is no longer held by this owner" % self.key)

    def extend(self, ttl_ms):
        if int(self._c.eval(SCRIPTS["extend"], 1, self.key, self.token, ttl_ms)) != 1:
            raise NotOwnerError("lock %s is no longer held by this owner" % self.key)

    def heartbeat(self):
        """A fenced batch lock's renewal (TTL and the server-time stamp)."""
        ttl = self.cache.settings.ttl_seconds(FAMILIES["batch-lock"]["ttl_class"]) * 1000
        if int(self._c.eval(SCRIPTS["heartbeat"], 1, self.key, self.token, ttl)) != 1:
            raise NotOwnerError("lock %s is no longer held by this owner" % self.key)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self.release()
        except NotOwnerError:
            if exc[0] is None:
                raise
