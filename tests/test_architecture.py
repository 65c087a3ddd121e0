"""The shape of the package: a one-way import stack, torch only in convcost/torch, no generated code.

The import graph is read from the source (every ``import`` statement, at module
level or inside a function), so a circle hidden in a function-local import fails
here just as a module-level one would.
"""

from __future__ import annotations

import ast
import pathlib

import pytest

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "convcost"


def _module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _resolve(name: str) -> str | None:
    """The convcost module an import of ``name`` loads (a name inside a package resolves to the package)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> list[tuple[str, int, bool]]:
    """``(imported module, line, at module level)`` for every convcost import of ``module``."""
    tree = ast.parse(MODULES[module].read_text())
    top_level = {id(node) for node in tree.body}
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            names = [f"{base}.{a.name}" for a in node.names] if base.startswith("convcost") else [base]
        for name in names:
            if name.split(".")[0] == "convcost":
                target = _resolve(name)
                if target and target != module:
                    found.append((target, node.lineno, id(node) in top_level))
            elif name.split(".")[0] == "torch":
                found.append((name, node.lineno, id(node) in top_level))
    return found


def _graph() -> dict:
    return {m: sorted({t for t, _, _ in _imports(m) if t.startswith("convcost")}) for m in MODULES}


def _cycles(graph: dict) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _is_package_init(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def test_no_import_circle():
    # every edge counts, a submodule's import of its own package's __init__ too (``from convcost.torch import
    # to_torch`` inside convcost.torch.calibration made the two import each other)
    assert _cycles(_graph()) == []


@pytest.mark.parametrize("package", sorted(m for m in MODULES if _is_package_init(m)))
def test_a_submodule_is_not_shadowed_by_a_name_of_its_package(package):
    # ``import convcost.torch.profile as m`` gave the function when the package re-exported it under its
    # module's name: every ``package.name`` that is a submodule must be that module
    import importlib
    import sys

    if package.startswith("convcost.torch"):
        pytest.importorskip("torch")
    parent = importlib.import_module(package)
    children = [m for m in MODULES if m.rpartition(".")[0] == package and not m.endswith("__main__")]
    shadowed = []
    for child in children:
        importlib.import_module(child)
        if getattr(parent, child.rpartition(".")[2]) is not sys.modules[child]:
            shadowed.append(child)
    assert shadowed == []


def test_the_circle_detector_finds_a_circle():
    assert _cycles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]


def test_torch_is_imported_at_module_level_only_inside_convcost_torch():
    offenders = [
        f"{m}:{line} imports {name}"
        for m in MODULES
        if not (m == "convcost.torch" or m.startswith("convcost.torch."))
        for name, line, top in _imports(m)
        if name.split(".")[0] == "torch" and top
    ]
    assert offenders == []


def test_importing_convcost_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, convcost, convcost.testing; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("module", sorted(MODULES))
def test_no_generated_code_in_the_package(module):
    head = "\n".join(MODULES[module].read_text().splitlines()[:6]).lower()
    assert "generated" not in head and "do not edit" not in head


def test_every_primitive_has_one_torch_binding_that_builds_it():
    pytest.importorskip("torch")
    from convcost import primitives
    from convcost.torch.binding import BINDINGS, binds

    missing = [cls.__name__ for cls in primitives.PRIMITIVES if cls not in BINDINGS or BINDINGS[cls].build is None]
    assert missing == []
    from convcost.errors import ConvcostError

    with pytest.raises(ConvcostError, match="already has a torch binding"):
        binds(primitives.Conv)(type("Again", (), {}))
