"""Keys byte for byte as the C library builds them (include/miscache/keys.h):
prefix, then each id percent-encoded (bytes outside A-Z a-z 0-9 - . _ ~
become %XX, upper-case hex), the company id of a company-scoped key in
{braces} when hash tags are on, the namespace in front. Ids are checked as
the C typed calls check them."""
import re

from ._table import FAMILIES, KEY_MAX
from .errors import KeyRefused

_UNRESERVED = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        b"0123456789-._~")
_WHOLE = re.compile(r"-?[0-9]+")
_INT64 = (-(1 << 63), (1 << 63) - 1)


def encode_id(id_):
    """One id as it stands in a key (urllib.parse.quote(id, safe=""))."""
    raw = id_ if isinstance(id_, bytes) else id_.encode("utf-8", "surrogateescape")
    return "".join(chr(c) if c in _UNRESERVED else "%%%02X" % c for c in raw)


def date_ok(s, digits):
    """YYYYMMDD (digits 8) or YYYYMM (6) as the C library checks them."""
    if not isinstance(s, str) or len(s) != digits or \
            not all("0" <= ch <= "9" for ch in s):
        return False
    if not 1 <= int(s[4:6]) <= 12:
        return False
    return digits == 6 or 1 <= int(s[6:8]) <= 31


def check_id(family, part, value):
    """value of id part {name, kind} of family, as the text the key holds."""
    kind, name = part["kind"], part["name"]
    if value is None:
        raise KeyRefused("%s: %s is missing" % (family, name))
    if kind == "integer":
        if isinstance(value, bool):
            raise KeyRefused("%s: %s %r is not a whole number" % (family, name, value))
        if isinstance(value, int):
            n = value
        elif isinstance(value, str) and _WHOLE.fullmatch(value):
            n = int(value)
        else:
            raise KeyRefused('%s: %s "%.40s" is not a whole number'
                             % (family, name, value))
        if not _INT64[0] <= n <= _INT64[1]:
            raise KeyRefused("%s: %s %d is out of range" % (family, name, n))
        return str(n)
    if not isinstance(value, (str, bytes)):
        if isinstance(value, int) and not isinstance(value, bool) and kind == "text":
            value = str(value)
        else:
            raise KeyRefused("%s: %s %r is not text" % (family, name, value))
    if kind in ("date", "month") and not date_ok(value, 8 if kind == "date" else 6):
        raise KeyRefused('%s: %s "%.40s" is not a %s' % (
            family, name, value, "date YYYYMMDD" if kind == "date" else "month YYYYMM"))
    if value in ("", b""):
        raise KeyRefused("%s: %s is empty" % (family, name))
    return value


def logical_key(family, ids, hash_tags=False, pattern=False):
    """The key (or, with pattern and None ids, the SCAN pattern) of family
    without the namespace."""
    f = FAMILIES.get(family)
    if f is None:
        raise KeyRefused("unknown key family %r" % (family,))
    parts = f["ids"]
    if len(ids) != len(parts):
        raise KeyRefused("%s takes %d id%s (%s), not %d" % (
            family, len(parts), "" if len(parts) == 1 else "s",
            " ".join(p["name"] for p in parts) or "none", len(ids)))
    segs = []
    for part, value in zip(parts, ids):
        if pattern and value is None:
            segs.append("*")
        else:
            segs.append(encode_id(check_id(family, part, value)))
    if hash_tags and f["company_id"] is not None:
        i = f["company_id"]
        segs[i] = "{" + segs[i] + "}"
    key = ":".join([f["prefix"]] + segs)
    if len(key.encode("utf-8")) > KEY_MAX:
        raise KeyRefused("%s: the key is longer than %d bytes" % (family, KEY_MAX))
    return key
