"""The oracle of a training step: what PyTorch itself does in one step of any ``nn.Module``.

Every number here is measured by running the module on real CPU tensors, never
computed from convcost's formulas, so the tests can hold the formulas to them:

- :func:`backward_macs`: ``FlopCounterMode`` over ``out.sum().backward()``, halved.
  In torch 2.13 to 2.15 it counts a grouped convolution's weight gradient ``G``
  times over (the weight gradient is costed as if every input channel met
  every output channel); ``convention="convcost"`` divides that part by
  ``groups``, as upstream PR 183405 does, where the running release has the
  overcount (:func:`convcost.torch.runtime.flop_counter` probes it), and
  ``convention="torch"`` keeps the running release's number.
- :func:`saved_tensors`: ``saved_tensors_hooks`` on a training-mode forward,
  each storage counted once by its data pointer, parameters and buffers left
  out (every saved tensor held until the forward ends: a branch the loss does
  not reach, a router's group scores, frees what it saved mid-forward, and the
  allocator may give a later storage the same pointer, which would then count
  once for two); int64 storages (max pooling's indices) are reported apart, and a byte
  buffer (uint8: the workspace of oneDNN's fused LSTM) is counted in elements
  of the module's dtype (its bytes / itemsize), as a step's bytes count them.
- :func:`optimizer_state`: the numel of the tensors in ``optimizer.state``
  after one real step, whose update is then undone (the next forward of a
  mixture of experts could route its tokens otherwise).
- :func:`measure_training`: all of them, each forward from the same random
  state (a step's dropout masks and a router's jitter are drawn once: a
  routing that changed between the forwards gave one expert a gradient and
  another the saved tensors).

Parameters with ``requires_grad=False`` are respected everywhere: they get no
weight gradient, no ``.grad`` and no optimizer state. On CUDA, cuDNN saves
other tensors than the CPU kernels; these functions measure the device the
module and inputs are on.

>>> from torch import nn
>>> import torch
>>> depthwise = nn.Conv2d(4, 4, 3, padding=1, groups=4, bias=False)
>>> x = torch.randn(1, 4, 10, 10)
>>> backward_macs(depthwise, x, input_grad=False, convention="torch"), backward_macs(depthwise, x, input_grad=False)
(14400, 3600)
>>> saved_tensors(depthwise, x)
{'elements': 400, 'indices': 0, 'bytes': 1600}
"""

from __future__ import annotations

import torch
from torch.autograd.graph import saved_tensors_hooks
from torch.utils import flop_counter
from torch.utils.flop_counter import FlopCounterMode

from convcost.costs import OPTIMIZERS
from convcost.errors import ConvcostError
from convcost.torch import runtime

CONVENTIONS = ("convcost", "torch")


def _inputs(inputs, input_grad) -> tuple:
    """Fresh copies of the inputs; ``input_grad`` is one bool for all, or one per input (a merge's operands)."""
    if isinstance(inputs, torch.Tensor):
        inputs = (inputs,)
    grads = tuple(input_grad) if isinstance(input_grad, (tuple, list)) else None
    if grads is None and not isinstance(input_grad, bool) or grads is not None and (
            len(grads) != len(inputs) or not all(isinstance(g, bool) for g in grads)):
        raise ConvcostError(f"input_grad={input_grad!r} must be True or False, or one of them per input")
    out = []
    for i, x in enumerate(inputs):
        if not isinstance(x, torch.Tensor):
            raise ConvcostError(f"training measurements need tensors as inputs, got {type(x).__name__}")
        x = x.detach().clone()
        out.append(x.requires_grad_(grads[i] if grads else input_grad) if x.is_floating_point() else x)
    return tuple(out)


def _forward(module, xs):
    module.train()
    out = module(*xs)
    if not isinstance(out, torch.Tensor):
        raise ConvcostError(f"training measurements need a module that returns one tensor, got {type(out).__name__}")
    return out


def _convolution_backward(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
                          output_padding, groups, output_mask, out_shape=None, **kwargs) -> int:
    """torch's own count of ``convolution_backward``, its weight-gradient part divided by ``groups``."""
    args = (grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed, output_padding, groups)
    inputs = flop_counter.conv_backward_flop(*args, [output_mask[0], False, False], out_val=out_shape)
    weights = flop_counter.conv_backward_flop(*args, [False, output_mask[1], False], out_val=out_shape)
    return inputs + weights // groups


