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


# -- the binding is the only extension point ------------------------------------------------------------------
# Everything the PyTorch backend decides per primitive is a hook of that primitive's binding
# (convcost.torch.binding.Binding); outside convcost/torch/bindings no code asks which class a layer is. The
# check below reads the source: names are resolved through the file's imports (``primitives.Conv``,
# ``from convcost.primitives import Conv as C``, ``import convcost.primitives``) to the objects they name.

import dataclasses  # noqa: E402 - the imports of this section, beside it
import importlib  # noqa: E402
import inspect  # noqa: E402

#: where the classes of layers are defined: a per-primitive decision names one of these
LAYER_HOMES = ("convcost.primitives", "convcost.efficient", "convcost.variants", "convcost.blocks")


def _dispatch_scope() -> list[pathlib.Path]:
    """The files that must decide nothing per primitive: convcost/torch outside its bindings, and training.py."""
    torch_dir = PACKAGE / "torch"
    found = [p for p in torch_dir.rglob("*.py") if "bindings" not in p.relative_to(torch_dir).parts]
    return sorted(found) + [PACKAGE / "training.py"]


#: kinds shared by many layers, as ``Layer`` and ``Merge`` are: asking "is this a variant (a composition
#: that spells out its layers)" decides nothing per primitive
LAYER_KINDS = ("convcost.variants.Variant",)


def _is_layer_class(obj) -> bool:
    module = getattr(obj, "__module__", "") or ""
    if f"{module}.{getattr(obj, '__qualname__', '')}" in LAYER_KINDS:
        return False
    return inspect.isclass(obj) and any(module == home or module.startswith(home + ".") for home in LAYER_HOMES)


def _layer_classes() -> list[type]:
    found = {}
    for home in LAYER_HOMES:
        package = importlib.import_module(home)
        names = [home] + [f"{home}.{p.stem}" for p in pathlib.Path(package.__file__).parent.glob("*.py")
                          if not p.stem.startswith("__")] if package.__file__.endswith("__init__.py") else [home]
        for name in names:
            for obj in vars(importlib.import_module(name)).values():
                if _is_layer_class(obj):
                    found[obj] = None
    return list(found)


def _vocabulary() -> tuple[frozenset, frozenset]:
    """The names of the layer classes, and the names of their fields that hold a string (an activation's
    ``kind``, an attention's ``kernel`` ...)."""
    classes = _layer_classes()
    fields = {f.name for cls in classes if dataclasses.is_dataclass(cls) for f in dataclasses.fields(cls)
              if isinstance(f.default, str)}
    return frozenset(cls.__name__ for cls in classes), frozenset(fields)


def _resolve_object(dotted: str):
    """The object a dotted name (``convcost.primitives.Conv``) names, or None."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return None
            obj = getattr(obj, attr)
        return obj
    return None


def _aliases(tree, module: str) -> dict:
    """Local name -> the dotted convcost name it stands for, from every import in the file (at any level)."""
    package = module.rpartition(".")[0]
    found = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    found[a.asname] = a.name
                else:
                    found[a.name.split(".")[0]] = a.name.split(".")[0]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            for a in node.names:
                found[a.asname or a.name] = f"{base}.{a.name}"
    return {k: v for k, v in found.items() if v.split(".")[0] == "convcost"}


def _dotted(node, aliases) -> str | None:
    if isinstance(node, ast.Name):
        return aliases.get(node.id)
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value, aliases)
        return f"{base}.{node.attr}" if base else None
    return None


def _strings(node, assigned) -> list[str] | None:
    """The strings of a literal collection of strings (``{"a", "b"}``, ``frozenset({...})``, ``"a b".split()``,
    a dict's keys, or a module-level name bound to one), else None."""
    if isinstance(node, ast.Name) and node.id in assigned:
        return _strings(assigned[node.id], {})
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
        values = [e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)]
        return values if values and len(values) == len(node.elts) else None
    if isinstance(node, ast.Dict):
        values = [k.value for k in node.keys if isinstance(k, ast.Constant) and isinstance(k.value, str)]
        return values if values and len(values) == len(node.keys) else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("set", "frozenset", "tuple"):
        return _strings(node.args[0], assigned) if len(node.args) == 1 else None
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "split":
        return _strings(node.func.value, assigned) and node.func.value.value.split()
    return None


def _field_read(node, fields) -> str | None:
    """The field a node reads from a layer: ``spec.kind``, ``getattr(spec, "kind", None)`` (not an object's own
    ``self.kind``)."""
    if isinstance(node, ast.Attribute) and node.attr in fields and not (
            isinstance(node.value, ast.Name) and node.value.id == "self"):
        return node.attr
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "getattr" and \
            len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and node.args[1].value in fields:
        return node.args[1].value
    return None


