"""profile() against FlopCounterMode and numel on public model zoos (torchvision, timm), never a convcost dependency.

Run in a separate venv holding torch (pinned) and ``pip install --no-deps torchvision timm pyyaml``:
``python benchmarks/zoo_agreement.py [--limit N] [--size 64]``. torchvision 0.28 imports against this torch
only if its failing fake-op registrations are skipped: :func:`import_torchvision` wraps
``torch.library.register_fake`` during the import. Each model is built without pretrained weights, in eval
mode, at a small input size; params must equal numel and MACs FlopCounterMode (on meta) // 2. Writes
benchmarks/results/zoo.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from convcost.torch import profile

RESULTS = Path(__file__).parent / "results" / "zoo.json"
DOC = Path(__file__).parents[1] / "docs" / "zoo.md"


def markdown(rows, size) -> str:
    """docs/zoo.md: the agreement table, written from the run."""
    ran = [r for r in rows if "skipped" not in r]
    lines = ["# profile() on public model zoos", "",
             "Written by `benchmarks/zoo_agreement.py` (torch " + torch.__version__ + ", torchvision and timm "
             f"installed with `--no-deps` in a separate venv; no pretrained weights; input 1x3x{size}x{size}, 96 for "
             "Inception, the model's own size where it takes only that). params against `numel`, MACs against "
             "`FlopCounterMode` total // 2 on meta tensors.", "",
             f"**{len(ran)} models run: params exact on {sum(r['params_ok'] for r in ran)}, MACs exact on "
             f"{sum(r['macs_ok'] for r in ran)}; `report.exact` on {sum(bool(r.get('exact')) for r in ran)}; "
             f"left as it was on {sum(str(r.get('left_as_it_was', '')).startswith('yes') for r in ran)}.** "
             f"{len(rows) - len(ran)} models could not be built or run by PyTorch here (listed at the end).", "",
             "Where FlopCounterMode is wrong, convcost does not copy it, and the tests check it by hand instead: "
             "`FlopCounterMode` counts no MACs for a matrix-vector product (`aten.mv`, `aten.dot`: `x @ v` with a "
             "1-D `v`), and on CPU tensors none for `F.scaled_dot_product_attention` (its CPU flash kernel is not "
             "registered; on meta tensors, as here, it counts B H L S (E + Ev)). convcost counts both "
             "(tests/test_profile_hard.py).", "",
             "*Left as it was:* after `profile` read its forward and then its training step (batch 2; the step's "
             "counts are docs/zoo_training.md's), the model's state dict equals a copy taken before it, and its "
             "next real forward, in eval mode and then in train mode (the same random draws), gives exactly what "
             "the copy's gives (a random batch of two; `torch.equal`).", "",
             "| source | model | reading | params | MACs | params exact | MACs exact | left as it was | seconds |",
             "|---|---|---|---:|---:|---|---|---|---:|"]
    for r in ran:
        lines.append(f"| {r['source']} | {r['model']} | {r.get('traced_with', r.get('error', ''))} | "
                     f"{r['want_params']:,} | {r['want_macs']:,} | {'yes' if r['params_ok'] else 'NO'} | "
                     f"{'yes' if r['macs_ok'] else 'NO: ' + str(r.get('macs'))} | "
                     f"{r.get('left_as_it_was', 'not checked')} | {r['seconds']} |")
    skipped = [r for r in rows if "skipped" in r]
    if skipped:
        lines += ["", "Not run (PyTorch could not build or run them at this size):", ""]
        lines += [f"- {r['source']} {r['model']}: {r['skipped']}" for r in skipped]
    return "\n".join(lines) + "\n"


def import_torchvision():
    """torchvision.models, importing even where a fake-op registration fails against this torch."""
    from convcost.torch.runtime.private import import_torchvision as tolerant_import

    return tolerant_import()


def oracle(model, x):
    """FlopCounterMode total // 2 of one forward on meta tensors (every parameter and buffer, tied ones once;
    on CPU, FlopCounterMode misses scaled_dot_product_attention's flash kernel)."""
    # on a copy: functional_call leaves the meta tensors in a module shared by two parents (timm's coat_mini
    # reuses its convolutional position encodings), which would change the model profile is then given
    model = copy.deepcopy(model)
    tensors = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    state = {n: torch.empty_like(t, device="meta") for n, t in tensors.items()}
    with FlopCounterMode(display=False) as c, torch.no_grad():
        torch.func.functional_call(model, state, (x.to("meta"),))
    return c.get_total_flops() // 2


