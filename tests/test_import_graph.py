"""The import graph is visible and acyclic: trtmake's own modules (and the standard library) are
imported at module top; only the packages in trtmake.heavy are imported inside functions; no
two trtmake modules import each other, directly or around a loop."""

from __future__ import annotations

import ast
from pathlib import Path

from trtmake.heavy import DEFERRED, HEAVY, lazy_import

PACKAGE = Path(__file__).resolve().parent.parent / "trtmake"


def _modules() -> dict[str, ast.Module]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        name = ".".join(rel.parts[:-1] if rel.name == "__init__" else rel.parts)
        out[name] = tree = ast.parse(path.read_text(), str(path))
        tree.path = str(path.relative_to(PACKAGE.parent))
    return out


def _imported(node: ast.AST, module: str) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    if isinstance(node, ast.ImportFrom):
        if node.level:  # relative: resolve against the importing module's package
            base = module.split(".")[: -node.level] if not module.endswith("__init__") else module.split(".")
            package = ".".join([*base, node.module] if node.module else base)
            return [f"{package}.{a.name}" for a in node.names]
        return [f"{node.module}.{a.name}" for a in node.names]  # `from pkg import mod` names the module
    return []


def _lazy(node: ast.AST) -> list[str]:
    """`x = lazy_import("trtmake.y")` at module top: an edge of the graph, taken on first use."""
    if (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "lazy_import" and node.args
            and isinstance(node.args[0], ast.Constant)):
        return [str(node.args[0].value)]
    return []


def _top_level_imports(tree: ast.Module, module: str) -> set[str]:
    """Module-level imports (lazy ones included), outside `if TYPE_CHECKING:` blocks (those never
    run)."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.dump(node.test):
            continue
        for inner in ast.walk(node) if not isinstance(node, (ast.FunctionDef, ast.ClassDef)) else []:
            found.update(_imported(inner, module))
            found.update(_lazy(inner))
        if isinstance(node, ast.ClassDef):
            for inner in node.body:
                found.update(_imported(inner, module))
    return found


def test_function_level_imports_are_heavy_packages_only():
    offenders = []
    for module, tree in _modules().items():
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                for name in _imported(node, module):
                    if name.split(".")[0] not in HEAVY:
                        offenders.append(f"{tree.path}:{node.lineno} imports {name}")
    assert offenders == [], "\n".join(sorted(set(offenders)))


def test_no_import_cycles_between_trtmake_modules():
    modules = _modules()
    graph = {m: {_owner(i, modules) for i in _top_level_imports(t, m)} - {None, m} for m, t in modules.items()}
    cycles = []
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == [], "\n".join(cycles)


def _owner(name: str, modules: dict) -> str | None:
    """The trtmake module an import refers to (`from trtmake.x import y` -> trtmake.x, or
    trtmake.x.y when y is itself a module); None for other packages."""
    if not name.startswith("trtmake"):
        return None
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def test_the_checker_sees_a_cycle_and_a_function_level_import():
    """The two checks above are only as good as the parsing: feed them known cases."""
    tree = ast.parse("import numpy\nfrom trtmake import b\ndef f():\n    from trtmake.c import d\n    import onnx\n")
    assert _top_level_imports(tree, "trtmake.a") == {"numpy", "trtmake.b"}
    inner = [n for fn in ast.walk(tree) if isinstance(fn, ast.FunctionDef) for node in ast.walk(fn)
             for n in _imported(node, "trtmake.a")]
    assert inner == ["trtmake.c.d", "onnx"] and "onnx" in HEAVY and "trtmake" not in HEAVY
    assert _imported(ast.parse("from . import x").body[0], "trtmake.stages.build") == ["trtmake.stages.x"]
    modules = {"trtmake.c": None, "trtmake.stages": None}
    assert _owner("trtmake.c.d", modules) == "trtmake.c" and _owner("numpy.linalg", modules) is None


def test_deferred_modules_exist_and_only_listed_names_are_lazy():
    """Every DEFERRED name is a trtmake module; lazy_import refuses a module that is in neither list."""
    modules = _modules()
    assert [name for name in DEFERRED if name not in modules] == []
    try:
        lazy_import("trtmake.keys")
    except ValueError as exc:
        assert "trtmake.keys" in str(exc)
    else:
        raise AssertionError("lazy_import took a module that is not deferred")
