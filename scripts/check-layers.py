#!/usr/bin/env python3
"""The layer check: no loop among the library's source files, and no call
from a lower folder of src/ to a higher one.

It reads the object files, as a linker would: file A depends on file B when
A uses a global symbol that B defines (nm -g). Folders, lowest first:
base, conn, core, ops, domain (docs/design.md, "Layers").  A file may use
its own folder and the folders below it; above core, of conn only the
replies (conn/reply.c): the handle (core/client.c) is the door to the
dispatcher.

usage: check-layers.py OBJDIR [--graph]
  OBJDIR  the object directory of the miscache_objects target, e.g.
          build/CMakeFiles/miscache_objects.dir
  --graph also print every file's edges
Exit status: 0 clean, 1 a loop or an upward call, 2 usage or no objects.
"""
import os
import subprocess
import sys

LAYERS = ["base", "conn", "core", "ops", "domain"]
# Above core, conn/ is reached only through the handle (core/client.c):
# the one conn file an operation may use is the reply reader's accessors.
ABOVE_CORE_MAY_USE = {"conn/reply.c"}


SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")


def objects(root):
    """The objects of the sources that exist now (a build directory may
    still hold those of files since moved or removed)."""
    found = []
    for d, _, names in os.walk(root):
        for n in names:
            path = os.path.join(d, n)
            if n.endswith(".c.o") and os.path.exists(
                    os.path.join(SRC, name_of(path, root))):
                found.append(path)
    return sorted(found)


def name_of(path, root):
    rel = os.path.relpath(path, root)
    if rel.startswith("src" + os.sep):
        rel = rel[4:]
    return rel[:-2]  # drop ".o": "conn/node.c"


def symbols(path):
    out = subprocess.run(["nm", "-g", path], check=True, capture_output=True,
                         text=True).stdout
    defined, used = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            used.add(parts[1])
        elif len(parts) == 3 and parts[1] not in "Uuvw":
            defined.add(parts[2])
    return defined, used


def layer_of(name):
    top = name.split("/", 1)[0]
    return LAYERS.index(top) if top in LAYERS else -1


def loops(graph):
    """Tarjan's strongly connected components of more than one file (or a
    file that reaches itself), iteratively."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            advanced = False
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter[0]
                    counter[0] += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    advanced = True
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def main(argv):
    if len(argv) < 2 or argv[1] in ("-h", "--help"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    root = argv[1]
    objs = objects(root)
    if not objs:
        print("check-layers: no object files under " + root, file=sys.stderr)
        return 2
    definer, uses = {}, {}
    for path in objs:
        name = name_of(path, root)
        defined, used = symbols(path)
        uses[name] = used
        for s in defined:
            definer[s] = name
    graph = {n: set() for n in uses}
    why = {}
    for a, used in uses.items():
        for s in sorted(used):
            b = definer.get(s)
            if b and b != a:
                graph[a].add(b)
                why.setdefault((a, b), s)
    bad = 0
    for comp in loops(graph):
        bad += 1
        print("loop of %d files: %s" % (len(comp), " ".join(comp)))
        members = set(comp)
        for a in comp:
            for b in sorted(graph[a] & members):
                print("  %s -> %s (%s)" % (a, b, why[(a, b)]))
    for a in sorted(graph):
        la = layer_of(a)
        if la < 0:
            bad += 1
            print("%s: not in a layer folder (%s)" % (a, ", ".join(LAYERS)))
            continue
        for b in sorted(graph[a]):
            lb = layer_of(b)
            if lb > la:
                bad += 1
                print("upward call: %s -> %s (%s)" % (a, b, why[(a, b)]))
            elif (la > LAYERS.index("core") and lb == LAYERS.index("conn")
                  and b not in ABOVE_CORE_MAY_USE):
                bad += 1
                print("past the handle: %s -> %s (%s)" % (a, b, why[(a, b)]))
    if "--graph" in argv:
        for a in sorted(graph):
            print("%s -> %s" % (a, " ".join(sorted(graph[a]))))
    files = len(graph)
    edges = sum(len(v) for v in graph.values())
    if bad:
        print("check-layers: %d problem(s) in %d files, %d edges" % (bad, files, edges))
        return 1
    print("check-layers: %d files, %d edges, no loop, no upward call, "
          "nothing past the handle" % (files, edges))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
