#!/usr/bin/env python3
"""The parts of docs/ that tables and headers decide, written from them, so
the docs cannot drift:

  - docs/api.md, between <!-- index:begin --> and <!-- index:end -->: every
    exported function, by header;
  - docs/strategy.md, between <!-- tables:begin --> and <!-- tables:end -->:
    the logical databases, the key schema with TTLs, the invalidation
    events (from python/miscache/keyspace.json, itself checked against
    `miscache keyspace --json` by the python_package tests);
  - and a check that docs/configuration.md names every URL parameter.

  gen-docs.py           rewrite those parts
  gen-docs.py --check   exit 1 (saying what) when any is stale
"""
import importlib.util
import json
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def load_man3():
    spec = importlib.util.spec_from_file_location(
        "gen_man3", os.path.join(ROOT, "scripts", "gen-man3.py"))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def index_text():
    man3 = load_man3()
    inc = os.path.join(ROOT, "include", "miscache")
    out = ["## Every function, by header", "",
           "Written by `scripts/gen-docs.py` from the headers; each has a "
           "man(3) page (`man miscache_get`) with its header comment.", ""]
    for fn in sorted(os.listdir(inc)):
        if not fn.endswith(".h"):
            continue
        decls = man3.declarations(os.path.join(inc, fn))
        if decls:
            out.append("- `%s`: %s" % (fn, ", ".join("`%s`" % n for n, _, _ in decls)))
    return "\n".join(out) + "\n"


def tables_text():
    t = json.load(open(os.path.join(ROOT, "python", "miscache", "keyspace.json"),
                       encoding="utf-8"))
    out = ["### Logical databases", "", "| name | default number |", "|---|---|"]
    for i, d in enumerate(t["databases"]):
        out.append("| `%s` | %d |" % (d, i))
    out += ["", "### Keys", "",
            "Ids in `<>`; the company id of a company-scoped key is written "
            "`{7}` with `hash_tags=true`. TTL: the class and its default "
            "seconds (each is a URL parameter `ttl_<class>`).", "",
            "| family | key | db | TTL class | seconds | value |",
            "|---|---|---|---|---|---|"]
    for f in t["families"]:
        key = ":".join([f["prefix"]] + ["<%s>" % i["name"] for i in f["ids"]])
        out.append("| `%s` | `%s` | %s | %s | %s | %s |" % (
            f["name"], key, f["db"], f["ttl_class"] or "none",
            f["ttl_seconds"] if f["ttl_seconds"] is not None else "-",
            f["payload"]))
    out += ["", "### TTL classes", "", "| class | seconds |", "|---|---|"]
    for c in t["ttl_classes"]:
        out.append("| `%s` | %d |" % (c["name"], c["seconds"]))
    out += ["", "### Invalidation events", "",
            "What each event removes (`*` a pattern segment, SCAN + UNLINK; "
            "the others exact keys, UNLINK). `post-batch` runs its steps once "
            "per company.", "", "| event | arguments | removes |", "|---|---|---|"]
    for e in t["events"]:
        out.append("| `%s` | %s | %s |" % (
            e["name"], " ".join(e["args"]),
            ", ".join("`%s` (%s)" % (s["match"], s["db"]) for s in e["steps"])))
    return "\n".join(out) + "\n", t


def splice(path, begin, end, text):
    src = open(path, encoding="utf-8").read()
    m = re.search(re.escape(begin) + r"\n.*?" + re.escape(end), src, re.S)
    if not m:
        raise SystemExit("gen-docs: %s has no %s ... %s" % (path, begin, end))
    return src, src[:m.start()] + begin + "\n" + text + end + src[m.end():]


def main():
    check = sys.argv[1:] == ["--check"]
    bad = []
    tables, table = tables_text()
    for path, b, e, text in [
            (os.path.join(ROOT, "docs", "api.md"), "<!-- index:begin -->",
             "<!-- index:end -->", index_text()),
            (os.path.join(ROOT, "docs", "strategy.md"), "<!-- tables:begin -->",
             "<!-- tables:end -->", tables)]:
        old, new = splice(path, b, e, text)
        if old != new:
            if check:
                bad.append("%s is stale" % os.path.relpath(path, ROOT))
            else:
                open(path, "w", encoding="utf-8").write(new)
    conf = open(os.path.join(ROOT, "docs", "configuration.md"), encoding="utf-8").read()
    for p in table["url_parameters"]:
        if "`%s`" % p["name"] not in conf:
            bad.append("docs/configuration.md does not name URL parameter %s"
                       % p["name"])
    for b in bad:
        print("gen-docs:", b)
    if bad:
        print("gen-docs: run scripts/gen-docs.py (and describe new URL "
              "parameters in docs/configuration.md)")
        return 1
    print("gen-docs: docs/api.md index, docs/strategy.md tables and "
          "docs/configuration.md are current")
    return 0


if __name__ == "__main__":
    sys.exit(main())
