"""CacheManager: the seed strategy's Flask helper (get, set, delete,
invalidate_pattern / delete_by_pattern, get_or_set, set_lock,
release_lock), kept by name and arguments, on top of miscache.Cache: a key
of a known family is rebuilt as the C library builds it (namespace, hash
tags, id checks), its value checked as C checks it and stored as JSON
(never pickle) with the family's TTL; the db argument is the seed's db
number (0 session .. 5 gift), mapped through the URL's db_* settings.
Like the seed, errors are logged and answered with None / False / 0."""
import logging

import redis

from ._table import DATABASES, FAMILIES
from . import values as _values
from .cache import Cache
from .errors import Error, LockedError, NotOwnerError

log = logging.getLogger("miscache")


class CacheManager:
    def __init__(self, cache=None, url=None):
        self.cache = cache if cache is not None else Cache.from_url(url)
        self._locks = {}

    def _family(self, key):
        """(family, ids) of a logical key the library knows, or None."""
        best = None
        for name, f in FAMILIES.items():
            pfx = f["prefix"]
            if key == pfx and not f["ids"]:
                return name, []
            if key.startswith(pfx + ":") and (best is None or len(pfx) >
                                               len(FAMILIES[best]["prefix"])):
                best = name
        if best is None:
            return None
        f = FAMILIES[best]
        ids = key[len(f["prefix"]) + 1:].split(":")
        if len(ids) != len(f["ids"]) or not all(ids):
            return None
        return best, ids

    def _where(self, key, db):
        """(redis client, full key, family or None)."""
        fam = self._family(key)
        if fam is not None:
            name, ids = fam
            return (self.cache.client(FAMILIES[name]["db"]),
                    self.cache.key(name, *ids), name)
        logical = DATABASES[db] if isinstance(db, int) and 0 <= db < len(DATABASES) else "cache"
        return self.cache.client(logical), self.cache.namespace + key, None

    def get(self, key, db=1):
        try:
            c, k, fam = self._where(key, db)
            raw = c.get(k)
            if raw is None:
                return None
            v = _values.loads(raw)
            if fam is not None:
                _values.check(fam, v)
            return v
        except _values.Unusable:
            return None
        except (Error, redis.RedisError) as e:
            log.error("Cache get error: %s", e)
            return None

    def set(self, key, value, ttl=3600, db=1):
        try:
            fam = self._family(key)
            if fam is not None:
                self.cache.set(fam[0], *fam[1], value)
                return True
            c, k, _ = self._where(key, db)
            return bool(c.set(k, _values.dumps(value), px=int(ttl * 1000)))
        except (Error, redis.RedisError, ValueError, TypeError) as e:
            log.error("Cache set error: %s", e)
            return False

    def delete(self, key, db=1):
        try:
            c, k, _ = self._where(key, db)
            return c.unlink(k) > 0
        except (Error, redis.RedisError) as e:
            log.error("Cache delete error: %s", e)
            return False

    def invalidate_pattern(self, pattern, db=1):
        """SCAN (never KEYS) + UNLINK of the namespaced pattern in db."""
        try:
            logical = DATABASES[db] if 0 <= db < len(DATABASES) else "cache"
            batch = {}
            for conn, k in self.cache._scan(logical, self.cache.namespace + pattern):
                batch.setdefault(id(conn), (conn, []))[1].append(k)
            return sum(self.cache._unlink(conn, ks) for conn, ks in batch.values())
        except (Error, redis.RedisError) as e:
            log.error("Cache delete by pattern error: %s", e)
            return 0

    delete_by_pattern = invalidate_pattern

    def get_or_set(self, key, loader, ttl=3600, db=1):
        v = self.get(key, db)
        if v is None:
            v = loader()
            if v is not None:
                self.set(key, v, ttl, db)
        return v

    def set_lock(self, key, value="locked", ttl=300, db=1):
        """A token lock compatible with the C library's (value becomes its
        locked_by); True when taken."""
        try:
            fam = self._family(key)
            if fam is None or FAMILIES[fam[0]]["value"]["type"] != "lock" or \
                    fam[0] == "batch-lock":
                raise Error("%s is not a lock key the library knows" % key)
            lk = self.cache.lock(fam[0], *fam[1], ttl_ms=int(ttl * 1000),
                                 locked_by=str(value))
            self._locks[key] = lk
            return True
        except LockedError:
            return False
        except (Error, redis.RedisError) as e:
            log.error("Cache set lock error: %s", e)
            return False

    def release_lock(self, key, db=1):
        lk = self._locks.pop(key, None)
        if lk is None:
            return False
        try:
            lk.release()
            return True
        except (NotOwnerError, redis.RedisError):
            return False
