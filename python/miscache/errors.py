"""Exceptions of the miscache package."""


class Error(Exception):
    """Base of every miscache error."""


class ConfigError(Error, ValueError):
    """A malformed URL or setting (the C library's MISCACHE_ERR_URL, or
    MISCACHE_ERR_INVALID for settings that bound each other). Its message
    never shows a password."""


class KeyRefused(Error, ValueError):
    """An id the C library would refuse (MISCACHE_ERR_KEY)."""


class ValueRefused(Error, ValueError):
    """A value the C library would not use for its family."""


class LockedError(Error):
    """The lock is held by another owner (MISCACHE_ERR_LOCKED)."""


class NotOwnerError(Error):
    """The lock is no longer held by this owner (MISCACHE_ERR_NOT_OWNER)."""
