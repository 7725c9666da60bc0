"""The URL grammar and settings of the C library (docs/configuration.md),
parsed the same way: the same forms, the same parameters with the same
bounds (from the keyspace table), the same refusals, and `describe()`
giving the text `miscache_url_describe()` gives."""
import os

from ._table import CATEGORIES, FAMILIES, FAMILY_ORDER, NAMESPACE_MAX, PARAMETERS
from .errors import ConfigError

DEFAULT_URL = "redis://127.0.0.1:6379"

_SCHEMES = [
    ("redis://", False, "tcp"),
    ("rediss://", True, "tcp"),
    ("redis+sentinel://", False, "sentinel"),
    ("rediss+sentinel://", True, "sentinel"),
    ("redis+cluster://", False, "cluster"),
    ("rediss+cluster://", True, "cluster"),
]
_ENDPOINT_PARAMS = {"cacert": "tls", "cert": "tls", "key": "tls",
                    "sentinel_user": "sentinel", "sentinel_password": "sentinel"}
SETTINGS = [p for p in PARAMETERS if p["name"] not in _ENDPOINT_PARAMS]
_BY_NAME = {p["name"]: p for p in SETTINGS}
_NS_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                "0123456789_-.:")


def _fail(msg):
    raise ConfigError(msg)


def _redacted(url):
    """url for a message: what stands before its last '@' is ***."""
    at = url.rfind("@")
    if at < 0:
        return url[:64]
    sep = url.find("://")
    keep = sep + 3 if 0 <= sep < at else 0
    return url[:min(keep, 24)] + "***@" + url[at + 1:at + 49]


def _pct_decode(s, what):
    """Percent-decode s; a bad escape or %00 is refused."""
    out = bytearray()
    raw = s.encode("utf-8", "surrogateescape")
    i, n = 0, len(raw)
    while i < n:
        c = raw[i]
        if c != 0x25:  # '%'
            out.append(c)
            i += 1
            continue
        hexd = raw[i + 1:i + 3].decode("latin-1") if i + 2 < n else ""
        if len(hexd) != 2 or any(h not in "0123456789abcdefABCDEF" for h in hexd) \
                or hexd == "00":
            _fail("bad percent escape in " + what)
        out.append(int(hexd, 16))
        i += 3
    return out.decode("utf-8", "surrogateescape")


def _hostport(text, default_port):
    if text.startswith("["):
        rb = text.find("]")
        if rb < 0:
            _fail("unterminated [ in IPv6 host")
        host, rest = text[1:rb], text[rb + 1:]
        if rest and not rest.startswith(":"):
            _fail("unexpected text after ]")
        port_str = rest[1:] if rest else None
    else:
        host, colon, port_str = text.partition(":")
        if not colon:
            port_str = None
    if not host:
        _fail("URL has no host")
    if any(ch in host for ch in "@[]/%,"):
        _fail('bad character in host "%s"' % host)
    port = default_port
    if port_str is not None:
        if port_str == "":
            _fail("empty port")
        if not all("0" <= ch <= "9" for ch in port_str):
            _fail("port is not a number")
        port = int(port_str)
        if not 1 <= port <= 65535:
            _fail("port out of range 1..65535")
    return host, port


def _hostlist(text, default_port):
    out = []
    for item in text.split(","):
        if not item:
            _fail("empty host in the host list")
        out.append(_hostport(item, default_port))
    return out


def _names(value, param, allowed):
    bits = []
    for name in value.split(","):
        if name not in allowed:
            _fail('URL parameter %s: "%s" is not a name it takes'
                  % (param, name[:40]))
        bits.append(name)
    return bits


def _near_allowed():
    return [n for n in FAMILY_ORDER if FAMILIES[n]["near"] != "never"]


def _near_default():
    return [n for n in FAMILY_ORDER if FAMILIES[n]["near"] == "default"]


def parse_value(p, value):
    """A setting's text value as Python: int, bool, str, a list of names
    (near: None when off, [] for the default set)."""
    kind, name = p["kind"], p["name"]
    if kind == "namespace":
        if len(value.encode("utf-8", "surrogateescape")) > NAMESPACE_MAX or \
                any(ch not in _NS_CHARS for ch in value):
            _fail('URL parameter %s="%s": want letters, digits and _-.: only, '
                  "at most 64 bytes" % (name, value[:40]))
        return value
    if kind == "bool":
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        _fail('URL parameter %s="%s": want true or false' % (name, value[:40]))
    if kind == "near":
        if value == "off":
            return None
        if value == "on":
            return []
        return _names(value, name, _near_allowed())
    if kind == "categories":
        if value == "none":
            return []
        return _names(value, name, CATEGORIES)
    lo, hi = p["min"], p["max"]
    if not value or not all("0" <= ch <= "9" for ch in value) or \
            not lo <= int(value) <= hi:
        _fail('URL parameter %s="%s": want a whole number %d..%d'
              % (name, value[:40], lo, hi))
    return int(value)


