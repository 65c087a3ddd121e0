"""A training step whose forward takes targets: ``profile(model, images, targets=..., training=True)``.

torchvision's detection and segmentation models (Faster R-CNN, RetinaNet, FCOS, SSD, Mask and Keypoint R-CNN)
take a list of images and a list of target dicts in training mode and return their losses; the step is the
sum of those losses, backward. What such a forward does depends on the values it is given: anchors matched to
the target boxes, proposals kept by non-maximum suppression, positives and negatives sampled at random, RoIs
spread over pyramid levels. So this step is read once, call by call, on the images and targets given
(:class:`convcost.torch.trace_calls.Session`, on real tensors), from the random state ``profile`` finds: the
shapes of the data-dependent parts are this input's, not a closed form, and a second reading from the same
seed gives the same step, as PyTorch's own does.

A call on an empty tensor (a pyramid level no RoI falls on) does no work and makes no row, but autograd may
still keep a non-empty operand of it (an index broadcast against the empty one): what it keeps comes from the
call run on meta tensors, and the report's notes say how many such calls there were. Values read into Python
(``if keep[i]:``, ``.tolist()``) do no work. A boolean mask, an assignment into a tensor made in the forward,
a sort and a selection by index keep what PyTorch's derivative formulas say, from the same meta runs.
Everything else goes through the one walker as in every other reading, and what it cannot count is listed.

The model is left as it was: the forward's buffer updates (batch norm's running statistics) are put back,
and the random state is that of before the reading.
"""

from __future__ import annotations

import torch

from convcost.costs import Cost
from convcost.errors import ConvcostError, InternalError
from convcost.shapes import numel
from convcost.torch import layouts, trace_calls
from convcost.torch.events import Event
from convcost.torch.inputs import Input, Inputs, tensor_list
from convcost.torch.leftovers import Attributes, values_kept
from convcost.torch.locks import TRACING
from convcost.torch.record import Recorder
from convcost.torch.rules import Tensor
from convcost.torch.runtime.private import nonzero_on_meta
from convcost.torch.walker import _tracked, first_line, own_code

#: how a report read on the targets given says it was read
WITH_TARGETS = "calls on tensors (a training step on the images and targets given)"


def step_inputs(model, inputs, targets, kwargs=None, training=False) -> Inputs:
    """``inputs`` (one positional input per item: a tensor, or a list of image tensors) followed by
    ``targets``, as the forward takes them; one :class:`ConvcostError` for what cannot be a training step's
    data (see :func:`check_targets`)."""
    if not training:
        raise ConvcostError("profile: targets are read only in a training step: pass training=True with targets=")
    if kwargs is not None and not isinstance(kwargs, dict):
        raise ConvcostError(f"profile: kwargs must be a dict of keyword inputs, got {type(kwargs).__name__}")
    given = (inputs,) if isinstance(inputs, torch.Tensor) else inputs
    if not isinstance(given, (tuple, list)) or not given:
        raise ConvcostError(f"profile: with targets, give the inputs as tensors (a list of images as one input: "
                            f"profile(model, (images,), targets=targets, training=True)); got {inputs!r}")
    positional = tuple(_tensors_input(x, f"input {i}") for i, x in enumerate(given))
    images = given[0]
    check_targets(targets, len(images) if isinstance(images, (list, tuple)) else
                  images.shape[0] if images.dim() == 4 else None)
    keywords = {str(k): _tensors_input(v, f"keyword input {k!r}") for k, v in (kwargs or {}).items()}
    return Inputs((*positional, _targets_input(targets)), keywords)


def check_targets(targets, images=None) -> None:
    """``targets`` as a detection model takes them: a list of dicts, one per image (``images`` of them when
    given), each naming its tensors by string; ``boxes``, where given, a floating ``(k, 4)`` tensor, and every
    other tensor of the dict one entry per box along its first axis (``labels``, ``masks``, ``keypoints``)."""
    if not isinstance(targets, (list, tuple)) or not all(isinstance(t, dict) for t in targets):
        raise ConvcostError(f"profile: targets must be a list of dicts of tensors, one per image; got "
                            f"{_kind(targets)}")
    if images is not None and len(targets) != images:
        raise ConvcostError(f"profile: {len(targets)} targets for {images} images: give one target dict per image")
    for i, target in enumerate(targets):
        for key, value in target.items():
            if not isinstance(key, str) or not isinstance(value, torch.Tensor):
                raise ConvcostError(f"profile: targets[{i}][{key!r}] is {_kind(value)}: a target dict maps names "
                                    "to tensors")
        boxes = target.get("boxes")
        if boxes is None:
            continue
        if boxes.dim() != 2 or boxes.shape[-1] != 4 or not boxes.is_floating_point():
            raise ConvcostError(f"profile: targets[{i}]['boxes'] has shape {tuple(boxes.shape)} and dtype "
                                f"{boxes.dtype}: boxes are a floating (k, 4) tensor, one (x1, y1, x2, y2) per box")
        k = boxes.shape[0]
        for key, value in target.items():
            if value.dim() == 0 or value.shape[0] != k:
                raise ConvcostError(f"profile: targets[{i}][{key!r}] has shape {tuple(value.shape)}: "
                                    f"{k} boxes need one entry each along its first axis")


