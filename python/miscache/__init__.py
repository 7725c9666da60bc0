"""miscache: the MIS v2 cache from Python, the same as the C library's.

    import miscache
    cache = miscache.Cache.from_url()   # MISCACHE_URL, as the C services
    cache.set("batch-status", 7, {"status": "running"})
    cache.get("batch-status", 7)        # -> dict, or None
    cache.invalidate("company", 7)      # exactly the C event's keys
    with cache.batch_lock(7, locked_by="flask") as lk: ...

Everything deployment-specific comes from the URL (docs/configuration.md)
and the key layout from keyspace.json, the C library's own table. Depends
only on redis-py (Debian: python3-redis)."""
from .cache import Cache, Lock
from .config import Settings
from .errors import (ConfigError, Error, KeyRefused, LockedError, NotOwnerError,
                     ValueRefused)
from .manager import CacheManager

__all__ = ["Cache", "CacheManager", "ConfigError", "Error", "KeyRefused",
           "Lock", "LockedError", "NotOwnerError", "Settings", "ValueRefused",
           "from_url"]
__version__ = "0.4.0"


def from_url(url=None, **settings):
    """Cache.from_url(url, **settings)."""
    return Cache.from_url(url, **settings)
