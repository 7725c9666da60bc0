"""Stored values as the C library reads them: JSON that jansson accepts
(no NaN or Infinity, no NUL in a string, no lone surrogate, integers within
int64, finite reals), of the shape its family's table entry names. A value
the C side would refuse is a miss here too."""
import json
import math

from ._table import FAMILIES

_INT64 = (-(1 << 63), (1 << 63) - 1)


class Unusable(ValueError):
    """A stored value the C library would not use (why in the message)."""


def _refuse_constant(name):
    raise Unusable("JSON holds %s" % name)


def _plain(v, where="value"):
    """Refuse what jansson refuses inside a decoded value."""
    if isinstance(v, bool) or v is None:
        return
    if isinstance(v, int):
        if not _INT64[0] <= v <= _INT64[1]:
            raise Unusable("%s: integer out of int64 range" % where)
    elif isinstance(v, float):
        if not math.isfinite(v):
            raise Unusable("%s: real number overflow" % where)
    elif isinstance(v, str):
        _text(v, where)
    elif isinstance(v, list):
        for i, e in enumerate(v):
            _plain(e, "%s[%d]" % (where, i))
    elif isinstance(v, dict):
        for k, e in v.items():
            _text(k, where)
            _plain(e, "%s.%s" % (where, k))
    else:
        raise Unusable("%s: %r is not JSON" % (where, type(v).__name__))


def _text(s, where):
    if not isinstance(s, str):
        raise Unusable("%s: object key is not text" % where)
    if "\x00" in s:
        raise Unusable("%s: string holds NUL" % where)
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        raise Unusable("%s: string is not valid Unicode" % where) from None


def loads(raw):
    """bytes stored by any client -> the value, or Unusable."""
    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        v = json.loads(text, parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as e:
        if isinstance(e, Unusable):
            raise
        raise Unusable("not valid JSON: %s" % e) from None
    _plain(v)
    return v


def dumps(value):
    """Compact UTF-8 JSON as the C library writes it."""
    _plain(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"),
                      allow_nan=False).encode("utf-8")


def _member_ok(m, v, where):
    t = m["type"]
    if t == "integer":
        ok = isinstance(v, int) and not isinstance(v, bool)
    elif t == "number":
        ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    elif t == "boolean":
        ok = isinstance(v, bool)
    elif t == "string":
        ok = isinstance(v, str) or (v is None and not m["required"])
    elif t == "strings":
        ok = isinstance(v, list) and all(isinstance(e, str) for e in v)
    elif t == "object":
        ok = isinstance(v, dict)
        if ok:
            _members(m["members"], v, where)
    else:
        ok = True
    if not ok:
        raise Unusable("%s is not %s" % (where, {
            "integer": "an integer", "number": "a number",
            "boolean": "true or false", "string": "a string",
            "strings": "an array of strings", "object": "an object"}[t]))


def _members(members, obj, where):
    for m in members:
        if m["name"] not in obj:
            if m["required"]:
                raise Unusable("%s has no field %s" % (where, m["name"]))
            continue
        _member_ok(m, obj[m["name"]], "%s.%s" % (where, m["name"]))


def check(family, v):
    """Raise Unusable unless v is a value of family the C library uses."""
    shape = FAMILIES[family]["value"]
    t = shape["type"]
    if t == "object":
        if not isinstance(v, dict):
            raise Unusable("%s is not a JSON object" % family)
        _members(shape["members"], v, family)
    elif t == "array":
        if not isinstance(v, list):
            raise Unusable("not a JSON array")
        for i, e in enumerate(v):
            if shape.get("items") == "object":
                if not isinstance(e, dict):
                    raise Unusable("%s[%d] is not a JSON object" % (family, i))
                _members(shape["members"], e, "%s[%d]" % (family, i))
    elif t == "permissions":
        if not isinstance(v, dict):
            raise Unusable("permissions are not a JSON object")
        for menu, crud in v.items():
            if not isinstance(crud, dict):
                raise Unusable("permissions of menu %s are not an object" % menu)
            for flag in shape["flags"]:
                if flag in crud and not isinstance(crud[flag], bool):
                    raise Unusable("%s.%s is not a boolean" % (menu, flag))
    elif t == "integer":
        if not isinstance(v, int) or isinstance(v, bool):
            raise Unusable("not an integer")
    elif t == "lock":
        if not isinstance(v, dict) or not isinstance(v.get("token"), str):
            raise Unusable("not a lock value")