#: name parts of the big variants left out so the run fits a few minutes on two cores (building a model with
#: random weights dominates the time); every family keeps its small members
BIG = ("large", "huge", "giant", "xlarge", "xxl", "_xl", "_l_", "_h_", "_g_", "b5", "b6", "b7", "b8", "l2", "152",
       "161", "200", "201", "269", "154", "samvit", "sam2_", "qwen3", "naflex", "x8", "x16", "x32", "y_32", "y_16",
       "y_128", "bigg", "_e_", "e5")


def left_as_it_was(model, before, x) -> str:
    """"yes" when ``model``, after ``profile``, holds the state of ``before`` (a copy taken before it) and its
    next real forwards, in eval and then in train mode (the same random draws), give what ``before``'s give;
    else why. The forwards take a random batch of two of ``x``'s size: train mode's batch statistics refuse
    one example where a layer pools to one value a channel."""
    x = torch.randn((2, *x.shape[1:]), generator=torch.Generator().manual_seed(0))
    return unchanged(model, before, (x,))


def unchanged(model, before, inputs) -> str:
    """"yes" when ``model`` holds the state of ``before`` and its next real forward on ``inputs``, in eval and
    then in train mode (the same random draws), gives exactly what ``before``'s gives (``torch.equal`` on every
    tensor it returns); else "NO: " and why. Where the copy's forward raises too (a model that cannot run a
    train-mode forward on these inputs), that mode is not compared, and the answer says so."""
    state, kept = model.state_dict(), before.state_dict()
    if state.keys() != kept.keys() or any(not torch.equal(state[k], kept[k]) for k in state):
        return "NO: its state changed"
    both_raise = []
    for training in (False, True):
        mode = "train" if training else "eval"
        outs, errors = [], []
        for m in (model, before):
            m.train(training)
            _seed_everything()
            try:
                with torch.no_grad():
                    outs.append(m(*inputs))
                errors.append(None)
            except Exception as exc:  # noqa: BLE001 - the next forward failing is what this looks for
                outs.append(None)
                errors.append(f"{type(exc).__name__}: {exc}")
        if errors[0] is not None and errors[1] is None:
            model.eval()
            return f"NO: its next forward ({mode}) raised {errors[0]}"[:200]
        if errors[0] is None and errors[1] is not None:  # the copy raises where the profiled model does not
            model.eval()
            return f"NO: its next forward ({mode}) ran where the copy's raised {errors[1]}"[:200]
        if errors[0] is not None:
            both_raise.append(mode)
            continue
        a, b = (_flat(o) for o in outs)
        if not torch.equal(a, b):
            _seed_everything()
            with torch.no_grad():
                again = _flat(before(*inputs))
            model.eval()
            if not torch.equal(again, b):  # the untouched copy itself gives other values each time
                return (f"yes (by its state: its {mode} forward is not deterministic, two runs of the untouched copy "
                        "differ)")
            return f"NO: its next forward ({mode}) gives other values"
    model.eval()
    return "yes" + (f" ({' and '.join(both_raise)} forward raises on the copy too)" if both_raise else "")


def _flat(out):
    return torch.cat([t.flatten() for t in torch.utils._pytree.tree_leaves(out) if torch.is_tensor(t)])


def _seed_everything() -> None:
    """The same draws for both forwards: torch's, and NumPy's and Python's (wav2vec2's SpecAugment masks are
    drawn with NumPy in train mode)."""
    import random

    import numpy as np

    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


def small(name) -> bool:
    import re

    return not any(b in name for b in BIG) and not re.search(r"\d+(\.\d+)?[bB]\b|\d+b_|so\d+m|_\d{3,}m", name)


#: name parts of a family's small members, preferred when one member per family is run
SMALL = ("atto", "femto", "pico", "nano", "tiny", "xxs", "xs", "small", "mini", "lite", "b0", "_s", "050", "075", "100")


def candidates(limit):
    tv = import_torchvision()
    names = [("torchvision", n) for n in tv.list_models(module=tv) if small(n)]
    try:
        import timm

        families = {}
        for n in timm.list_models():
            if small(n):
                families.setdefault(n.split("_")[0].rstrip("0123456789"), []).append(n)
        for members in families.values():
            best = min(members, key=lambda n: (not any(p in n for p in SMALL), len(n), n))
            names.append(("timm", best))
    except ImportError:
        pass
    return names[:limit] if limit else names


