"""``profile(model, inputs)``: the exact cost of every operation a PyTorch model runs, as its own module tree.

Conventions are convcost's (:mod:`convcost.costs`): params are parameter tensors by ``numel``, each
tensor once (tied weights once); MACs are those of convolutions, transposed convolutions, linear layers,
matrix products, einsum and attention, bias excluded, equal to ``FlopCounterMode`` / 2; other work is
reported apart.

One reading for every model, the first that can run its forward; each only hands call events to one
walker (:mod:`convcost.torch.walker`), so the rows are the same whichever reads them:

* concrete input sizes: the model's own forward on shapes alone (:mod:`convcost.torch.trace_shapes`):
  each call answered by convcost's formulas, no kernel run, no graph built; Python on sizes just runs;
* where the forward reads values (``if x.sum() > 0``): the same, with the tensors computed alongside
  (``traced_with`` "shape propagation with values"), for a forward and for a training step; a forward on shapes
  goes on with values from the first value it reads (the calls before it run on tensors then), where it can;
* where it cannot run on shapes at all (``type(x) is torch.Tensor``, numpy on a tensor), or a rule
  refuses its input: every call the forward makes, run on meta tensors (:mod:`convcost.torch.trace_calls`;
  real ones where meta cannot run it), a training step's included;
* symbolic input sizes (``(1, 3, H, W)``, closed forms): a ``torch.fx`` graph walked with the same
  formulas (:mod:`convcost.torch.trace_fx`).

Only a forward that cannot run on what a reading offers moves profile to the next one, and the report's
``traced_with`` and ``notes`` say which reading it used and why. Any other exception of convcost's own code
is its bug and surfaces as :class:`convcost.errors.InternalError`, never as a verdict on the input.

What cannot be counted is listed in ``report.unsupported`` with its count and call sites;
``report.exact`` is False only when something that may multiply-accumulate was left out. Input the model
rejects raises :class:`ConvcostError` quoting PyTorch. The model and torch's state are left as they were.

>>> import torch, torch.nn as nn, torch.nn.functional as F
>>> class Net(nn.Module):
...     def __init__(self):
...         super().__init__()
...         self.conv = nn.Conv2d(3, 8, 3, padding=1)
...         self.fc = nn.Linear(8, 10)
...     def forward(self, x):
...         y = F.relu(self.conv(x))
...         return self.fc(torch.flatten(F.adaptive_avg_pool2d(y + x.mean() , 1), 1))
>>> r = profile(Net(), (1, 3, 32, 32))
>>> r.total["params"], r.total["macs"], r.exact
(314, 221264, True)
>>> list(r.by_module(depth=1))
['conv', 'relu', 'mean', 'add', 'adaptive_avg_pool2d', 'flatten', 'fc']
"""

from __future__ import annotations

import torch

from convcost.errors import ConvcostError, InternalError
from convcost.torch.conventions import CONVENTIONS, headline
from convcost.torch.inputs import model_inputs
from convcost.torch.leftovers import Attributes
from convcost.torch.locks import TRACING, model_lock
from convcost.torch.targets import step_inputs, step_report
from convcost.torch.trace_calls import read_calls
from convcost.torch.trace_fx import read_graph, trace
from convcost.torch.trace_shapes import NeedsTensors, read_shapes
from convcost.torch.tree import Tree
from convcost.torch.walker import first_line


