"""profile() against PyTorch on every model type of the installed transformers release, inference and training.

Run in a separate venv holding torch (pinned), ``pip install transformers pillow torch==<the pin>``, this checkout
(``pip install -e .``) and, for the model types that wrap a timm backbone (fast_vlm), ``pip install --no-deps timm
torchvision==<the pin's>``: ``python benchmarks/zoo_transformers.py [--quick] [--limit N] [--only TYPE ...]
[--shuffle SEED] [--timeout S] [--budget S] [--resume [--redo]]``. transformers is a benchmark dependency only,
never needed by convcost.

Each model type is built from its own config class shrunk to a small size (:func:`shrink`: hidden sizes 32,
two layers, four heads, a vocabulary of 99, short positions, few experts), with random weights (nothing is
downloaded), in a process of its own with a timeout, once with eager attention and once with sdpa. Its
inputs are the ones its forward names (token ids, pixel values, audio; decoder ids for an encoder-decoder),
and its output the first tensor it returns (:class:`First`). The oracles are PyTorch's own:

- inference: parameters by ``numel``; MACs from ``FlopCounterMode`` // 2 over one eval forward on CPU tensors,
  where it counts nothing for the CPU's fused attention kernel, so convcost's fused-attention rows are taken
  out before comparing (as ``benchmarks/zoo_training.py`` does for the backward), and where it is taught the
  experts' ``_grouped_mm`` (:func:`count_grouped_mm`) and triangular solves (:func:`count_triangular_solve`),
  which torch 2.13 does not count;
- training: :func:`convcost.torch.measure_training.measure_training` (FlopCounterMode over the backward with torch
  2.13's grouped weight-gradient overcount divided out, saved-tensor hooks by storage, Adam's state after one
  real step), compared by :func:`zoo_training.compare_step`.

Each configuration is then one of: **exact** (every number agrees, nothing listed), **listed** (convcost says
what it could not read: ``report.exact`` False or a step that is not complete, with the reasons), **false
alarm** (listed, yet every number it gave agrees), **silently wrong** (claims exact or complete and disagrees),
**refused** (``profile`` raised) or **skipped** (PyTorch/transformers could not build or run it from a small
config here). After profiling, the model's next real forward is run in eval and train mode: a model the
reading left changed is marked. Writes benchmarks/results/zoo_transformers.json and docs/zoo_transformers.md.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import re
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from zoo_agreement import import_torchvision  # noqa: E402
from zoo_training import compare_step, fused_attention  # noqa: E402
from zoo_transformers_inputs import BATCH, LENGTH, SAMPLES, inputs_for, shrink  # noqa: E402

from convcost.torch import profile  # noqa: E402
from convcost.torch.measure_training import measure_training  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "zoo_transformers.json"
DOC = Path(__file__).parents[1] / "docs" / "zoo_transformers.md"
ATTENTION = ("eager", "sdpa")
CLASSES = ("exact", "listed", "false alarm", "silently wrong", "refused", "skipped")

class First(nn.Module):
    """A transformers model as a module of tensors in, one tensor out: its forward called with the inputs by
    name, the first tensor of what it returns (its last hidden state, or logits)."""

    def __init__(self, model, names, fixed=None):
        super().__init__()
        self.model, self.names, self.fixed = model, tuple(names), dict(fixed or {})

    def forward(self, *xs):
        return _first(self.model(**dict(zip(self.names, xs)), **self.fixed))


def _first(out):
    if _tensor(out):
        return out
    values = out.values() if isinstance(out, dict) else out
    for v in values:
        found = _first(v) if isinstance(v, (tuple, list, dict)) else v
        if _tensor(found):  # not by dtype: a reading may give an output its input ids' dtype
            return found
    raise TypeError(f"no tensor output in {type(out).__name__}")


def _tensor(x) -> bool:
    """A tensor, or what stands for one while convcost reads the forward (it has a shape and a dtype)."""
    return isinstance(x, torch.Tensor) or hasattr(x, "shape") and isinstance(getattr(x, "dtype", None), torch.dtype)


def count_grouped_mm():
    """Teach FlopCounterMode ``aten._grouped_mm`` (mixture-of-experts kernels), which torch 2.13 counts as
    nothing, forward or backward: each output row is one product of the shared contraction, so the FLOPs are
    2 x numel(a) x b's last size (tokens x in x out for a (tokens, in) by (experts, in, out) product, and the
    same for its two backward products). Registered once, for every FlopCounterMode in the process."""
    import math

    from torch.utils.flop_counter import flop_registry, register_flop_formula

    op = getattr(torch.ops.aten, "_grouped_mm", None)
    if op is None or op in flop_registry:
        return

    @register_flop_formula(op)
    def grouped_mm_flop(a_shape, b_shape, *args, out_shape=None, **kwargs) -> int:
        return 2 * math.prod(a_shape) * b_shape[-1]


def count_triangular_solve():
    """Teach FlopCounterMode ``aten.linalg_solve_triangular`` (the chunked delta rule of gated linear attention:
    olmo_hybrid, qwen3_next, qwen3_5), which torch 2.13 counts as nothing, forward or in the backward's solve:
    forward substitution uses each entry of the triangle once per right-hand column, n (n + 1) / 2 multiply-adds
    (n (n - 1) / 2 with a unit diagonal) times the columns, as :class:`convcost.primitives.TriangularSolve` counts
    it (``tests/test_profile_transformers_cases2.py`` counts a substitution's multiply-adds by hand). Registered
    once, for every FlopCounterMode in the process."""
    from torch.utils.flop_counter import flop_registry, register_flop_formula

    op = torch.ops.aten.linalg_solve_triangular
    if op in flop_registry:
        return

    @register_flop_formula(op)
    def solve_triangular_flop(a_shape, b_shape, *args, out_shape=None, unitriangular=False, **kwargs) -> int:
        n = a_shape[-1]
        columns = math.prod(out_shape) // n if n else 0
        return 2 * columns * (n * (n - 1) // 2 if unitriangular else n * (n + 1) // 2)


def model_types() -> list:
    from transformers.models.auto.modeling_auto import MODEL_MAPPING_NAMES

    return sorted(MODEL_MAPPING_NAMES)


def build(kind, attention):
    """The base model of ``kind`` from its shrunk config, in eval mode, with ``attention``, seeded."""
    try:  # transformers imports torchvision where it finds it: its failing fake-op registrations skipped first
        import_torchvision()
    except ImportError:
        pass
    from transformers import AutoConfig, AutoModel

    torch.manual_seed(0)
    config = shrink(AutoConfig.for_model(kind))
    model = AutoModel.from_config(config, attn_implementation=attention)
    return model.eval()


def forward_macs(module, xs) -> int:
    """FlopCounterMode // 2 of one eval forward on CPU tensors."""
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        module(*xs)
    return counter.get_total_flops() // 2


def one(kind, attention) -> dict:
    """One configuration's row: PyTorch's numbers and convcost's, compared and classified."""
    row = {"model": kind, "attention": attention}
    count_grouped_mm()
    count_triangular_solve()
    try:
        model = build(kind, attention)
        names, xs, fixed = inputs_for(model, kind)
        wrapped = First(model, names, fixed).eval()
        t = time.perf_counter()
        want_macs = forward_macs(wrapped, xs)
        row["flopcounter_seconds"] = round(time.perf_counter() - t, 3)
        torch.manual_seed(0)
        measured = measure_training(wrapped, xs, optimizer="adam")
        wrapped.eval()
    except Exception as exc:  # noqa: BLE001 - what transformers or PyTorch cannot build or run here: said so
        row["skipped"] = _why(exc)
        row["class"], row["reason"] = "skipped", row["skipped"]
        return row
    row.update(inputs=list(names), want_params=sum(p.numel() for p in wrapped.parameters()), want_macs=want_macs,
               measured={k: measured[k] for k in ("backward_macs", "backward_macs_torch", "saved_elements",
                                                  "saved_indices", "bytes")})
    t = time.perf_counter()
    try:
        report = profile(wrapped, xs)
        row["seconds"] = round(time.perf_counter() - t, 3)
        row.update(params=report.total["params"], macs=report.total["macs"], exact=report.exact,
                   traced_with=report.traced_with, unsupported=[f"{u.op} x{u.count}" for u in report.unsupported
                                                                if u.macs])
        row["forward_agree"] = forward_agrees(row, report, fused_sdpa_calls(wrapped, xs))
    except Exception as exc:  # noqa: BLE001
        row["forward_error"] = _why(exc)
    row["forward_changed"] = _changed(wrapped, xs)
    try:
        torch.manual_seed(0)
        report = profile(wrapped, xs, training=True)
        row.update(compare_step(report, row["measured"]), training_traced_with=report.traced_with)
    except Exception as exc:  # noqa: BLE001
        row["training_error"] = _why(exc)
    row["training_changed"] = _changed(wrapped, xs)
    row["class"], row["reason"] = classify(row)
    return row


def forward_agrees(row, forward, fused_calls=None) -> bool:
    """Whether the forward's params and MACs are PyTorch's, less the rows of the CPU's fused attention kernel
    (which FlopCounterMode does not count). ``fused_calls``: for each ``F.scaled_dot_product_attention`` call of
    the real forward, in order, whether the fused kernel ran (:func:`fused_sdpa_calls`); where convcost read as
    many attention rows, those rows are the fused ones (strides decide too: an operand without a unit last
    stride takes the math path, which FlopCounterMode counts); else the rows are judged by their shapes."""
    rows = [r for r in forward.rows if type(r.spec).__name__ == "Attention"]
    if fused_calls is not None and len(fused_calls) == len(rows) and fused_attention(forward):
        fused = [r for r, ran_fused in zip(rows, fused_calls) if ran_fused]
    else:
        fused = fused_attention(forward)
    macs = row["macs"] - sum(r.macs for r in fused)
    return row["params"] == row["want_params"] and macs == row["want_macs"]


def fused_sdpa_calls(module, xs) -> list:
    """For each ``F.scaled_dot_product_attention`` call of one eval forward, in order, whether PyTorch ran the
    CPU's fused flash kernel (``aten._scaled_dot_product_flash_attention_for_cpu``) rather than the math path."""
    import torch.nn.functional as F
    from torch.overrides import TorchFunctionMode
    from torch.utils._python_dispatch import TorchDispatchMode

    calls = []
    flash = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)

    class Calls(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            if func is F.scaled_dot_product_attention:
                calls.append(False)
            return func(*args, **(kwargs or {}))

    class Kernels(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            if flash is not None and func.overloadpacket is flash and calls:
                calls[-1] = True
            return func(*args, **(kwargs or {}))

    with Calls(), Kernels(), torch.no_grad():
        module(*xs)
    return calls


def replace_rows(rows, kind, got) -> list:
    """``rows`` with the rows of model type ``kind`` replaced by ``got``, in the place the first of them held (at
    the end for a type not there before)."""
    at = next((i for i, r in enumerate(rows) if r["model"] == kind), len(rows))
    kept = [r for r in rows if r["model"] != kind]
    return kept[:at] + list(got) + kept[at:]


def _why(exc) -> str:
    text = str(exc).strip().splitlines()
    return portable(f"{type(exc).__name__}: {text[0][:200] if text else ''}")


def portable(text: str) -> str:
    """``text`` without the paths of the machine it ran on (a module's file in an error: ``from '/.../site-packages/
    transformers/...'``), so that the results stand on any machine."""
    return re.sub(r"/[^\s'\"<>]*/(site-packages|dist-packages)/", r"\1/", text)


def _changed(module, xs) -> str:
    """'' when the model's next real forward runs in eval and in train mode, else PyTorch's error."""
    for train in (False, True):
        module.train(train)
        try:
            with torch.no_grad():
                module(*xs)
        except Exception as exc:  # noqa: BLE001 - the reading left something in the model
            module.eval()
            return ("train: " if train else "eval: ") + _why(exc)
    module.eval()
    return ""


def classify(row) -> tuple:
    """(class, reason) of a row that ran; the forward's class and the step's, the worse of the two."""
    if "skipped" in row:
        return "skipped", row["skipped"]
    parts = []
    if "forward_error" in row:
        parts.append(("refused", "forward: " + row["forward_error"]))
    elif row["forward_agree"]:
        parts.append(("false alarm", "forward flagged: " + ", ".join(row["unsupported"]))
                     if not row["exact"] else ("exact", ""))
    else:
        parts.append(("listed", "forward: " + ", ".join(row["unsupported"])) if not row["exact"] else
                     ("silently wrong", f"forward MACs {row['macs']:,} against {row['want_macs']:,}, params "
                                        f"{row['params']:,} against {row['want_params']:,}"))
    if "training_error" in row:
        parts.append(("refused", "training: " + row["training_error"]))
    elif row["agree"]:
        parts.append(("exact", ""))
    elif not row["complete"]:
        parts.append(("false alarm" if row["counted_agree"] else "listed",
                      "training untracked: " + ", ".join(row["untracked"])))
    else:
        parts.append(("silently wrong", "training: " + row["differs"]))
    for key in ("forward_changed", "training_changed"):
        if row.get(key):
            parts.append(("silently wrong", f"model left changed after profile ({key.split('_')[0]}): {row[key]}"))
    order = ("silently wrong", "refused", "listed", "false alarm", "exact")
    worst = min(parts, key=lambda p: order.index(p[0]))[0]
    return worst, " + ".join(reason for cls, reason in parts if cls == worst and reason)


def markdown(rows, note=None) -> str:
    """The doc of ``rows``; ``note``, a paragraph saying which run they come from (kept in the results)."""
    counts = {c: sum(r["class"] == c for r in rows) for c in CLASSES}
    types = sorted({r["model"] for r in rows})
    left = _left_as_it_was()
    lines = ["# profile() on the transformers zoo", "",
             "Written by `benchmarks/zoo_transformers.py` (torch " + torch.__version__ + ", transformers "
             + _transformers_version() + f" in a separate venv). Every model type tried is built from its own "
             f"config class shrunk to a small size (hidden size 32, two layers, four heads, a vocabulary of 99), "
             f"random weights, inputs {BATCH}x{LENGTH} token ids (pixel values at the config's image size, "
             f"{BATCH}x{SAMPLES} audio samples, one channel of them for codecs, mel features, flattened patches with "
             "their grid for Qwen-VL-style vision towers, video frames, a series' past values: "
             "`benchmarks/zoo_transformers_inputs.py` says which model gets what), once with eager attention and once "
             "with sdpa, each "
             "model in a process of its own. Inference: params against `numel`, MACs against `FlopCounterMode` // 2 "
             "on CPU tensors (which counts nothing for the CPU's fused attention kernel: convcost's fused-attention "
             "rows are taken out before comparing). Training step: against `measure_training` (FlopCounterMode over "
             "the backward, saved-tensor hooks by storage, one real Adam step), as in docs/zoo_training.md. After "
             "profiling, the model's next real forward is run in eval and train mode.", "",
             f"**{len(types)} model types tried{_of_release()}, {len(rows)} configurations: "
             + ", ".join(f"{counts[c]} {c}" for c in CLASSES) + ".**", "",
             *([note, ""] if note else []),
             *_left_paragraph(rows, left),
             "- exact: forward and training step agree on every number, nothing listed;",
             "- listed: convcost says what it could not read (`report.exact` False, or a step that is not "
             "complete), and a total it gives is not PyTorch's;",
             "- false alarm: listed, yet every number convcost gave agrees (a call that does no counted work "
             "flagged the total);",
             "- silently wrong: convcost claims exact (or a complete step) and disagrees, or the model's next "
             "forward fails after `profile`;",
             "- refused: `profile` raised on a model PyTorch runs;",
             "- skipped: transformers or PyTorch could not build or run the model from a small config here.", "",
             "| model | attention | class | reading | params | MACs | backward MACs | saved elements | left as it "
             "was | why |",
             "|---|---|---|---|---:|---:|---:|---:|---|---|"]
    for r in rows:
        if r["class"] == "skipped":
            continue
        m = r["measured"]
        lines.append(f"| {r['model']} | {r['attention']} | {r['class']} | {r.get('training_traced_with', '')} | "
                     f"{r['want_params']:,} | {r['want_macs']:,} | {m['backward_macs']:,} | "
                     f"{m['saved_elements']:,} | {_cell(left.get((r['model'], r['attention']), 'not checked'))} | "
                     f"{_cell(r['reason'])} |")
    causes = {}
    for r in rows:
        if r["class"] not in ("exact", "skipped"):
            for part in r["reason"].split(" + "):
                key = f"{r['class']}: {_pattern(part)}"
                causes.setdefault(key, []).append(f"{r['model']} ({r['attention']})")
    lines += ["", "What the rows come to (each reduced to a few-line model against PyTorch in "
              "tests/test_profile_transformers_cases.py, `xfail(strict=True)` until fixed):", ""]
    lines += [f"- {symptom}: {cause}" for symptom, cause in DIAGNOSIS]
    if causes:
        lines += ["", "Causes, by kind (numbers left out; each is reduced to a few-line model in "
                  "tests/test_profile_transformers_cases.py):", ""]
        lines += [f"- {why} ({len(ms)}): {', '.join(ms)}" for why, ms in sorted(causes.items(),
                                                                              key=lambda kv: -len(kv[1]))]
    ratios = sorted(r["seconds"] / r["flopcounter_seconds"] for r in rows
                    if r.get("seconds") and r.get("flopcounter_seconds"))
    if ratios:
        lines += ["", f"Time: `profile`'s forward reading against one FlopCounterMode forward, median "
                  f"{ratios[len(ratios) // 2]:.2f}x, slowest {ratios[-1]:.2f}x, over {len(ratios)} configurations "
                  "(one shared two-core machine: a rough guide)."]
    reasons = {}
    for r in rows:
        if r["class"] == "skipped":
            reasons.setdefault(_cell(r["reason"])[:110], []).append(f"{r['model']} ({r['attention']})")
    if reasons:
        lines += ["", "Skipped (transformers or PyTorch could not build or run them from a small config here), "
                  "by reason:", ""]
        lines += [f"- {why}: {', '.join(sorted(set(ms)))}" for why, ms in sorted(reasons.items(),
                                                                            key=lambda kv: -len(kv[1]))]
    return "\n".join(lines) + "\n"


#: the causes behind the rows that are not exact, found by reducing them (tests/test_profile_transformers_cases.py)
DIAGNOSIS = (
    ("saved elements over by one score matrix per layer (eager attention of decoders fed token ids: GPT-2, "
     "Llama, SmolVLM)", "read on shapes, a layer's output takes the session's dtype, which is the first input's, "
                        "int64 for token ids; `.type(h.dtype)`/`.to(q.dtype)` then reads as a kept copy"),
    ("refused: `torch.finfo() requires a floating point input type` (T5 with sdpa, BART-style eager masks)",
     "the same int64 leak, read by `torch.finfo(x.dtype)`"),
    ("backward MACs, gradients and Adam state over by a pooler or head whose output is not returned (BERT, ViT, "
     "BEiT)", "a layer whose output does not reach the loss is given a backward, a gradient and optimizer state"),
    ("saved indices over (BERT's token type ids)", "an expanded index is counted by its numel, not its storage; "
                                                    "one index tensor used twice is counted twice"),
    ("saved elements under (masks)", "`masked_fill`'s boolean mask is read as shape-only, not saved"),
    ("backward MACs under on the fused kernel (T5-style position bias through `torch.where`)",
     "`torch.where(cond, x, number)` takes the gradient flag of `cond`"),
    ("refused: `property 'requires_grad' of 'Shaped' object has no setter` (wav2vec2-style feature encoders)",
     "a forward that sets `h.requires_grad = True`"),
    ("false alarms: `torch.diff` (mask code), `_weight_norm`, `linalg_vector_norm` (ConvNeXt V2)",
     "calls with no multiply-accumulate and no rule flag the total"),
    ("the model's next forward fails after `profile` (LeViT-style attention-bias caches)",
     "an eval-time cache filled in place during the reading kept a shape-only value (fixed: the reading now puts "
     "back the contents of the dicts and lists a module holds)"),
    ("listed, then silently wrong once read: `torch._grouped_mm` (Mixtral, FlexOlmo, OLMoE, Qwen3.5-MoE)",
     "the experts' grouped product had no rule (now the GroupedMatMul primitive; FlopCounterMode counts none: the "
     "zoo teaches it); read, the router's top-k weights lost their gradient (`topk` and `sort` read as views), "
     "`argmax` gave a gradient (fixed)"),
    ("refused: `Concat ... holds 0` (Phi-3's rotary pass-through; XLM's 1-D empty cache start)",
     "Concat refused an empty part; PyTorch skips a 1-D empty part (fixed)"),
    ("refused: `Boolean value of Tensor with more than one value is ambiguous` (Nystromformer)",
     "`pad_token_id in input_ids[:, [-1, 0]]` iterates a shape-only value's rows (fixed)"),
    ("refused: `the output shape of torch.view_as_real` (Llama 4)", "rotary embeddings in complex numbers: "
                                                                      "`view_as_complex`/`view_as_real` had no rule "
                                                                      "(fixed); a complex storage kept through its "
                                                                      "real view counted half its elements (fixed)"),
    ("saved elements under by the SpecAugment mask (wav2vec2, UniSpeech)",
     "`h[mask] = embed` (index_put) keeps its boolean mask (fixed)"),
    ("saved elements and indices under (Llama 4's router)", "`full_like(-inf).scatter_(1, idx, top)`: an in-place "
     "write from a tensor needing a gradient gives its target one (fixed; into a real constant: listed)"),
    ("backward MACs 1.6x (HRM)", "the forward's own `torch.no_grad()` (its k-step gradient trick) was not seen: the "
                                 "reading ran under no_grad (fixed)"),
    ("saved indices under (SAM 3 lite text's pooler)", "indices kept in the forward where the loss does not reach "
                                                       "were left out (fixed)"),
    ("saved elements under (ImageGPT's layer norm)", "`torch.mean(x, axis=-1)`: NumPy's names read as a full "
                                                     "reduction (fixed)"),
    ("refused: `SympifyError ... Tensor` (LED)", "a view sized by `torch.div` of two sizes, a 0-d tensor (fixed)"),
    ("RecurrentGemma's clipped sqrt, YOSO's kernels", "a custom `autograd.Function`: its forward runs with grad "
                                                       "disabled and its backward is its own: listed"),
)


LEFT = Path(__file__).parent / "results" / "zoo_transformers_left.json"


def _left_as_it_was() -> dict:
    """{(model type, attention): answer} of ``benchmarks/zoo_transformers_left.py``'s run, where there is one."""
    if not LEFT.exists():
        return {}
    return {(r["model"], r["attention"]): r.get("left_as_it_was", "not checked: " + r.get("skipped", ""))
            for r in json.loads(LEFT.read_text())["rows"]}


def _left_paragraph(rows, left) -> list:
    """The headline of the left-as-it-was check, over the configurations that ran."""
    ran = [(r["model"], r["attention"]) for r in rows if r["class"] != "skipped"]
    checked = [left[k] for k in ran if k in left and not left[k].startswith("not checked")]
    if not checked:
        return []
    kept = sum(a.startswith("yes") for a in checked)
    changed = [f"{m} ({a}): {left[(m, a)]}" for m, a in ran if (m, a) in left and left[(m, a)].startswith("NO")]
    return [f"*Left as it was* (`benchmarks/zoo_transformers_left.py`): after `profile` read its forward and its "
            f"training step, the model's state dict equals a copy taken before, and its next real forward, in eval "
            f"and then in train mode (the same random draws), gives exactly what the copy's gives (`torch.equal`): "
            f"**{kept} of the {len(checked)} configurations checked** (of {len(ran)} that ran)"
            + (f"; not: {'; '.join(changed)}" if changed else "") + ".", ""]


def _pattern(reason) -> str:
    """A reason with its numbers and long tails left out, so the same cause in two models reads the same."""
    import re

    reason = re.sub(r"\d[\d,]*", "N", reason)
    reason = re.sub(r"against N", "", reason)
    return _cell(reason)[:160]


def _of_release() -> str:
    """' of the release's N' (the model types a run may reach, in a seeded random order within its time budget)."""
    try:
        return f" of the release's {len(model_types())} (drawn in a seeded random order, as the time budget allowed)"
    except ImportError:
        return ""


def _cell(text) -> str:
    return str(text).replace("|", "/").replace("\n", " ")[:300]


def _transformers_version() -> str:
    try:
        import transformers

        return transformers.__version__
    except ImportError:
        return "(not installed)"


#: model types of the --quick sample: one of each kind the issue names (encoder, decoder with rotary and grouped
#: heads, relative positions, encoder-decoder, vision, audio, mixture of experts)
QUICK = ("bert", "gpt2", "llama", "t5", "vit", "beit", "swin", "wav2vec2", "whisper", "mixtral", "convnextv2",
         "bart")


def main(argv=None):
    args = argparse.ArgumentParser()
    args.add_argument("--quick", action="store_true", help="only the sample of QUICK (for CI)")
    args.add_argument("--only", nargs="*", default=None, help="only these model types")
    args.add_argument("--limit", type=int, default=0)
    args.add_argument("--shuffle", type=int, default=None, help="try the model types in a seeded random order")
    args.add_argument("--timeout", type=float, default=180, help="seconds for one model type (both attentions)")
    args.add_argument("--budget", type=float, default=0, help="stop after this many seconds")
    args.add_argument("--resume", action="store_true", help="keep the rows results/zoo_transformers.json has")
    args.add_argument("--redo", action="store_true", help="with --resume: run again the types it has (their rows "
                                                          "replaced), not only the ones it lacks")
    args.add_argument("--doc", action="store_true", help="only rewrite the doc from the results")
    args.add_argument("--one", metavar="TYPE", help=argparse.SUPPRESS)
    opts = args.parse_args(argv)
    if opts.one:  # each model type in a process of its own
        for attention in ATTENTION:
            print(json.dumps(one(opts.one, attention)), flush=True)
        return
    if opts.doc:
        results = json.loads(RESULTS.read_text())
        DOC.write_text(markdown(results["rows"], results.get("note")))
        return
    todo = list(QUICK) if opts.quick else opts.only or model_types()
    if opts.shuffle is not None:
        random.Random(opts.shuffle).shuffle(todo)
    if opts.limit:
        todo = todo[:opts.limit]
    previous = json.loads(RESULTS.read_text()) if opts.resume and RESULTS.exists() else {}
    rows, note = previous.get("rows", []), previous.get("note")
    done_types = {r["model"] for r in rows}
    began = time.time()
    for kind in todo:
        if kind in done_types and not opts.redo:
            continue
        if opts.budget and time.time() - began > opts.budget:
            break
        try:
            ran = subprocess.run([sys.executable, __file__, "--one", kind], capture_output=True, text=True,
                                 timeout=opts.timeout)
            got = [json.loads(line) for line in ran.stdout.splitlines() if line.startswith("{")]
            ended = None if ran.returncode == 0 else f"the process ended with {ran.returncode} (" + (
                (ran.stderr.strip().splitlines() or ["?"])[-1][:150]) + ")"
        except subprocess.TimeoutExpired as exc:
            got = [json.loads(line) for line in (exc.stdout or b"").decode().splitlines() if line.startswith("{")]
            ended = f"over the {opts.timeout:g} s timeout"
        for attention in ATTENTION[len(got):]:
            got.append({"model": kind, "attention": attention, "skipped": ended or "no result",
                        "class": "skipped", "reason": ended or "no result"})
        rows = replace_rows(rows, kind, got)
        RESULTS.parent.mkdir(exist_ok=True)
        RESULTS.write_text(json.dumps({"torch": torch.__version__, "transformers": _transformers_version(),
                                       **({"note": note} if note else {}), "rows": rows}, indent=1))
        for r in got:
            print(kind, r["attention"], r["class"], r["reason"][:160], flush=True)
    if "class" not in (rows[0] if rows else {"class": 0}):
        return
    DOC.write_text(markdown(rows, note))
    counts = {c: sum(r["class"] == c for r in rows) for c in CLASSES}
    print(len(rows), "configurations:", counts)


if __name__ == "__main__":
    main()