def build(source, name):
    if source == "torchvision":
        return import_torchvision().get_model(name, weights=None)
    import timm

    return timm.create_model(name, pretrained=False)


def main(argv=None):
    args = argparse.ArgumentParser()
    args.add_argument("--limit", type=int, default=0)
    args.add_argument("--size", type=int, default=64)
    args.add_argument("--budget", type=float, default=0, help="stop after this many seconds")
    args.add_argument("--doc", action="store_true", help="only rewrite docs/zoo.md from results/zoo.json")
    args.add_argument("--retry-skipped", action="store_true",
                      help="run again the models results/zoo.json skipped, got wrong or found changed")
    opts = args.parse_args(argv)
    if opts.doc:
        data = json.loads(RESULTS.read_text())
        DOC.write_text(markdown(data["rows"], data["size"]))
        return
    rows, began = [], time.time()
    todo = candidates(opts.limit)
    if opts.retry_skipped:  # and every model that failed or disagreed, with the code as it is now
        old = json.loads(RESULTS.read_text())["rows"]
        again = [r for r in old if "skipped" in r or "error" in r or not (r["params_ok"] and r["macs_ok"])
                 or str(r.get("left_as_it_was", "")).startswith("NO")]
        rows = [r for r in old if r not in again]
        todo = [(r["source"], r["model"]) for r in again]
    for source, name in todo:
        if opts.budget and time.time() - began > opts.budget:
            break
        row = {"source": source, "model": name}
        try:
            model = build(source, name).eval()
            size = opts.size if "inception" not in name else max(opts.size, 96)
            x = torch.zeros(1, 3, size, size)
            try:
                want_macs = oracle(model, x)
            except Exception:  # noqa: BLE001 - a model made for one input size (a fixed position embedding)
                size = getattr(model, "default_cfg", {}).get("input_size", (3, 224, 224))[-1]
                x = torch.zeros(1, 3, size, size)
                want_macs = oracle(model, x)
            row["size"] = size
            want_params = sum(p.numel() for p in model.parameters())
        except Exception as exc:  # noqa: BLE001 - a model that does not build or run here: said so
            row["skipped"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
            rows.append(row)
            print(name, "skipped", row["skipped"], flush=True)
            continue
        before = copy.deepcopy(model)
        t = time.perf_counter()
        try:
            r = profile(model, x)
            row.update(params=r.total["params"], macs=r.total["macs"], exact=r.exact, traced_with=r.traced_with,
                       unsupported=[f"{u.op} x{u.count}" for u in r.unsupported if u.macs])
        except Exception as exc:  # noqa: BLE001
            row["error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        row.update(seconds=round(time.perf_counter() - t, 3), want_params=want_params, want_macs=want_macs)
        try:  # the training step's reading too (counted by benchmarks/zoo_training.py): it must leave the model
            profile(model, (2, *x.shape[1:]), training=True)
        except Exception as exc:  # noqa: BLE001 - a step convcost refuses must leave the model as it was all the same
            row["training_error"] = f"{type(exc).__name__}: {str(exc)[:200]}"
        row["left_as_it_was"] = left_as_it_was(model, before, x)
        row["params_ok"] = row.get("params") == want_params
        row["macs_ok"] = row.get("macs") == want_macs
        rows.append(row)
        RESULTS.write_text(json.dumps({"size": opts.size, "torch": torch.__version__, "rows": rows}, indent=1))
        print(name, row.get("params_ok"), row.get("macs_ok"), row.get("traced_with"), row.get("seconds"),
              row.get("error", ""), row.get("unsupported", ""), "left as it was:", row["left_as_it_was"], flush=True)
    RESULTS.parent.mkdir(exist_ok=True)
    DOC.write_text(markdown(rows, opts.size))
    RESULTS.write_text(json.dumps({"size": opts.size, "torch": torch.__version__, "rows": rows}, indent=1))
    ran = [r for r in rows if "skipped" not in r]
    print(f"{len(ran)} models: params exact {sum(r['params_ok'] for r in ran)}, MACs exact "
          f"{sum(r['macs_ok'] for r in ran)}")


if __name__ == "__main__":
    main()
