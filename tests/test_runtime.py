"""The runtime: one registry of the facts of a torch release and device, the release read in one place, an
unproven release said out loud, and FlopCounterMode's convention probed rather than assumed."""

import ast
import importlib
import pathlib
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from convcost.torch import runtime  # noqa: E402
from convcost.torch.measure_training import backward_macs  # noqa: E402
from convcost.torch.runtime.facts import FACTS  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent

#: Code outside convcost/torch/runtime that still reads the torch release or a private torch API, as
#: (file, what it reads). Each is listed in the runtime's FACTS (or, for calibrate's cache key and messages,
#: only names the release) and is to be moved behind convcost.torch.runtime; this list only shrinks.
#: sites outside the runtime that still read the release or private torch, each with its reason (none now)
KNOWN: set = set()


def _dotted(node):
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return [node.id, *reversed(parts)] if isinstance(node, ast.Name) else None


def release_reads(source: str) -> set:
    """What a module's code reads of the torch release or of torch's private API, or patches process-wide:
    ``torch.__version__``, an attribute path through a name starting with ``_`` from a torch name, an import
    from a private torch module, an assignment to a torch function (a process-wide patch)."""
    tree = ast.parse(source)
    torch_names = {"torch"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            torch_names |= {a.asname or a.name.split(".")[0] for a in node.names if a.name.split(".")[0] == "torch"}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "torch":
            torch_names |= {a.asname or a.name for a in node.names}
    found, inner = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            inner.add(id(node.value))
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            module = node.module if isinstance(node, ast.ImportFrom) else ""
            for a in node.names:
                path = f"{module}.{a.name}" if module else a.name
                if path.split(".")[0] == "torch" and any(p.startswith("_") for p in path.split(".")[1:]):
                    found.add(f"from {module} import {a.name}" if module else f"import {a.name}")
        elif isinstance(node, ast.Attribute) and id(node) not in inner:
            path = _dotted(node)
            if path and path[0] in torch_names and any(p.startswith("_") for p in path[1:]):
                found.add(".".join(path))
        if isinstance(node, ast.Assign):
            for target in node.targets:
                path = _dotted(target) if isinstance(target, ast.Attribute) else None
                if path and path[0] in torch_names:
                    found.add(".".join(path) + " = ...")
    return found


def test_release_reads_are_found():
    source = """
import torch
import torch.nn.functional as F
from torch._prims_common import suggest_memory_format
from torch import _C as C
v = torch.__version__
with torch._C.DisableTorchFunction(): pass
F.has_torch_function = None
torch.nn.Module.__call__ = None
ok = torch.nn.functional.relu, torch.ops.aten.mm
"""
    assert release_reads(source) == {
        "from torch._prims_common import suggest_memory_format", "from torch import _C", "torch.__version__",
        "torch._C.DisableTorchFunction", "F.has_torch_function = ...", "torch.nn.Module.__call__ = ...",
        "torch.nn.Module.__call__"}


def test_only_the_runtime_reads_the_release_or_private_torch():
    """Outside convcost/torch/runtime, nothing new reads torch.__version__ or a private torch API."""
    runtime_dir = ROOT / "convcost" / "torch" / "runtime"
    found = set()
    for path in sorted((ROOT / "convcost").rglob("*.py")):
        if runtime_dir in path.parents:
            continue
        for read in release_reads(path.read_text()):
            found.add((path.relative_to(ROOT).as_posix(), read.replace(" = ...", "") if "Module" in read else read))
    assert found - KNOWN == set(), "read the release or private torch only in convcost.torch.runtime"
    assert KNOWN - found == set(), "moved behind the runtime: strike these from KNOWN"


@pytest.mark.parametrize("fact", FACTS, ids=lambda f: f.name)
def test_every_fact_names_its_replay_and_a_test_that_exists(fact):
    for dotted in fact.replay:
        module, _, rest = dotted.partition(".")
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):  # the longest importable prefix, then attributes
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for name in parts[i:]:
                obj = getattr(obj, name)
            break
        else:
            pytest.fail(f"{fact.name}: {dotted} does not resolve")
    file, _, test = fact.test.partition("::")
    assert f"def {test}(" in (ROOT / file).read_text(), fact.test
    assert fact.source and set(fact.releases) <= set(runtime.PROVEN) and fact.devices


def test_the_grouped_probe_matches_flopcountermode_by_hand():
    """A depthwise 3x3 weight gradient on 4 channels of 10x10: 3 600 MACs, counted G = 4 times where the
    release overcounts; convention="convcost" gives the work done on every release."""
    conv, x = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False), torch.randn(1, 4, 10, 10)
    by_hand = 4 * 10 * 10 * 9
    assert backward_macs(conv, x) == by_hand
    assert backward_macs(conv, x, convention="torch") == by_hand * (4 if runtime.flop_counter().grouped_overcount
                                                                    else 1)