def step_report(model, given: Inputs, done: dict):
    """The report of one training step of ``model`` on ``given`` (from :func:`step_inputs`); ``done``: the
    report's other fields, as :func:`convcost.torch.profile` gives them."""
    with TRACING.shared():
        record, empty = read_step(model, given)
    notes = ["read on the inputs and targets given: what depends on their values and on the random state (in a "
             "detection model: anchors matched to boxes, proposals, non-maximum suppression, sampling, RoIs per "
             "pyramid level) has this input's shapes, not a closed form"]
    if empty:
        notes.append(f"{empty} calls on empty tensors did no work (what autograd keeps of them is counted)")
    return record.report(traced_with=WITH_TARGETS, notes=notes, **done)


def read_step(model, given: Inputs):
    """``(recorder, empty)``: one training step of ``model`` on ``given`` (the last positional input the
    targets), read call by call on the tensors themselves, and how many calls ran on an empty tensor."""
    session = _Step(model, given, False, True)
    args, kwargs = _copied(tuple(i.tensor for i in given.positional)), _copied(
        {k: i.tensor for k, i in given.keywords.items()})
    for value, tensor in _inputs_of(session, args, kwargs):
        session.values[id(value)] = (value, tensor)
    kept = Attributes(model)
    try:
        # grad on, as every training reading runs (each real call inside without autograd): a call made under
        # the forward's own torch.no_grad() is the one with no backward
        with values_kept(model), trace_calls.hooked(session), torch.enable_grad(), session:
            model(*args, **kwargs)
    except (ConvcostError, InternalError):
        raise
    except Exception as exc:  # noqa: BLE001 - PyTorch's (or the model's) refusal of these images and targets
        raise ConvcostError(f"PyTorch rejects these inputs and targets for {type(model).__name__}: "
                            f"{first_line(exc)}") from None
    finally:
        kept.restore()
    return session.record, session.empty


class _Step(trace_calls.Session):
    """The call-by-call reading of a training step on real tensors (:class:`convcost.torch.trace_calls.Session`),
    with what a forward on data does beside it: values read into Python, calls on empty tensors, boolean
    masks, assignments into tensors made in the forward, sorts and selections by index."""

    def __init__(self, model, *args):
        super().__init__(model, *args)
        self.walk.record = self.record = Recorder(model, True)
        self.empty = 0

    def unknown(self, event, out):
        """What a call without a rule returned, as the call-by-call reading takes it, except where its output's
        shape depends on values (``x[mask]``, which meta tensors cannot run): the tensor it returned is here, so
        what autograd keeps of it comes from the call run on meta tensors with every mask element taken as set
        (a boolean index keeps the mask itself; it is used where that run keeps nothing sized by the mask)."""
        tensors = _flat_tensors((event.args, event.kwargs), Tensor)
        if any(self.record.tracked(t).grad for t in tensors) and event.function is not None:
            result = _fresh(out, self.record, True)
            with own_code("the reading of a step with targets"), nonzero_on_meta():
                run = layouts.simulate(event.function, _tracked(event.args, self.record),
                                       _tracked(event.kwargs, self.record))
                if run is not None and not run.fresh:
                    simulated = self.walk.simulated(result, event)
                    if simulated is not None:
                        return simulated
        return super().unknown(event, out)

    def pair(self, result, out) -> None:
        """As the call-by-call reading pairs them, each Tensor given the dtype of the tensor it stands for (an
        index computed in the forward is read as an index by what it is passed to)."""
        if isinstance(out, torch.Tensor) and isinstance(result, Tensor) and result.dtype is None:
            result.dtype = out.dtype
        elif isinstance(out, (tuple, list)) and isinstance(result, (tuple, list)) and len(out) == len(result):
            for o, r in zip(out, result):
                self.pair(r, o)
            return
        super().pair(result, out)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if self.busy or getattr(func, "__name__", "") in trace_calls.VALUE_READS:
            return func(*args, **kwargs)  # the values the forward reads: no work, nothing autograd keeps
        inside = self.stack and self.stack[-1] is not None and self.stack[-1][1]
        first = args[0] if args else None
        written = not inside and isinstance(first, torch.Tensor) and _writes_into(func)
        grad = written and any(self.tracked(t).grad for t in _flat_tensors((args[1:], kwargs)))
        if grad and self.values.get(id(first), (None,))[0] is not first:
            # a tensor the forward made (zeros) written from one needing a gradient: the walker follows it from
            # here, as it follows any tensor of the step, and keeps what the assignment keeps (its index)
            self.values[id(first)] = (first, self.record.tracked(self.tracked(first)))
        if not _holds_empty((args, kwargs)):
            out = super().__torch_function__(func, types, args, kwargs)
        else:
            out = func(*args, **kwargs)
            if not inside:
                self.empty += 1
                self.pair(self.on_empty(func, args, kwargs, out), out)
        if grad:
            # written in place with a tensor that needs a gradient (``result[level] = pooled`` into a tensor of
            # zeros made in the forward): autograd gives it a gradient from now on
            tensor = self.record.tracked(self.tracked(first))
            tensor.grad = True
            self.values[id(first)] = (first, tensor)
        return out

    def on_empty(self, func, args, kwargs, out):
        """The walker's tensors for what a call on an empty tensor returned. It does no work, but autograd may
        keep a non-empty operand of it (an index broadcast against an empty one): what it keeps comes from the
        call run on meta tensors, as for any call without a row (:meth:`convcost.torch.walker.Walk.simulated`)."""
        event = self.event(func, args, kwargs)
        grad = any(self.record.tracked(t).grad for t in _flat_tensors((event.args, event.kwargs), Tensor))
        result = _fresh(out, self.record, grad)
        if not grad:
            return result
        if not _flat_tensors(out):  # written in place, returning nothing (``x[empty] = empty``)
            self.keep_run(event, "an assignment")
            return result
        self.busy += 1
        try:
            with own_code("the reading of a step with targets"):
                simulated = self.walk.simulated(result, event)
        finally:
            self.busy -= 1
        if simulated is None:
            self.record.untrack(event.label, event.path, "a call on an empty tensor that cannot run on meta "
                                "tensors: what autograd keeps of it is not known")
            return result
        return simulated

    def event(self, func, args, kwargs) -> Event:
        """The walker's event of a call: its tensors as the walker's, with their storages and gradient flags."""
        event = trace_calls.event_of(func, args, kwargs, self.context())
        return Event(event.kind, event.target, self.tracked(args), self.tracked(kwargs), event.where)

    def keep_run(self, event, what) -> None:
        """What autograd keeps of an assignment on an empty tensor (``x[empty] = y``), which the walker does not
        see (a call on an empty tensor is run here, not read); from the call run on meta tensors, listed where it
        cannot run. (Selections by index, sorts and assignments on the rest the walker keeps itself.)"""
        self.busy += 1
        try:
            with own_code("the reading of a step with targets"):
                run = layouts.simulate(event.function, _tracked(event.args, self.record),
                                       _tracked(event.kwargs, self.record))
                if run is None:
                    self.record.untrack(event.label, event.path, f"{what} that cannot run on meta tensors: "
                                        "what autograd keeps of it is not known")
                    return
                record = self.record
                indices = run.fresh_indices + sum(
                    record.storages.get(t.storage, numel(t.shape)) for t, kept in zip(run.operands, run.kept)
                    if kept and t.dtype == torch.int64 and not record.is_parameter(t.storage)
                    and record.first_index(t.storage))
                record.keeps(Cost(output_shape=(), saved_elements=run.saved_elements(()), saved_indices=indices,
                                  saves_input=tuple(run.kept)), run.operands)
        finally:
            self.busy -= 1




