"""The training-step oracle the transformers cases share: convcost's step against PyTorch's own, one place.

Every number is PyTorch's, never convcost's formulas: ``FlopCounterMode`` over the backward and saved-tensor hooks
through :func:`convcost.torch.measure_training.measure_training` (its bytes too, where asked: parameters,
gradients, Adam's state and saved tensors). The CPU's fused attention kernel, which FlopCounterMode does not
count, is taken out of convcost's backward by convcost's own row for it (:func:`fused_backward`), where asked.
:func:`read_by` makes a few-line model read by each of the three readings (on shapes, with the values computed
alongside, call by call), since each follows the tensors on its own; :func:`transformers_model` builds a
transformers model from a tiny config (skipped without transformers). For a forward, :func:`flop_macs` and
:func:`numel` are the inference oracles.
"""

import pytest
import torch
import torch.nn as nn

from convcost.torch import profile
from convcost.torch.measure_training import measure_training

FIELDS = ("backward_macs", "saved_elements", "saved_indices")


def flop_macs(model, *inputs):
    """The forward's oracle: FlopCounterMode total // 2 over one real forward (eval mode, no gradient)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as c, torch.no_grad():
        model.eval()(*inputs)
    return c.get_total_flops() // 2


def numel(model):
    """The parameters' oracle: PyTorch's own count."""
    return sum(p.numel() for p in model.parameters())
READINGS = ("shape propagation", "shape propagation with values", "calls on meta tensors")


def fused_backward(report) -> int:
    """Backward MACs of the rows of the CPU's fused attention kernel, which FlopCounterMode does not see."""
    return sum(r.backward_macs for r in report.rows
               if type(r.spec).__name__ == "Attention" and r.spec.fused(r.input_shapes))


def step_numbers(model, inputs, *, adam=True, fused=True):
    """``(report, convcost's step, PyTorch's measured step)`` on the same inputs, in :data:`FIELDS`, and ``bytes``
    (the step's memory with Adam's state) where ``adam``; ``fused``: the fused attention kernel's backward taken
    out of convcost's (see :func:`fused_backward`)."""
    inputs = inputs if isinstance(inputs, tuple) else (inputs,)
    torch.manual_seed(0)
    report = profile(model, inputs, training=True)
    step = report.training
    ours = {k: getattr(step, k) for k in FIELDS}
    if fused:
        ours["backward_macs"] -= fused_backward(report)
    if adam:
        ours["bytes"] = step.memory("adam") if step.complete else None
    measured = measure_training(model, inputs, optimizer="adam")
    return report, ours, {k: measured[k] for k in (*FIELDS, *(("bytes",) if adam else ()))}


def assert_step_agrees(model, inputs, reading=None, *, adam=True, fused=True, exact=False):
    """A step read completely and exactly: what PyTorch's own step does, nothing listed (``exact``: nothing in
    the forward either), read by ``reading`` where given."""
    report, ours, measured = step_numbers(model, inputs, adam=adam, fused=fused)
    assert ours == measured
    assert report.training.complete, report.training.untracked
    if exact:
        assert report.exact, report.unsupported
    if reading is not None:
        assert report.traced_with == reading


def assert_step_agrees_or_listed(model, inputs, *, adam=False):
    """The totals convcost gives agree with PyTorch's, whether or not it lists a call as untracked."""
    _, ours, measured = step_numbers(model, inputs, adam=adam)
    assert ours == measured


def read_by(cls, reading):
    """``cls`` as a model its forward makes ``profile`` read by ``reading``: as it is (on shapes), reading a value
    (with the values computed alongside), or checking its input's exact type (call by call)."""
    if reading == READINGS[0]:
        return cls

    class Reads(cls):
        def forward(self, x):
            if reading == READINGS[1] and float(x.sum()) > -1e30:
                x = x * 1
            if reading == READINGS[2]:
                assert type(x) is torch.Tensor
            return super().forward(x)

    return Reads


def transformers_model(name: str, **config):
    """A transformers base model (``name``: its class, e.g. ``DeepseekV3Model``) from a tiny config, as a module
    of token ids returning its last hidden state; skipped without transformers."""
    pytest.importorskip("transformers")
    from convcost.torch.runtime.private import import_torchvision

    try:  # transformers imports torchvision where it finds it: its failing fake-op registrations skipped first
        import_torchvision()
    except ImportError:
        pass
    import transformers

    model_class = getattr(transformers, name)
    torch.manual_seed(0)
    inner = model_class(model_class.config_class(**config))

    class Hidden(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = inner

        def forward(self, ids):
            return self.model(input_ids=ids, use_cache=False).last_hidden_state

    return Hidden().eval()
