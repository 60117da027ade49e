#!/usr/bin/env bash
# The import graph of src/: fails on a circle between modules, and on swift/ importing ftp/ or metrics (the
# Swift client knows nothing of FTP or of our metrics). Files over 600 lines are listed (a warning).
# Usage: tests/check-imports.sh [-v]   (-v prints every module's imports)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec python3 - src "$@" <<'PY'
"""Module import graph of src/: edges from `crate::` and `super::` paths; prints cycles and forbidden edges."""
import os, re, sys
root = sys.argv[1]
mods = {}
for dp, _, fs in os.walk(root):
    for f in fs:
        if f.endswith('.rs'):
            p = os.path.join(dp, f)
            rel = os.path.relpath(p, root)[:-3].split(os.sep)
            if rel[-1] in ('mod', 'lib', 'main'):
                rel = rel[:-1]
            mods[tuple(rel)] = p
def resolve(path):
    # longest prefix that is a module
    for n in range(len(path), 0, -1):
        if tuple(path[:n]) in mods:
            return tuple(path[:n])
    return None
edges = {}
for m, p in mods.items():
    src = open(p).read()
    src = re.sub(r'(?s)#\[cfg\(test\)\]\s*mod tests\s*\{.*', '', src)  # test modules may import freely
    src = re.sub(r'//[^\n]*', '', src)
    targets = set()
    for mm in re.finditer(r'\bcrate::([A-Za-z_][\w:]*)', src):
        t = resolve(mm.group(1).split('::'))
        if t: targets.add(t)
    for mm in re.finditer(r'\bsuper::([A-Za-z_][\w:]*)', src):
        parent = list(m[:-1]) if not p.endswith('mod.rs') else list(m[:-1])
        t = resolve(parent + mm.group(1).split('::'))
        if t: targets.add(t)
    # use crate::{a, b::c}
    for mm in re.finditer(r'use crate::\{([^;]*)\};', src, re.S):
        for part in re.split(r'[,\s]+', mm.group(1)):
            part = part.strip('{} ')
            if part:
                t = resolve(part.split('::'))
                if t: targets.add(t)
    for mm in re.finditer(r'use super::\{([^;]*)\};', src, re.S):
        for part in re.split(r'[,\s]+', mm.group(1)):
            part = part.strip('{} ')
            if part:
                t = resolve(list(m[:-1]) + part.split('::'))
                if t: targets.add(t)
    targets.discard(m)
    targets.discard(())
    edges[m] = {t for t in targets if t != m[:len(t)] or len(t) == len(m)}
name = lambda m: '/'.join(m) or 'lib'
# Tarjan SCC
index = {}; low = {}; stack = []; on = set(); sccs = []; i = [0]
def strong(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in edges.get(v, ()):
        if w not in index:
            strong(w); low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop(); on.discard(w); comp.append(w)
            if w == v: break
        if len(comp) > 1: sccs.append(comp)
sys.setrecursionlimit(10000)
for v in list(edges):
    if v not in index: strong(v)
bad = 0
for c in sccs:
    bad += 1
    print('cycle:', ' '.join(sorted(name(x) for x in c)))
for m, ts in sorted(edges.items()):
    if m[:1] == ('swift',):
        for t in ts:
            if t[:1] in (('ftp',), ('metrics',)):
                bad += 1
                print(f'forbidden: {name(m)} -> {name(t)}')
for m, p in sorted(mods.items()):
    n = sum(1 for _ in open(p))
    if n > 600:
        print(f'warning: {name(m)} is {n} lines (over 600)')
if '-v' in sys.argv:
    for m, ts in sorted(edges.items()):
        print(name(m), '->', ', '.join(sorted(name(t) for t in ts)))
sys.exit(1 if bad else 0)
PY