def _writes_into(func) -> bool:
    name = getattr(func, "__name__", "")
    return name == "__setitem__" or name.endswith("_") and not name.endswith("__")


def _fresh(out, record, grad):
    if isinstance(out, torch.Tensor):
        return Tensor(tuple(int(x) for x in out.shape), dtype=out.dtype, grad=grad and out.is_floating_point(),
                      storage=record.new_storage(tuple(int(x) for x in out.shape)))
    if isinstance(out, (tuple, list)):
        return tuple(_fresh(o, record, grad) for o in out)
    return out


def _holds_empty(value) -> bool:
    return any(t.numel() == 0 for t in _flat_tensors(value))


def _flat_tensors(value, kind=torch.Tensor) -> list:
    if isinstance(value, kind):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in _flat_tensors(v, kind)]
    if isinstance(value, dict):
        return [t for v in value.values() for t in _flat_tensors(v, kind)]
    return []


def _inputs_of(session, args, kwargs):
    """``(tensor, the walker's Tensor for it)`` for every tensor of the inputs, the targets (the last positional
    argument) left out: they are constants of the step."""
    pairs = []
    for arg in (*args[:-1], *kwargs.values()):
        for t in _flat_tensors(arg):
            pairs.append((t, session.walk.input_tensor(Input(tuple(int(x) for x in t.shape), t.dtype, t))))
    return pairs


def _copied(value):
    """Fresh containers and clones of the tensors (a forward may write into its inputs and targets)."""
    if isinstance(value, torch.Tensor):
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, (tuple, list)):
        return type(value)(_copied(v) for v in value)
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    return value


def _tensors_input(value, what) -> Input:
    """One input: a tensor, or a list of tensors (a detection model's images, which may differ in size)."""
    if isinstance(value, torch.Tensor):
        return Input(tuple(int(x) for x in value.shape), value.dtype, value)
    if isinstance(value, (list, tuple)) and value and all(isinstance(t, torch.Tensor) for t in value):
        return tensor_list(value)
    raise ConvcostError(f"profile: with targets, {what} must be a tensor or a list of tensors (the images), "
                        f"got {_kind(value)}")


def _targets_input(targets) -> Input:
    return Input((len(targets),), None, list(targets))


def _kind(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    return f"{type(value).__name__} {value!r}"[:200]
