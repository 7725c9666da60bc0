"""The keyspace table the C library prints (`miscache keyspace --json`),
read once: families, invalidation events, URL parameters, lock scripts.
A copy ships in this package (keyspace.json); a test of the C build checks
that it is the C library's own."""
import json
import os

PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "keyspace.json")

with open(PATH, encoding="utf-8") as _f:
    TABLE = json.load(_f)

FAMILIES = {f["name"]: f for f in TABLE["families"]}
FAMILY_ORDER = [f["name"] for f in TABLE["families"]]
EVENTS = {e["name"]: e for e in TABLE["events"]}
PARAMETERS = TABLE["url_parameters"]
DATABASES = TABLE["databases"]  # logical names; index = default number
CATEGORIES = TABLE["categories"]
TTL_CLASSES = [c["name"] for c in TABLE["ttl_classes"]]
TTL_DEFAULTS = {c["name"]: c["seconds"] for c in TABLE["ttl_classes"]}
SCRIPTS = TABLE["scripts"]
KEY_MAX = TABLE["key_max"]
NAMESPACE_MAX = TABLE["namespace_max"]