def grouped_correction():
    """The ``custom_mapping`` for ``FlopCounterMode`` that counts a grouped weight gradient once."""
    return {torch.ops.aten.convolution_backward: _convolution_backward}


def backward_macs(module, inputs, *, input_grad: bool = False, convention: str = "convcost") -> int:
    """MACs of ``out.sum().backward()`` after a training-mode forward of ``module`` on ``inputs``.

    ``input_grad`` says whether the inputs require a gradient (a network fed data: False, so its first
    layer computes no input gradient): one bool for every input, or a tuple with one per input.
    """
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise ConvcostError(f"convention={convention!r} must be one of {', '.join(CONVENTIONS)}")
    out = _forward(module, _inputs(inputs, input_grad))
    # the correction only where the running release overcounts (pytorch PR 183405 fixes it upstream)
    mapping = grouped_correction() if convention == "convcost" and runtime.flop_counter().grouped_overcount else {}
    with FlopCounterMode(display=False, custom_mapping=mapping) as counter:
        if out.requires_grad:
            out.sum().backward()
    return counter.get_total_flops() // 2


def _itemsize(module) -> int:
    """Bytes of one element of the module's floating-point parameters (float32's 4 when it has none)."""
    return next((p.element_size() for p in module.parameters() if p.is_floating_point()), 4)


def _elements(t, storage, itemsize: int) -> int:
    """Elements of a saved storage: a byte buffer (oneDNN's RNN workspace) in elements of ``itemsize`` bytes."""
    return storage.nbytes() // (itemsize if t.dtype == torch.uint8 else t.element_size())


def saved_tensors(module, inputs, *, input_grad: bool = False) -> dict:
    """Elements autograd saves in a training-mode forward, each storage once, parameters and buffers excluded.

    ``{"elements": all of them, "indices": those in int64 storages, "bytes": their storages' own bytes}``; a
    uint8 storage (the workspace oneDNN's fused LSTM keeps for its backward) counts as its bytes in elements of
    the module's dtype.
    """
    xs = _inputs(inputs, input_grad)
    owned = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
    itemsize = _itemsize(module)
    seen, held = {}, []

    def pack(t):
        storage = t.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in owned and storage.nbytes():
            seen[pointer] = (_elements(t, storage, itemsize), t.dtype == torch.int64, storage.nbytes())
            held.append(t)  # its pointer is not reused while the forward runs
        return t

    with saved_tensors_hooks(pack, lambda t: t):
        _forward(module, xs)
    return {"elements": sum(n for n, _, _ in seen.values()),
            "indices": sum(n for n, index, _ in seen.values() if index), "bytes": sum(b for _, _, b in seen.values())}


def saved_tensors_by_module(module, inputs, *, input_grad: bool = False) -> dict:
    """Saved elements per submodule, each storage attributed once, to the innermost module running when it
    was first saved (a functional op in a container's ``forward`` goes to the container; the root is ``""``).

    ``{qualified name: elements}``; the values sum to :func:`saved_tensors`' ``"elements"``.

    >>> from torch import nn
    >>> import torch
    >>> m = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.ReLU(), nn.Conv2d(8, 8, 1))
    >>> saved_tensors_by_module(m, torch.randn(1, 3, 6, 6))     # the second conv's input is the ReLU's output
    {'0': 108, '1': 128}
    """
    xs = _inputs(inputs, input_grad)
    owned = {t.untyped_storage().data_ptr() for t in (*module.parameters(), *module.buffers())}
    names = {m: name for name, m in module.named_modules()}
    itemsize = _itemsize(module)
    running, seen, by_module, held = [""], set(), {}, []

    def enter(m, args):
        running.append(names[m])

    def leave(m, args, out):
        running.pop()

    def pack(t):
        storage = t.untyped_storage()
        pointer = storage.data_ptr()
        if pointer not in owned and pointer not in seen and storage.nbytes():
            seen.add(pointer)
            held.append(t)  # its pointer is not reused while the forward runs
            by_module[running[-1]] = by_module.get(running[-1], 0) + _elements(t, storage, itemsize)
        return t

    handles = [m.register_forward_pre_hook(enter) for m in names if m is not module]
    handles += [m.register_forward_hook(leave) for m in names if m is not module]
    try:
        with saved_tensors_hooks(pack, lambda t: t):
            _forward(module, xs)
    finally:
        for h in handles:
            h.remove()
    return by_module