class Endpoint:
    """Where the server is: kind "tcp", "unix", "sentinel" or "cluster"."""

    def __init__(self):
        self.kind = "tcp"
        self.tls = False
        self.host = None
        self.port = None
        self.path = None
        self.addrs = []
        self.master = None
        self.user = None
        self.password = None
        self.sentinel_user = None
        self.sentinel_password = None
        self.cacert = self.cert = self.key = None


def parse_url(url):
    """(Endpoint, {setting: value}) of url, as the C library parses it."""
    if url is None:
        _fail("URL is NULL")
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in url):
        _fail("URL holds a space or control character")
    ep, given = Endpoint(), {}
    if url.startswith("unix://"):
        rest = url[7:]
        path, q, query = rest.partition("?")
        if not path.startswith("/"):
            _fail("unix URL needs an absolute path: unix:///path/to/socket")
        if "#" in path:
            _fail("unix URL takes no fragment")
        ep.kind = "unix"
        ep.path = _pct_decode(path, "unix socket path")
        if q:
            _query(query, ep, given)
        return ep, given
    rest = None
    for prefix, tls, kind in _SCHEMES:
        if url.startswith(prefix):
            rest, ep.tls, ep.kind = url[len(prefix):], tls, kind
    if rest is None:
        _fail('unsupported URL scheme in "%s": use redis://, rediss://, '
              "redis+sentinel://, redis+cluster:// (or their rediss+ forms) "
              "or unix://" % _redacted(url))
    at = rest.rfind("@")
    hostpart = rest[at + 1:] if at >= 0 else rest
    if "#" in hostpart:
        _fail("redis URL takes no fragment")
    hosts_and_path, q, query = hostpart.partition("?")
    hosts, slash, path = hosts_and_path.partition("/")
    if at >= 0:
        _userinfo(rest[:at], ep)
    if ep.kind == "sentinel":
        if not slash or not path:
            _fail("redis+sentinel URL needs the master name as its path: "
                  "redis+sentinel://host:26379[,host:port...]/mymaster")
        ep.master = _pct_decode(path, "the master name")
        if "/" in ep.master:
            _fail("master name holds a '/'")
        ep.addrs = _hostlist(hosts, 26379)
    elif ep.kind == "cluster":
        if path:
            _fail("a cluster URL takes no path: a cluster has only db 0")
        ep.addrs = _hostlist(hosts, 6379)
    else:
        if path:
            _fail("database numbers in the URL are not used: databases are "
                  "chosen per logical name (db_session=, db_cache=...)")
        if "," in hosts:
            _fail("a list of hosts needs redis+sentinel:// or redis+cluster://")
        ep.host, ep.port = _hostport(hosts, 6379)
    if q:
        _query(query, ep, given)
    if (ep.cert is None) != (ep.key is None):
        _fail("URL parameters cert and key go together (client certificate "
              "and its private key)")
    return ep, given


def _userinfo(info, ep):
    user, colon, password = info.partition(":")
    if not colon:
        ep.password = _pct_decode(info, "URL password")
    else:
        if user:
            ep.user = _pct_decode(user, "URL user name")
        ep.password = _pct_decode(password, "URL password")
    if not ep.password and ep.user is None:
        ep.password = None
    elif not ep.password:
        _fail("URL names a user without a password")


def _query(query, ep, given):
    if not query:
        _fail("empty URL query")
    for item in query.split("&"):
        if not item:
            _fail("empty URL parameter")
        name, eq, raw = item.partition("=")
        if not eq or (raw == "" and name != "namespace"):
            _fail('URL parameter "%s" has no value' % name[:64])
        value = _pct_decode(raw, 'URL parameter "%s"' % name[:64])
        if name in _ENDPOINT_PARAMS:
            need = _ENDPOINT_PARAMS[name]
            if need == "tls" and not ep.tls:
                _fail('URL parameter "%s" needs a TLS scheme (rediss://)' % name)
            if need == "sentinel" and ep.kind != "sentinel":
                _fail('URL parameter "%s" needs redis+sentinel://' % name)
            if getattr(ep, name) is not None:
                _fail('URL parameter "%s" given twice' % name)
            setattr(ep, name, value)
            continue
        p = _BY_NAME.get(name)
        if p is None:
            _fail('unknown URL parameter "%s" (docs/configuration.md lists '
                  "them all: namespace, hash_tags, connect_timeout_ms, "
                  "db_cache, near, ..., cacert, sentinel_user...)" % name[:64])
        if name in given:
            _fail('URL parameter "%s" given twice' % name)
        if p.get("needs") == "tls" and not ep.tls:
            _fail('URL parameter "%s" needs a TLS scheme (rediss://)' % name)
        given[name] = parse_value(p, value)


