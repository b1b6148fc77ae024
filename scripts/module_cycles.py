#!/usr/bin/env python3
"""Finds module dependency cycles inside each crate of a Cargo workspace.

Usage: python3 scripts/module_cycles.py crates

An edge a -> b is a path `crate::b::…`, `super::…` or `self::…` in module a's non-test code (the
code from its first `#[cfg(test)]` on is not read, nor are comments), or a path `b::…` to a
child module b. Each strongly connected component of more than one module is a cycle: it is
printed, and the script exits with status 1. With none it prints nothing and exits 0."""
import os, re, sys
from collections import defaultdict
def modname(root, path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ('lib', 'main'): rel = rel[:-1]
    elif rel[-1] == 'mod': rel = rel[:-1]
    return tuple(rel)
def strip_tests(src):
    i = src.find('#[cfg(test)]')
    return src if i < 0 else src[:i]
def crate_graph(root):
    mods = {}
    for d, _, fs in os.walk(root):
        for f in fs:
            if f.endswith('.rs'): mods[modname(root, os.path.join(d, f))] = os.path.join(d, f)
    known = set(mods)
    g = defaultdict(set)
    for m, p in mods.items():
        src = strip_tests(open(p).read())
        src = re.sub(r'//[^\n]*', '', src)
        for path in re.findall(r'\b((?:crate|super|self)(?:::[A-Za-z_][A-Za-z0-9_]*)+)', src):
            parts = path.split('::')
            if parts[0] == 'crate': base = ()
            elif parts[0] == 'self': base = m
            else:
                base = m[:-1]
                k = 1
                while k < len(parts) and parts[k] == 'super': base = base[:-1]; k += 1
                parts = ['super'] + parts[k:]
            tgt = base
            for seg in parts[1:]:
                if tgt + (seg,) in known: tgt = tgt + (seg,)
                else: break
            if tgt != m and tgt != ():
                g[m].add(tgt)
        for child in re.findall(r'\b([a-z_][a-z0-9_]*)::', src):
            if m + (child,) in known:
                g[m].add(m + (child,))
    return known, g
def sccs(nodes, g):
    idx, low, st, on, out, c = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)
    def v(n):
        idx[n] = low[n] = c[0]; c[0] += 1; st.append(n); on.add(n)
        for w in g.get(n, ()):
            if w not in idx: v(w); low[n] = min(low[n], low[w])
            elif w in on: low[n] = min(low[n], idx[w])
        if low[n] == idx[n]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == n: break
            if len(comp) > 1: out.append(comp)
    for n in nodes:
        if n not in idx: v(n)
    return out
found = False
for crate in sorted(os.listdir(sys.argv[1])):
    root = os.path.join(sys.argv[1], crate, 'src')
    if not os.path.isdir(root): continue
    known, g = crate_graph(root)
    for comp in sccs(sorted(known), g):
        found = True
        print(crate, ' <-> '.join('::'.join(x) or 'lib' for x in sorted(comp)))
sys.exit(1 if found else 0)
