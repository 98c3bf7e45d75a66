"""The import layers of Atelier, checked from the source (nothing is imported or run):

    python -m core.tools.layers          # one line per breach and exit status 1, or "all layers hold"

The rules (DESIGN.md, "Layout"):

1. ``core/stylegan`` is a leaf: it imports only itself and ``core.storage``.
2. No import cycle between modules of ``core/``. Importing ``a.b.c`` from outside the package ``a.b``
   also runs ``a/b/__init__.py``, so that counts as an import of the package too.
3. ``core/`` never imports gradio; ``app.py`` and ``ui/`` never import torch.
4. No private name crosses a module boundary: neither ``from .x import _name`` nor ``x._name`` on
   an imported module of the project (make it public, or move it where it is used).

Every import counts, at the top of a module or inside a function: a lazy import is still a
dependency. Imports under ``if TYPE_CHECKING:`` and names built at run time (``import_module``)
are not followed; the latter are listed as notes.
"""
from __future__ import annotations

import ast
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
LEAF, LEAF_MAY_USE = "core.stylegan", ("core.storage",)
CHECKED = ("core", "ui", "app")      # top-level packages and modules whose sources are read


@dataclass
class Module:
    name: str
    path: Path
    is_package: bool
    imports: dict[str, set[str]] = field(default_factory=dict)   # module imported -> names taken from it
    private: list[str] = field(default_factory=list)             # "line N: from x import _y"
    notes: list[str] = field(default_factory=list)


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files(root: Path) -> list[Path]:
    files = []
    for top in CHECKED:
        if (root / top).is_dir():
            files += sorted(p for p in (root / top).rglob("*.py") if "__pycache__" not in p.parts)
        elif (root / f"{top}.py").is_file():
            files.append(root / f"{top}.py")
    return files


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


class _Reader(ast.NodeVisitor):
    """Collects one module's imports, the names bound to project modules, and private names used."""

    def __init__(self, mod: Module, known: set[str]):
        self.mod, self.known = mod, known
        self.bound: dict[str, str] = {}     # local name -> project module it stands for

    def _take(self, target: str, names=()) -> None:
        self.mod.imports.setdefault(target, set()).update(names)

    def _base(self, level: int) -> str:
        parts = self.mod.name.split(".")
        if not self.mod.is_package:
            parts = parts[:-1]
        return ".".join(parts[:len(parts) - (level - 1)] if level > 1 else parts)

    def visit_If(self, node: ast.If) -> None:
        if _type_checking_only(node):
            for child in node.orelse:
                self.visit(child)
            return
        self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._take(alias.name)
            if alias.asname and alias.name in self.known:
                self.bound[alias.asname] = alias.name
            elif not alias.asname and alias.name.split(".")[0] in self.known:
                self.bound[alias.name.split(".")[0]] = alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.module == "__future__":
            return
        source = self._base(node.level) if node.level else ""
        source = ".".join(p for p in (source, node.module or "") if p)
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            if sub in self.known:               # a submodule: ``from . import store``
                self._take(sub)             # (its package's init runs too: see edges())
                self.bound[alias.asname or alias.name] = sub
                continue
            self._take(source, [alias.name])
            if _private(alias.name) and source in self.known:
                self.mod.private.append(f"line {node.lineno}: from {source} import {alias.name}")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        chain, value = [node.attr], node.value
        while isinstance(value, ast.Attribute):
            chain.append(value.attr)
            value = value.value
        if isinstance(value, ast.Name) and value.id in self.bound:
            where = self.bound[value.id]
            for attr in reversed(chain):
                if f"{where}.{attr}" in self.known:
                    where = f"{where}.{attr}"
                    continue
                if _private(attr) and where != self.mod.name:
                    self.mod.private.append(f"line {node.lineno}: {where}.{attr}")
                break
            return  # the inner attributes are this chain
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        fn = node.func
        name = fn.attr if isinstance(fn, ast.Attribute) else fn.id if isinstance(fn, ast.Name) else ""
        if name in ("import_module", "__import__"):
            self.mod.notes.append(f"line {node.lineno}: a module named at run time ({name}) is not followed")
        self.generic_visit(node)


def read_modules(root: Path = REPO) -> dict[str, Module]:
    paths = source_files(root)
    known = {module_name(p, root) for p in paths}
    mods = {}
    for path in paths:
        mod = Module(module_name(path, root), path, path.name == "__init__.py")
        _Reader(mod, known).visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        mods[mod.name] = mod
    return mods


def edges(mods: dict[str, Module]) -> dict[str, dict[str, set[str]]]:
    """module -> {project module it runs on import: names taken}, with the package inits an import
    from outside the package runs (the top package ``core`` aside: every module is inside it)."""
    out: dict[str, dict[str, set[str]]] = {}
    for mod in mods.values():
        mine = out.setdefault(mod.name, {})
        for target, names in mod.imports.items():
            parts = target.split(".")
            for k in range(2, len(parts) + 1):
                step = ".".join(parts[:k])
                if step in mods and step != mod.name and not (k < len(parts) and _within(mod.name, step)):
                    mine.setdefault(step, set()).update(names if k == len(parts) else ())
    return out


def cycles(graph: dict[str, dict[str, set[str]]], within: str = "core") -> list[list[str]]:
    """Strongly connected groups of more than one module (or a module importing itself), Tarjan's way."""
    nodes = sorted(n for n in graph if _within(n, within))
    index, low, stack, on_stack, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, {})):
            if not _within(w, within):
                continue
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1 or v in graph.get(v, {}):
                found.append(sorted(group))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(nodes) + 100))
    try:
        for n in nodes:
            if n not in index:
                visit(n)
    finally:
        sys.setrecursionlimit(limit)
    return found


def _names(names: set[str]) -> str:
    return f" ({', '.join(sorted(names))})" if names else ""


def breaches(root: Path = REPO) -> list[str]:
    """One line per breach of the four rules; empty when the layers hold."""
    mods = read_modules(root)
    graph = edges(mods)
    out = []
    for name, targets in sorted(graph.items()):
        if _within(name, LEAF):
            for target, names in sorted(targets.items()):
                if not _within(target, LEAF) and target not in LEAF_MAY_USE and target != "core":
                    out.append(f"leaf: {name} imports {target}{_names(names)}; {LEAF} may use only itself and "
                               f"{', '.join(LEAF_MAY_USE)}")
    for group in cycles(graph):
        ties = [f"{a} -> {b}{_names(graph[a][b])}" for a in group for b in sorted(graph[a]) if b in group]
        out.append(f"cycle: {' / '.join(group)}: " + "; ".join(ties))
    for mod in mods.values():
        tops = {t.split(".")[0] for t in mod.imports}
        if _within(mod.name, "core") and "gradio" in tops:
            out.append(f"gradio: {mod.name} imports gradio; core/ never does")
        if (mod.name == "app" or _within(mod.name, "ui")) and "torch" in tops:
            out.append(f"torch: {mod.name} imports torch; app.py and ui/ never do")
        out += [f"private: {mod.name}, {where}" for where in mod.private]
    return out


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    root = Path(argv[0]).resolve() if argv else REPO
    found = breaches(root)
    for line in found:
        print(line)
    if "--notes" in argv:
        for mod in read_modules(root).values():
            for note in mod.notes:
                print(f"note: {mod.name}, {note}")
    if found:
        print(f"{len(found)} breach(es) of the import layers (see core/tools/layers.py for the rules)")
        return 1
    print(f"all layers hold in {root}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