def profile(model, inputs, convention: str = "convcost", *, kwargs=None, training: bool = False, targets=None):
    """The exact cost of every operation of ``model`` on ``inputs``.

    ``inputs``: a shape (ints or sympy symbols), a tensor, or a tuple or list of them, one per positional
    input; ``kwargs``: keyword inputs by name. ``convention`` names the tool whose headline
    ``report.headline()`` gives (see :mod:`convcost.torch.conventions`); the rows are convcost's exact
    counts either way.

    ``training=True`` reads one training step as autograd runs it (batch norm on batch statistics,
    dropout's masks): each row's ``backward_macs`` and ``saved_elements`` follow which tensors need a
    gradient (data given as a shape needs none, a tensor given with ``requires_grad=True`` does, a
    parameter with ``requires_grad=False`` gets no weight gradient), and ``report.training`` holds the
    step's totals (:class:`convcost.training.StepTotals`: saved storages counted once, FlopCounterMode's
    backward number, ``memory(optimizer, dtype)``). :func:`convcost.torch.max_batch` finds the largest
    batch that fits. A step is read on shapes; where the forward reads values it is read on shapes with the
    tensors computed alongside (:func:`convcost.torch.trace_shapes.read_shapes`, ``with_values``), so that
    the rows keep their training bookkeeping.

    >>> import torch.nn as nn
    >>> net = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(), nn.Flatten(),
    ...                     nn.Linear(8 * 4 * 4, 10))
    >>> step = profile(net, (2, 3, 6, 6), training=True).training
    >>> step.backward_macs, step.saved_elements, step.memory("adam")
    (12032, 744, 27348)

    ``targets`` (with ``training=True``): a model whose training forward takes targets after its inputs and
    returns its losses, as torchvision's detection and segmentation models do (``model(images, targets)``,
    ``targets`` a list of dicts of tensors, one per image: ``boxes`` ``(k, 4)``, ``labels``, ``masks``,
    ``keypoints``); the step is the sum of the losses, backward. What such a forward does depends on the values
    given (anchors matched to boxes, proposals, non-maximum suppression, sampling), so the step is read call by
    call on these images and targets, from the random state ``profile`` finds (seed it as the real step is
    seeded): the data-dependent shapes are this input's, not a closed form, and the notes say so
    (:mod:`convcost.torch.targets`). A list of images is one input: ``profile(model, (images,), targets=...)``.

    >>> class Toy(nn.Module):  # the squared features inside each image's first box
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.conv = nn.Conv2d(3, 4, 3, padding=1)
    ...     def forward(self, images, targets):
    ...         features = self.conv(torch.stack(images))
    ...         inside = [f[:, y1:y2, x1:x2] for f, t in zip(features, targets)
    ...                   for x1, y1, x2, y2 in [t["boxes"][0].int().tolist()]]
    ...         return {"boxes": sum(x.square().mean() for x in inside)}
    >>> images = [torch.rand(3, 8, 8), torch.rand(3, 8, 8)]
    >>> targets = [{"boxes": torch.tensor([[1., 2., 5., 6.]])}, {"boxes": torch.tensor([[0., 0., 3., 8.]])}]
    >>> step = profile(Toy(), (images,), targets=targets, training=True).training
    >>> step.backward_macs, step.saved_elements, step.complete
    (13824, 896, True)
    """
    if not isinstance(model, torch.nn.Module):
        raise ConvcostError(f"profile: {model!r} is not a torch.nn.Module")
    if not isinstance(convention, str) or convention not in CONVENTIONS:
        raise ConvcostError(f"profile: unknown convention {convention!r}; known: {', '.join(CONVENTIONS)}")
    if not isinstance(training, bool):
        raise ConvcostError(f"profile: training={training!r} must be True or False")
    given = model_inputs(model, inputs, kwargs) if targets is None else \
        step_inputs(model, inputs, targets, kwargs, training)
    with model_lock(model), _state_kept(model, training) as state:
        try:
            if targets is not None:
                state.attributes.touch_all()  # a reading that runs the model as it is: every flag set
                return step_report(model, given, _done(model, given, convention, state.attributes.named))
            return _read(model, given, convention, training, state.attributes)
        except (ConvcostError, InternalError):
            raise
        except Exception as exc:  # noqa: BLE001 - raised by convcost's own code around the readings: its bug
            raise InternalError("profile", exc) from exc