def make_optimizer(name: str, parameters):
    """The optimizer convcost names: ``"sgd"``, ``"momentum"`` (SGD, momentum 0.9), ``"adam"``, ``"adamw"``."""
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=0.01)
    if name == "momentum":
        return torch.optim.SGD(parameters, lr=0.01, momentum=0.9)
    if name == "adam":
        return torch.optim.Adam(parameters)
    if name == "adamw":
        return torch.optim.AdamW(parameters)
    raise ConvcostError(f"unknown optimizer {name!r}; known: {', '.join(OPTIMIZERS)}")


def optimizer_state(module, inputs, *, optimizer: str = "adam", input_grad: bool = False) -> dict:
    """``{"elements", "bytes"}`` of the tensors in ``optimizer.state`` after one real step on the trainable
    parameters (Adam's ``step`` scalars included); the parameters are put back as they were."""
    trainable = [p for p in module.parameters() if p.requires_grad]
    if not trainable:  # torch refuses an optimizer of nothing; there is no state to keep
        make_optimizer(optimizer, [torch.zeros(1, requires_grad=True)])  # still refuses an unknown name
        return {"elements": 0, "bytes": 0}
    opt = make_optimizer(optimizer, trainable)
    kept = [p.detach().clone() for p in trainable]
    out = _forward(module, _inputs(inputs, input_grad))
    out.sum().backward()
    opt.step()
    with torch.no_grad():  # the step's update undone: a later forward (a router's choice) sees the same weights
        for p, was in zip(trainable, kept):
            p.copy_(was)
    tensors = [t for state in opt.state.values() for t in state.values() if isinstance(t, torch.Tensor)]
    module.zero_grad(set_to_none=True)
    return {"elements": sum(t.numel() for t in tensors), "bytes": sum(t.numel() * t.element_size() for t in tensors)}


def _same_draws(module):
    """A context in which the random numbers drawn are those of the caller's generator state, which it leaves as
    it was: each forward of one measurement draws the same ones (a router's jitter noise decides which experts
    get tokens, hence which get a gradient), as the one step measured would."""
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.is_cuda})
    return torch.random.fork_rng(devices=devices)


def measure_training(module, inputs, *, optimizer: str = "adam", input_grad: bool = False) -> dict:
    """Everything one training step holds and does, measured: backward MACs (both conventions), saved
    elements and indices, parameters, gradients and optimizer state, and their bytes.

    >>> from torch import nn
    >>> import torch
    >>> m = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 4 * 4, 10))
    >>> r = measure_training(m, torch.randn(2, 3, 6, 6), optimizer="momentum")
    >>> r["backward_macs"], r["saved_elements"], r["optimizer_state"], r["bytes"]
    (12032, 472, 1506, 19960)
    """
    params = [p for p in module.parameters()]
    before = {id(p) for p in params if p.requires_grad}
    with _same_draws(module):
        saved = saved_tensors(module, inputs, input_grad=input_grad)
    with _same_draws(module):
        state = optimizer_state(module, inputs, optimizer=optimizer, input_grad=input_grad)
    with _same_draws(module):
        out = _forward(module, _inputs(inputs, input_grad))
        if out.requires_grad:
            out.sum().backward()
    grads = [p.grad for p in params if p.grad is not None]
    module.zero_grad(set_to_none=True)
    param_bytes = sum(p.numel() * p.element_size() for p in params)
    grad_bytes = sum(g.numel() * g.element_size() for g in grads)
    saved_bytes = saved["bytes"]  # each storage's own bytes: a boolean mask 1 an element, an index 8
    with _same_draws(module):
        macs = backward_macs(module, inputs, input_grad=input_grad)
    with _same_draws(module):
        macs_torch = backward_macs(module, inputs, input_grad=input_grad, convention="torch")
    return {
        "backward_macs": macs,
        "backward_macs_torch": macs_torch,
        "saved_elements": saved["elements"],
        "saved_indices": saved["indices"],
        "params": sum(p.numel() for p in params),
        "trainable_params": sum(p.numel() for p in params if id(p) in before),
        "gradients": sum(g.numel() for g in grads),
        "optimizer_state": state["elements"],
        "bytes": param_bytes + grad_bytes + state["bytes"] + saved_bytes,
    }