def dispatch_sites(source: str, module: str) -> list[str]:
    """Every per-primitive decision in ``source`` (the text of module ``module``), as ``line: what``: a layer
    class named other than to construct it (``isinstance``/``issubclass`` against it, a tuple, set or dict of
    classes, ``type(x) is Conv``), a name for a collection of layer classes (``primitives.PRIMITIVES``), a
    collection of strings naming layer classes, and a layer's string field compared with names
    (``spec.kind in {"silu", "gelu"}``)."""
    names, fields = _vocabulary()
    tree = ast.parse(source)
    aliases = _aliases(tree, module)
    assigned = {t.id: node.value for node in tree.body if isinstance(node, ast.Assign)
                for t in node.targets if isinstance(t, ast.Name)}
    constructed = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    inside = {id(c) for n in ast.walk(tree) if isinstance(n, ast.Attribute) for c in ast.walk(n.value)}
    found = []
    for node in ast.walk(tree):
        dotted = _dotted(node, aliases) if id(node) not in inside else None
        obj = _resolve_object(dotted) if dotted else None
        if _is_layer_class(obj) and id(node) not in constructed:
            found.append(f"{node.lineno}: {dotted} named other than to construct it")
        elif isinstance(obj, (tuple, list, set, frozenset, dict)) and any(map(_is_layer_class, obj)):
            found.append(f"{node.lineno}: {dotted} is a collection of layer classes")
        if isinstance(node, (ast.Tuple, ast.List, ast.Set, ast.Dict, ast.Call)):
            strings = _strings(node, {})
            # a set of names (not a record such as a module path beside a class name)
            named = sorted(set(strings) & names) if strings and all(map(str.isidentifier, strings)) else ()
            if named:
                found.append(f"{node.lineno}: strings naming layer classes {named}")
        if isinstance(node, ast.Compare):
            sides = [node.left, *node.comparators]
            read = next((f for f in map(lambda s: _field_read(s, fields), sides) if f), None)
            if read and any(_strings(s, assigned) is not None for s in sides):
                found.append(f"{node.lineno}: a layer's {read!r} compared with names")
    return found


def test_the_dispatch_check_finds_each_kind_of_per_primitive_decision():
    planted = '''
from convcost import primitives
from convcost import primitives as p
from convcost.primitives import Conv as C, Linear
import convcost.primitives
import convcost.efficient
from convcost.variants import StandardConv
from convcost.layers import Merge
from convcost.compose import Sequential

WEIGHTED = (p.Conv, p.Linear)
KINDS = frozenset({"silu", "gelu"})

def decide(spec, x, t):
    a = isinstance(spec, primitives.Attention)
    b = isinstance(spec, C)
    c = issubclass(t, convcost.primitives.ConvTranspose)
    d = type(spec) is Linear
    e = isinstance(spec, convcost.efficient.GhostModule) or isinstance(spec, StandardConv)
    f = spec.kind in KINDS or getattr(spec, "kernel", None) == "math"
    g = {"Conv", "BatchNorm"}
    h = t in primitives.PRIMITIVES
    # what is allowed: constructing a layer, asking for a composition or a merge, anything else
    ok = (p.Conv(C=3, O=4, K=3), isinstance(spec, (Merge, Sequential)), isinstance(x, (tuple, list)),
          self.kind == "add", {"relu", "add"})
    return a, b, c, d, e, f, g, h, ok
'''
    found = [site.split(": ", 1)[1] for site in dispatch_sites(planted, "convcost.torch.planted")]
    assert sorted(found) == sorted([
        "convcost.primitives.Conv named other than to construct it",
        "convcost.primitives.Linear named other than to construct it",
        "convcost.primitives.Attention named other than to construct it",
        "convcost.primitives.Conv named other than to construct it",
        "convcost.primitives.ConvTranspose named other than to construct it",
        "convcost.primitives.Linear named other than to construct it",
        "convcost.efficient.GhostModule named other than to construct it",
        "convcost.variants.StandardConv named other than to construct it",
        "a layer's 'kind' compared with names",
        "a layer's 'kernel' compared with names",
        "strings naming layer classes ['BatchNorm', 'Conv']",
        "convcost.primitives.PRIMITIVES is a collection of layer classes",
    ]), found


def test_no_per_primitive_decision_outside_the_bindings():
    """Outside convcost/torch/bindings (and in convcost/training.py) nothing asks which primitive a layer is:
    each such decision is a hook of the primitive's binding."""
    sites = [f"{path.relative_to(PACKAGE.parent)}:{site}" for path in _dispatch_scope()
             for site in dispatch_sites(path.read_text(), _module_name(path))]
    assert sites == []


def test_a_binding_names_only_hooks_it_has():
    pytest.importorskip("torch")
    from convcost.errors import ConvcostError
    from convcost.torch.binding import BINDINGS, HOOKS, binds

    fresh = type("Fresh", (), {})
    with pytest.raises(ConvcostError, match="'output_layuot', which is no part of a binding"):
        binds(fresh)(type("FreshBinding", (), {"output_layuot": lambda spec, operands, shape: (None, False)}))
    assert fresh not in BINDINGS
    assert {"passes_weights", "inplace_clone", "kernel", "step_call", "step_cost", "output_layout", "torch_backward",
            "rank_after", "module_inputs", "read_through"} <= set(HOOKS)