class Settings:
    """The effective settings: the endpoint and every parameter's value.
    Build with Settings.resolve()."""

    def __init__(self, endpoint, values):
        self.endpoint = endpoint
        self.values = values

    def __getitem__(self, name):
        return self.values[name]

    @classmethod
    def resolve(cls, url=None, **overrides):
        """url (None: MISCACHE_URL, else redis://127.0.0.1:6379), its
        parameters laid under overrides (which win, as the C setters do;
        keyword names are the URL parameter names, values Python values or
        their URL text)."""
        if url is None:
            env = os.environ.get("MISCACHE_URL")
            url, from_env = (env, True) if env else (DEFAULT_URL, False)
        else:
            from_env = False
        try:
            ep, given = parse_url(url)
            values = {p["name"]: parse_value(p, p["default"]) for p in SETTINGS}
            values.update(given)
        except ConfigError as e:
            if from_env:
                raise ConfigError("MISCACHE_URL: %s" % e) from None
            raise
        for name, v in overrides.items():
            p = _BY_NAME.get(name)
            if p is None:
                raise ConfigError("unknown setting %r" % name)
            kind = p["kind"]
            if isinstance(v, str):
                v = parse_value(p, v)
            elif kind == "bool":
                if not isinstance(v, bool):
                    raise ConfigError("setting %s: want True or False" % name)
            elif kind == "int":
                if isinstance(v, bool) or not isinstance(v, int):
                    raise ConfigError("setting %s: want a whole number" % name)
                v = parse_value(p, str(v))
            elif kind == "near":
                v = parse_value(p, "off" if v is None else ",".join(v) or "on")
            elif kind == "categories":
                v = parse_value(p, ",".join(v) or "none")
            else:
                raise ConfigError("setting %s: want text" % name)
            values[name] = v
        if values["backoff_min_ms"] > values["backoff_max_ms"]:
            raise ConfigError("settings (URL and setters together): "
                              "backoff_min_ms is above backoff_max_ms")
        if values["max_reply_bytes"] < values["max_bulk"]:
            raise ConfigError("settings (URL and setters together): "
                              "max_reply_bytes is below max_bulk")
        return cls(ep, values)

    def ttl_seconds(self, ttl_class):
        return self.values["ttl_" + ttl_class]

    def db_number(self, logical):
        return self.values["db_" + logical]

    def describe(self):
        """The text miscache_options_describe() prints for these settings."""
        ep, out = self.endpoint, []
        scheme = {"tcp": "redis", "unix": "unix", "sentinel": "redis+sentinel",
                  "cluster": "redis+cluster"}[ep.kind]
        if ep.tls:
            scheme = "rediss" + scheme[5:]
        out.append("scheme=" + scheme)

        def hp(h, p):
            return ("[%s]" % h if ":" in h else h) + ":%d" % p
        if ep.kind == "unix":
            out.append("path=" + ep.path)
        elif ep.kind == "tcp":
            out.append("hosts=" + hp(ep.host, ep.port))
        else:
            out.append("hosts=" + ",".join(hp(h, p) for h, p in ep.addrs))
        if ep.kind == "sentinel":
            out.append("master=" + ep.master)
        out.append("user=" + (ep.user or ""))
        out.append("password=" + ("***" if ep.password is not None else ""))
        if ep.kind == "sentinel":
            out.append("sentinel_user=" + (ep.sentinel_user or ""))
            out.append("sentinel_password=" +
                       ("***" if ep.sentinel_password is not None else ""))
        if ep.tls:
            for k in ("cacert", "cert", "key"):
                out.append("%s=%s" % (k, getattr(ep, k) or ""))
        for p in SETTINGS:
            name, v = p["name"], self.values[p["name"]]
            if p.get("needs") == "tls" and not ep.tls:
                continue
            if p["kind"] == "bool":
                text = "true" if v else "false"
            elif p["kind"] == "near":
                if v is None:
                    text = "off"
                else:
                    on = set(v or _near_default())
                    text = ",".join(n for n in FAMILY_ORDER if n in on)
            elif p["kind"] == "categories":
                on = set(v)
                text = ",".join(c for c in CATEGORIES if c in on) or "none"
            else:
                text = str(v)
            out.append("%s=%s" % (name, text))
        return "\n".join(out) + "\n"