def _done(model, given, convention, named=None) -> dict:
    """What every report of this call holds beside its rows (``named``: ``dict(model.named_modules())``)."""
    types = {name: type(m).__name__ for name, m in (named or Tree(model).named).items()}
    return dict(inputs=given, convention=convention, headline=headline, modules=types)


def _read(model, given, convention, training, kept):
    done = _done(model, given, convention, kept.named)
    if given.symbolic:
        kept.touch_all()  # torch.fx reads every module: every flag set
        return _read_graph(model, given, training, done)
    try:
        record = read_shapes(model, given, _device(model), training, kept=kept)
    except (NeedsTensors, ConvcostError) as exc:  # values needed, or a refusal PyTorch may word better
        why = f"the forward cannot run on shapes alone ({first_line(exc)})"
    else:
        if record.values_from is None:
            return record.report(traced_with=SHAPES, **done)
        # it went on with values where the forward read one, as the reading with values would have read it
        why = f"the forward cannot run on shapes alone ({record.values_from})"
        return record.report(traced_with=VALUES, notes=[f"read with values: {why}"], **done)
    try:
        record = read_shapes(model, given, _device(model), training, with_values=True, kept=kept)
    except (NeedsTensors, ConvcostError) as exc:
        why = f"{why}, nor with its values computed alongside ({first_line(exc)})"
        kept.touch_all()  # every call run as PyTorch runs it: every flag set
        return _read_calls(model, given, why, done, training)
    return record.report(traced_with=VALUES, notes=[f"read with values: {why}"], **done)


def _read_graph(model, given, training, done):
    try:
        graph = trace(model, given)
    except Exception as exc:  # noqa: BLE001 - fx raises many kinds (TraceError, TypeError on proxies ...)
        raise ConvcostError(f"profile: torch.fx cannot trace {type(model).__name__} ({first_line(exc)}), and "
                            "reading every call needs concrete input sizes") from None
    return read_graph(model, given, graph, training).report(traced_with="torch.fx", **done)


#: how a report read by :mod:`convcost.torch.trace_shapes` says it was read
SHAPES = "shape propagation"
#: ... and one read with the tensors computed alongside (a forward that reads values, or its training step)
VALUES = "shape propagation with values"


def _read_calls(model, given, why, done, training=False):
    try:
        with TRACING.shared():
            record, _, device = read_calls(model, given, _device(model), training)
    except (ConvcostError, InternalError):
        raise
    except Exception as exc:  # noqa: BLE001 - PyTorch's reason, as the library error
        raise ConvcostError(f"PyTorch rejects input {_shown(given)} for {type(model).__name__}: "
                            f"{first_line(exc)}") from None
    way = "calls on meta tensors" if device == "meta" else f"calls on {device} tensors (the forward reads values)"
    return record.report(traced_with=way, notes=[f"read call by call: {why}"], **done)


def _device(model):
    t = next(iter(model.parameters()), None)
    return t.device if t is not None and not t.is_meta else "cpu"


def _shown(given) -> str:
    shapes = given.shapes
    return str(shapes[0]) if len(shapes) == 1 else str(list(shapes))


class _state_kept:
    """Eval mode while profiling (batch norm on running statistics, no training-only branches), or training
    mode for a training step; every module's own training flag and attributes (whatever a forward wrote: an
    eval-time cache, a counter), grad mode and the default dtype restored after. A module gets its flag when a
    reading first reaches it (:class:`~convcost.torch.leftovers.Attributes` ``lazy``): the shape reading reaches
    the modules its forward runs, the others every module."""

    def __init__(self, model, training=False):
        self.model, self.training = model, training

    def __enter__(self):
        self.attributes = Attributes(self.model, lazy=True, training=self.training)
        self.grad = torch.is_grad_enabled()
        self.dtype = torch.get_default_dtype()
        return self

    def __exit__(self, *exc):
        self.attributes.restore()  # the training flags with the rest
        torch.set_grad_enabled(self.grad)
        if torch.get_default_dtype() != self.dtype:
            torch.set_default_dtype(self.dtype)
        return False
