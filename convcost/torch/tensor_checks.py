"""What ``isinstance(x, torch.Tensor)`` answers for a stand-in the shape reading hands a forward.

A forward read on shapes holds :class:`~convcost.torch.trace_shapes.Shaped` values, not tensors. Where
``isinstance(x, torch.Tensor)`` (``torch.is_tensor(x)`` is that test) says no, a forward that branches on it takes
another branch than PyTorch's: ``torch.utils.checkpoint`` saves only the tensors among its inputs, and helpers in
torch, transformers and timm test their arguments so. Python's ``isinstance`` asks ``x.__class__`` when the type
alone says no, so a stand-in whose ``__class__`` is ``torch.Tensor`` is a tensor to it, its ``type()`` unchanged.

But PyTorch's C++ asks the same question the same way (``THPVariable_Check`` is ``PyObject_IsInstance``) and, told
yes, reads the object's memory as a tensor's: its argument parser does so for each number it is given
(``torch.where(mask, x, 0.0)`` tries ``x`` as a number), before any ``__torch_function__`` sees the call. A
stand-in that said yes there would be read as memory it is not. So it says yes only while the builtin
``isinstance``, called from Python, runs: :class:`Watch` follows that with a profile function
(:func:`sys.setprofile`, this thread's alone), told as each builtin called from Python starts and ends. Every
other asker (a C++ function of torch) gets the truth, as before: the stand-in is no tensor (a ``TypeError``, which
sends the forward to the next reading). Under another profiler (``cProfile``) nothing is installed: a stand-in is
no tensor to anyone, and whether anything asked is remembered (:attr:`Watch.unanswered`), so that the reading can
give way to one on real tensors rather than guess.

>>> import torch
>>> class Stand:
...     @property
...     def __class__(self):
...         return torch.Tensor if WATCH.tensor() else Stand
>>> WATCH = Watch()
>>> with WATCH:
...     inside = isinstance(Stand(), torch.Tensor), torch.is_tensor(Stand()), type(Stand()) is Stand
>>> inside, isinstance(Stand(), torch.Tensor), WATCH.unanswered
((True, True, True), False, False)
"""

from __future__ import annotations

import sys

_ISINSTANCE = isinstance


class Watch:
    """While entered, in this thread: whether a call of the builtin ``isinstance`` made from Python is under way
    (:meth:`tensor`). :meth:`pause` and :meth:`resume` take the profile function off for a stretch of convcost's
    own code (every Python call under it costs one call of the profile function)."""

    __slots__ = ("depth", "hook", "active", "blind", "unanswered", "entered")

    def __init__(self):
        self.depth = 0  # the isinstance calls under way
        self.hook = self._event  # one bound method, so that it is known again
        self.active = False  # the profile function installed now
        self.blind = False  # another profiler holds the place: nothing is watched
        self.unanswered = False  # a stand-in was asked its class while blind
        self.entered = False

    def tensor(self) -> bool:
        """Whether a stand-in is a tensor to whoever asks now: yes to Python's ``isinstance``, no to anyone else
        (and, while blind, no to everyone, the question remembered)."""
        if self.depth:
            return True
        if self.blind:
            self.unanswered = True
        return False

    def __enter__(self):
        self.blind = sys.getprofile() is not None
        self.entered = True
        if not self.blind:
            sys.setprofile(self.hook)
            self.active = True
        return self

    def __exit__(self, *exc):
        if self.active:
            sys.setprofile(None)
            self.active = False
        self.depth, self.entered = 0, False
        return False

    def pause(self) -> bool:
        """The profile function off (whether it was on), unless an ``isinstance`` is under way, whose end must be
        seen."""
        if self.active and not self.depth:
            sys.setprofile(None)
            self.active = False
            return True
        return False

    def resume(self, paused: bool) -> None:
        if paused:
            sys.setprofile(self.hook)
            self.active = True

    def watch(self) -> bool:
        """The profile function on again (whether it was off) for the forward's own code run from convcost's (a
        module's forward, a function's Python body): :meth:`pause` ends the stretch."""
        if self.entered and not self.active and not self.blind:
            sys.setprofile(self.hook)
            self.active = True
            return True
        return False

    def _event(self, frame, event, arg):
        if arg is _ISINSTANCE:
            if event == "c_call":
                self.depth += 1
            elif event == "c_return" or event == "c_exception":
                self.depth -= 1
