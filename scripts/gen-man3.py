#!/usr/bin/env python3
"""Man(3) pages from the public headers, as libcurl and jansson ship theirs:
one page per header (miscache_<header>.3: every exported function of it
with the comment above its declaration) and one page per function name that
sources it (.so man3/miscache_<header>.3), so `man miscache_get` works.

  gen-man3.py OUTDIR                 write the pages
  gen-man3.py --check OUTDIR [LIB]   the pages in OUTDIR are what the headers
                                     give now, and (with LIB, the .so) every
                                     symbol it exports has a page
"""
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
INC = os.path.join(HERE, "..", "include", "miscache")
VERSION_RE = re.compile(r"project\(miscache VERSION ([0-9.]+)")

TITLES = {
    "batch": "nightly batch state, locks and runs",
    "cache": "generic cache operations",
    "client": "options, handles, events, latency and the pool",
    "common": "status codes, logical databases, TTL classes",
    "events": "invalidation events",
    "gift": "gift rules, classification and analytics",
    "keys": "keys, patterns and the keyspace table",
    "lock": "distributed locks",
    "master": "master data lists",
    "miscache": "the library's version and umbrella header",
    "monitor": "server figures, links, near cache and health",
    "patterns": "cache patterns: write-behind, refresh",
    "permissions": "permission maps and checks",
    "queue": "work queues",
    "session": "user sessions",
    "stats": "statistics: daily sales, revenue, serial counts",
    "temp": "temporary job status",
}


def version():
    with open(os.path.join(HERE, "..", "CMakeLists.txt")) as f:
        return VERSION_RE.search(f.read()).group(1)


def esc(text):
    """Text for roff: backslashes doubled, a leading . or ' escaped."""
    out = []
    for line in text.replace("\\", "\\e").split("\n"):
        if line.startswith((".", "'")):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def declarations(path):
    """[(name, prototype, comment)] of the exported functions of a header:
    the comment is the nearest block comment above the declaration (shared
    by a group of declarations, as the headers write them)."""
    src = open(path, encoding="utf-8").read()
    out, comment = [], ""
    pos = 0
    token = re.compile(r"/\*.*?\*/|MISCACHE_EXPORT\b[^;{]*;|#[^\n]*|\}|;",
                       re.S)
    for m in token.finditer(src):
        t = m.group(0)
        between = src[pos:m.start()]
        pos = m.end()
        if t.startswith("/*"):
            body = t[2:-2]
            lines = [re.sub(r"^\s*\* ?", "", l) for l in body.split("\n")]
            comment = "\n".join(lines).strip()
            continue
        if t.startswith("MISCACHE_EXPORT"):
            proto = " ".join(t[len("MISCACHE_EXPORT"):].split())
            if "(" not in proto or "#define" in between:
                continue
            name = re.search(r"(\w+)\s*\(", proto).group(1)
            out.append((name, proto, comment))
            continue
        if t in ("}", ";") or t.startswith("#"):
            if between.strip() or t == "}":
                comment = ""  # a struct or macro: its comment is its own
    return out


def page(header, decls, ver):
    title = TITLES.get(header, header)
    lines = [
        '.TH MISCACHE_%s 3 "2026-12-03" "libmiscache %s" "libmiscache Manual"'
        % (header.upper(), ver),
        ".SH NAME",
        ", ".join(n for n, _, _ in decls) + " \\- " + title,
        ".SH SYNOPSIS",
        ".nf",
        ".B #include <miscache/%s.h>" % header,
        "",
    ]
    for _, proto, _ in decls:
        lines.append(".BI \"%s\"" % esc(proto).replace('"', '\\(dq'))
    lines += [".fi", ".PP", "Link with \\fI\\-lmiscache\\fP "
              "(\\fBpkg-config --cflags --libs miscache\\fP).",
              ".SH DESCRIPTION"]
    last = None
    for name, proto, comment in decls:
        lines += [".SS %s()" % name, ".nf", esc(proto), ".fi"]
        if comment and comment != last:
            lines += [".PP", esc(comment)]
        elif comment:
            lines += [".PP", "See above."]
        last = comment
    lines += [".SH SEE ALSO", "\\fBmiscache\\fP(1), the headers in "
              "/usr/include/miscache, /usr/share/doc/libmiscache-dev"]
    return "\n".join(lines) + "\n"


def generate():
    ver = version()
    pages = {}
    for fn in sorted(os.listdir(INC)):
        if not fn.endswith(".h"):
            continue
        header = fn[:-2]
        decls = declarations(os.path.join(INC, fn))
        if not decls:
            continue
        main = "miscache_%s.3" % header
        pages[main] = page(header, decls, ver)
        for name, _, _ in decls:
            if name + ".3" != main:
                pages[name + ".3"] = ".so man3/%s\n" % main
    return pages


def main():
    args = sys.argv[1:]
    check = args[:1] == ["--check"]
    if check:
        args = args[1:]
    outdir = args[0]
    pages = generate()
    if not check:
        os.makedirs(outdir, exist_ok=True)
        for old in os.listdir(outdir):
            if old.endswith(".3") and old not in pages:
                os.unlink(os.path.join(outdir, old))
        for name, text in pages.items():
            with open(os.path.join(outdir, name), "w", encoding="utf-8") as f:
                f.write(text)
        print("gen-man3: %d pages in %s" % (len(pages), outdir))
        return 0
    bad = []
    have = set(f for f in os.listdir(outdir) if f.endswith(".3"))
    for name, text in pages.items():
        p = os.path.join(outdir, name)
        if not os.path.exists(p) or open(p, encoding="utf-8").read() != text:
            bad.append("%s differs from the headers" % name)
    for extra in sorted(have - set(pages)):
        bad.append("%s names no exported function any more" % extra)
    if len(args) > 1:
        nm = subprocess.run(["nm", "-D", "--defined-only", args[1]],
                            capture_output=True, text=True, check=True).stdout
        for line in nm.splitlines():
            parts = line.split()
            if len(parts) == 3 and parts[1] == "T" and \
                    parts[2] + ".3" not in have:
                bad.append("exported %s has no man page" % parts[2])
    for b in bad:
        print("gen-man3:", b)
    if bad:
        print("gen-man3: run scripts/gen-man3.py %s" % outdir)
        return 1
    print("gen-man3: %d pages match the headers%s" % (
        len(pages), " and every export has one" if len(args) > 1 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