def test_the_fused_attention_probe_matches_flopcountermode():
    """1x2x8x4 attention on the CPU's fused kernel: 2 x 8 x 8 x (4 + 4) MACs forward (2 048 FLOPs) and
    2 x 8 x 8 x (3 x 4 + 2 x 4) backward (5 120 FLOPs) where the release counts the kernel, else nothing."""
    q, k, v = (torch.randn(1, 2, 8, 4, requires_grad=True) for _ in range(3))
    with FlopCounterMode(display=False) as forward:
        out = F.scaled_dot_product_attention(q, k, v)
    with FlopCounterMode(display=False) as backward:
        out.sum().backward()
    counted = runtime.flop_counter().fused_attention
    assert (forward.get_total_flops(), backward.get_total_flops()) == ((2048, 5120) if counted else (0, 0))
    assert counted == (runtime.release() >= (2, 15))  # what 2.13, 2.14 and 2.15 do


def test_the_running_release_is_read_once():
    assert runtime.release() == runtime.parse(torch.__version__)
    assert runtime.version() is runtime.version()


def test_a_cuda_step_is_unproven_never_the_cpus_numbers_silently():
    assert runtime.unproven_step("cuda") and "cuda" in runtime.unproven_step("cuda")[-1]
    assert runtime.unproven_step("cpu") == (() if runtime.is_proven() else runtime.unproven_step("cpu"))


UNPROVEN = """
import warnings, torch
torch.__version__ = "2.99.0"
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    import convcost.torch
    from convcost.torch import profile, runtime
    import importlib; importlib.reload(convcost.torch)
    step = profile(torch.nn.Linear(3, 2), (1, 3), training=True).training
ours = [w for w in caught if issubclass(w.category, runtime.UnprovenReleaseWarning)]
print(len(ours)); print(ours[0].message); print(step.unproven); print(step.proven)
"""


def test_an_unproven_release_warns_once_and_its_step_says_so():
    out = subprocess.run([sys.executable, "-c", UNPROVEN], capture_output=True, text=True, cwd=ROOT, check=True)
    count, message, unproven, proven = out.stdout.splitlines()
    assert count == "1" and issubclass(runtime.UnprovenReleaseWarning, UserWarning)
    assert "torch 2.99.0" in message and all(f"{a}.{b}" in message for a, b in runtime.PROVEN)
    assert "2.99.0" in unproven and proven == "False"


def test_a_proven_step_says_nothing():
    from convcost.torch import profile

    step = profile(nn.Linear(3, 2), (1, 3), training=True).training
    assert step.unproven == () and step.proven if runtime.is_proven() else not step.proven


def test_the_releases_doc_lists_every_fact_and_pairing():
    text = (ROOT / "docs" / "releases.md").read_text()
    assert all(f"| {f.name} |" in text and f"`{f.test}`" in text for f in FACTS)
    assert all(f"`{name}`" in text for f in FACTS for name in f.replay)
    assert all(f"| {build}" in text for build in runtime.PROVEN.values())
    assert all(f"| {v} |" in text for v in runtime.TORCHVISION.values())


def _runs_flash(shapes) -> bool:
    from torch.utils._python_dispatch import TorchDispatchMode

    class Ops(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.names = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            self.names.append(str(func))
            return func(*args, **(kwargs or {}))

    q, k, v = (torch.randn(*s, requires_grad=True) for s in shapes)
    with Ops() as ops:
        F.scaled_dot_product_attention(q, k, v)
    return any("flash_attention" in name for name in ops.names)


HEADS = [(b, (hq, hk, hv)) for b in ((1, 1), (2, 2), (2, 1)) for hq, hk, hv in
         ((2, 2, 2), (2, 1, 1), (2, 2, 1), (1, 2, 2), (3, 1, 1))]


@pytest.mark.parametrize("shapes", [[(2, 3, 4)] * 3, [(2, 3, 4), (2, 5, 4), (2, 5, 6)], [(3, 4)] * 3,
                                    [(2, 3, 4), (1, 5, 4), (1, 5, 4)], [(1, 1, 2, 3, 4)] * 3]
                         + [[(bq, hq, 3, 4), (bk, hk, 5, 4), (bk, hv, 5, 4)] for (bq, bk), (hq, hk, hv) in HEADS],
                         ids=str)
def test_the_fused_attention_choice_is_the_running_releases(shapes):
    """Which shapes the running torch gives its fused CPU kernel (the aten op it dispatches), as the
    Attention primitive predicts it under the rule the runtime installed for this release."""
    from convcost.primitives import Attention

    assert Attention().fused(shapes) == _runs_flash(shapes)
