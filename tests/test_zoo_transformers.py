"""benchmarks/zoo_transformers.py: its classes (what a row is called) and, where transformers is installed, one
model read end to end."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from zoo_transformers import RESULTS, classify, portable  # noqa: E402


def row(**kw):
    base = dict(forward_agree=True, exact=True, unsupported=[], agree=True, complete=True, counted_agree=True,
                untracked=[], differs="", macs=10, want_macs=10, params=5, want_params=5, forward_changed="",
                training_changed="")
    return {**base, **kw}


@pytest.mark.parametrize("fields, want", [
    ({}, "exact"),
    (dict(forward_agree=False, exact=False, unsupported=["torch.foo x1"]), "listed"),
    (dict(exact=False, unsupported=["torch.diff x1"]), "false alarm"),
    (dict(forward_agree=False, macs=12), "silently wrong"),
    (dict(agree=False, differs="saved_elements 3 against 2"), "silently wrong"),
    (dict(agree=False, complete=False, counted_agree=False, untracked=["sdpa x1"]), "listed"),
    (dict(agree=False, complete=False, untracked=["linalg_vector_norm x1"]), "false alarm"),
    (dict(training_changed="eval: NeedsTensors"), "silently wrong"),
    (dict(training_error="ConvcostError: no"), "refused"),
])
def test_a_row_is_classed_by_its_worst_part(fields, want):
    fields = dict(fields)
    if "training_error" in fields:
        base = row()
        for k in ("agree", "complete", "counted_agree", "untracked", "differs"):
            base.pop(k)
        cls, _ = classify({**base, **fields})
    else:
        cls, _ = classify(row(**fields))
    assert cls == want


def test_a_skipped_row_says_why():
    assert classify({"skipped": "ValueError: no"}) == ("skipped", "ValueError: no")


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_one_model_end_to_end():
    from zoo_transformers import one

    r = one("t5", "eager")
    assert r["class"] == "exact", r["reason"]


def test_a_reason_keeps_no_path_of_the_machine_it_ran_on():
    text = "ValueError: not in <module 'x' from '/opt/venv/lib/python3.11/site-packages/transformers/x.py'>"
    assert portable(text) == "ValueError: not in <module 'x' from 'site-packages/transformers/x.py'>"
    assert "/site-packages/" not in RESULTS.read_text()  # the published results stand on any machine


def test_a_type_run_again_keeps_its_place():
    from zoo_transformers import replace_rows

    rows = [{"model": "a", "n": 0}, {"model": "b", "n": 1}, {"model": "b", "n": 2}, {"model": "c", "n": 3}]
    assert [r["n"] for r in replace_rows(rows, "b", [{"model": "b", "n": 9}])] == [0, 9, 3]
    assert [r["n"] for r in replace_rows(rows, "d", [{"model": "d", "n": 8}])] == [0, 1, 2, 3, 8]


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_shrunk_heads_fit_together():
    from transformers import AutoConfig
    from zoo_transformers_inputs import SMALL, shrink

    mla = shrink(AutoConfig.for_model("deepseek_v3"))  # latent attention: the rotary part is the rotary size
    assert (mla.qk_rope_head_dim, mla.qk_head_dim) == (SMALL["head_dim"], mla.qk_nope_head_dim + SMALL["head_dim"])
    assert mla.num_key_value_heads == mla.num_attention_heads and mla.n_routed_experts % mla.n_group == 0
    mrope = shrink(AutoConfig.for_model("glm4v_moe")).get_text_config()  # half of a rotary part of half a head
    assert sum(mrope.rope_parameters["mrope_section"]) == SMALL["head_dim"] // 4
    assert sum(shrink(AutoConfig.for_model("qwen2_5_vl")).get_text_config().rope_parameters["mrope_section"]) == 4
    ssm = shrink(AutoConfig.for_model("mamba2"))  # state-space heads tile the expanded hidden size
    assert ssm.num_heads * ssm.head_dim == ssm.expand * ssm.hidden_size and ssm.num_heads % ssm.n_groups == 0
    hybrid = shrink(AutoConfig.for_model("granitemoehybrid"))
    assert hybrid.mamba_n_heads * hybrid.mamba_d_head == hybrid.mamba_expand * hybrid.hidden_size


@pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="transformers is not installed")
def test_a_vision_tower_gets_patches_its_grid_covers():
    from zoo_transformers import build
    from zoo_transformers_inputs import inputs_for

    names, xs, _ = inputs_for(build("qwen2_5_vl_vision", "eager"), "qwen2_5_vl_vision")
    grid = dict(zip(names, xs))["grid_thw"]
    assert names[0] == "hidden_states" and xs[0].shape[0] == int(grid.prod(-1).sum())


def test_attention_on_strided_operands_is_compared_as_the_math_path_it_runs():
    """An sdpa whose value has no unit last stride runs the math path, which FlopCounterMode counts: the forward's
    fused rows are the calls PyTorch ran fused, not those whose shapes allow it (inkling_text's convolved
    values); a mask needing a gradient in the step (SAM-HQ's relative positions) does not change the forward."""
    import torch
    import torch.nn.functional as F
    from torch import nn
    from zoo_transformers import forward_agrees, forward_macs, fused_sdpa_calls

    from convcost.torch import profile

    class Strided(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v.transpose(-1, -2))

    xs = (torch.randn(2, 2, 8, 16), torch.randn(2, 2, 8, 16), torch.randn(2, 2, 16, 8))
    forward, want = profile(Strided(), xs), forward_macs(Strided(), xs)
    assert want == 2 * 2 * 2 * 8 * 8 * 16 == forward.total["macs"]  # counted: the math path ran
    row = dict(macs=forward.total["macs"], want_macs=want, params=0, want_params=0)
    assert fused_sdpa_calls(Strided(), xs) == [False]
    assert forward_agrees(row, forward, [False]) and not forward_agrees(row, forward)

    class Fused(nn.Module):
        def forward(self, q, k, v):
            return F.scaled_dot_product_attention(q, k, v)

    xs = (torch.randn(2, 2, 8, 16),) * 3
    forward, want = profile(Fused(), xs), forward_macs(Fused(), xs)
    assert want == 0 and fused_sdpa_calls(Fused(), xs) == [True]
    assert forward_agrees(dict(macs=forward.total["macs"], want_macs=0, params=0, want_params=0), forward, [True])
