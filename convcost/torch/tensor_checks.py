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

A profile function is called at every Python call and every builtin call of the forward, and a stand-in is asked
its class a few times a forward; so the shape reading first runs with a lazy :class:`Watch` (CPython 3.11), which
installs none: asked, it looks at the asking frame's call under way (:func:`_isinstance_called`: the ``CALL``, or the
``PRECALL`` where a specialised builtin runs, and the name that loaded what it calls). Where the bytecode does not
say (a callable taken from a list, a jump among the arguments), the answer is no and the reading runs again with the
profile function.

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

import dis
import sys
import types
import weakref

_ISINSTANCE = isinstance


class Watch:
    """While entered, in this thread: whether a call of the builtin ``isinstance`` made from Python is under way
    (:meth:`tensor`). :meth:`pause` and :meth:`resume` take the profile function off for a stretch of convcost's
    own code (every Python call under it costs one call of the profile function); a ``lazy`` one installs none and
    only marks the stretches (the forward's own code) in which the asking frame is looked at."""

    __slots__ = ("depth", "hook", "active", "blind", "unanswered", "entered", "lazy", "unsure")

    def __init__(self, lazy=False):
        self.depth = 0  # the isinstance calls under way
        self.hook = self._event  # one bound method, so that it is known again
        self.active = False  # the profile function installed now (lazy: watching now, with nothing installed)
        self.blind = False  # another profiler holds the place: nothing is watched
        self.unanswered = False  # a stand-in was asked its class while blind
        self.entered = False
        # lazy: no profile function; a stand-in asked its class looks at the Python frame asking (its call under
        # way, :func:`_isinstance_called`), which tells Python's isinstance from the rest almost always; where it
        # cannot, the answer is no and ``unsure`` is set, for the caller to read again with a profile function.
        # (Each Python call and builtin call of the forward costs a call of the profile function; a stand-in is
        # asked its class a few times a forward.) Only where the interpreter's calls are known (CPython 3.11).
        self.lazy = lazy and _LAZY
        self.unsure = False

    def tensor(self) -> bool:
        """Whether a stand-in is a tensor to whoever asks now: yes to Python's ``isinstance``, no to anyone else
        (and, while blind, no to everyone, the question remembered). Called by the stand-in's ``__class__``: the
        frame asking is its caller's."""
        if self.depth:
            return True
        if self.blind:
            self.unanswered = True
        elif self.lazy and self.active:
            frame = sys._getframe(2)
            called = _isinstance_called(frame)
            if called is not True and frame.f_code.co_name == "__instancecheck__" and frame.f_back is not None and \
                    _isinstance_called(frame.f_back):  # a metaclass's own check (nn.Parameter's) run by isinstance:
                called = True  # the profile function would see that isinstance under way
            if called is None:
                self.unsure = True
            return bool(called)
        return False

    def __enter__(self):
        self.blind = sys.getprofile() is not None
        self.entered = True
        if not self.blind:
            if not self.lazy:
                sys.setprofile(self.hook)
            self.active = True
        return self

    def __exit__(self, *exc):
        if self.active:
            if not self.lazy:
                sys.setprofile(None)
            self.active = False
        self.depth, self.entered = 0, False
        return False

    def pause(self) -> bool:
        """The profile function off (whether it was on), unless an ``isinstance`` is under way, whose end must be
        seen."""
        if self.active and not self.depth:
            if not self.lazy:
                sys.setprofile(None)
            self.active = False
            return True
        return False

    def resume(self, paused: bool) -> None:
        if paused:
            if not self.lazy:
                sys.setprofile(self.hook)
            self.active = True

    def watch(self) -> bool:
        """The profile function on again (whether it was off) for the forward's own code run from convcost's (a
        module's forward, a function's Python body): :meth:`pause` ends the stretch."""
        if self.entered and not self.active and not self.blind:
            if not self.lazy:
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


#: whether :func:`_isinstance_called` knows this interpreter's calls (CPython 3.11's ``PRECALL``/``CALL``)
_LAZY = sys.implementation.name == "cpython" and sys.version_info[:2] == (3, 11)
_MISSING = object()
#: code object -> {offset of a call: how to tell whether it calls isinstance}, worked out once per call site
_SITES = weakref.WeakKeyDictionary()
_SIMPLE = frozenset(dis.opmap[name] for name in ("LOAD_GLOBAL", "LOAD_FAST", "LOAD_DEREF", "LOAD_NAME"))
_ATTRIBUTES = frozenset(dis.opmap[name] for name in ("LOAD_METHOD", "LOAD_ATTR") if name in dis.opmap)
_OWN = frozenset(dis.opmap[name] for name in ("PRECALL", "KW_NAMES") if name in dis.opmap)
_CALL, _PRECALL, _CALL_FUNCTION_EX = (dis.opmap.get(name) for name in ("CALL", "PRECALL", "CALL_FUNCTION_EX"))
_LOAD_GLOBAL, _LOAD_NAME = dis.opmap["LOAD_GLOBAL"], dis.opmap["LOAD_NAME"]
_JUMPS = frozenset(dis.hasjrel) | frozenset(dis.hasjabs)
_CACHE = dis.opmap.get("CACHE", 0)
_PLAIN_CALLABLES = (types.FunctionType, types.BuiltinFunctionType, types.MethodDescriptorType,
                    types.WrapperDescriptorType, types.ClassMethodDescriptorType, classmethod)


def _isinstance_called(frame):
    """Whether ``frame`` is calling the builtin ``isinstance`` now (True), something else (False), or cannot be
    told (None): the call under way is found in its bytecode, and what it calls from the name it was loaded by.

    >>> class Probe:
    ...     @property
    ...     def __class__(self):
    ...         ASKED.append(_isinstance_called(sys._getframe(1)))
    ...         return Probe
    >>> ASKED = []
    >>> _ = isinstance(Probe(), int), type(Probe()), Probe().__class__, list(map(isinstance, [Probe()], [int]))
    >>> ASKED if _LAZY else [True, False, False]
    [True, False, False]
    """
    sites = _SITES.get(frame.f_code)
    if sites is None:
        sites = _SITES[frame.f_code] = {}
    how = sites.get(frame.f_lasti, _MISSING)
    if how is _MISSING:
        how = sites[frame.f_lasti] = _site(frame.f_code, frame.f_lasti)
    if how is None or type(how) is bool:
        return how
    where, name, attribute = how
    value = frame.f_locals.get(name, _MISSING) if where != "LOAD_GLOBAL" else _MISSING
    if value is _MISSING and where in ("LOAD_GLOBAL", "LOAD_NAME"):
        value = frame.f_globals.get(name, _MISSING)
        if value is _MISSING:
            value = frame.f_builtins.get(name, _MISSING)
    if value is _MISSING:
        return None
    if attribute is None:
        return value is _ISINSTANCE
    return _static_attribute(value, attribute)


def _site(code, offset):
    """How to tell what the call at ``offset`` calls: (load instruction, name, attribute or None), a verdict, or
    None where the bytecode does not say (a jump among the call's arguments, a callable computed).

    Read backwards from the call, in the code's raw bytes (CPython 3.11: two bytes an instruction, its inline caches
    after it as instructions of opcode 0, its ``EXTENDED_ARG`` prefixes before it), so that only the instructions
    from the callable's load to its call are decoded, not the whole function. A jump landing among them comes from
    a jump among them (an expression's ``x if c else y``, ``a or b``: the compiler jumps into an expression from
    nowhere else), which answers None."""
    raw = code.co_code
    if offset < 0 or offset >= len(raw) or offset % 2:
        return None
    op = raw[offset]
    # (a call of a builtin runs in its PRECALL once the interpreter has specialised it: isinstance's included)
    if op != _CALL and op != _PRECALL:  # no call under way: an attribute read (x.__class__), a match ...
        return None if op == _CALL_FUNCTION_EX else False
    need, at = _arg(raw, offset), _before(raw, offset)
    while at >= 0 and raw[at] in _OWN:  # (a CALL's own PRECALL, KW_NAMES)
        at = _before(raw, at)
    while need > 0:  # back over the arguments (calls among them included), to what loaded the callable
        if at < 0:
            return None
        op = raw[at]
        if op in _JUMPS:  # (x if c else y) among them: the stack is not one straight line
            return None
        need -= dis.stack_effect(op, _arg(raw, at) if op >= dis.HAVE_ARGUMENT else None)
        if need < 0:
            return None
        at = _before(raw, at)
    if at < 0:
        return None
    op = raw[at]
    if op in _SIMPLE:
        return dis.opname[op], _name(code, op, _arg(raw, at)), None
    if op in _ATTRIBUTES:
        base = _before(raw, at)
        if base >= 0 and raw[base] in _SIMPLE:
            return dis.opname[raw[base]], _name(code, raw[base], _arg(raw, base)), code.co_names[_arg(raw, at)]
    return None


def _before(raw, offset):
    """The offset of the instruction before the one at ``offset`` (its inline caches stepped over; an
    ``EXTENDED_ARG`` is one, as :func:`dis.get_instructions` lists it), negative at the start."""
    offset -= 2
    while offset >= 0 and raw[offset] == _CACHE:
        offset -= 2
    return offset


def _arg(raw, offset):
    """The argument of the instruction at ``offset``, its ``EXTENDED_ARG`` prefixes' bytes above its own."""
    arg, shift, offset = raw[offset + 1], 8, offset - 2
    while offset >= 0 and raw[offset] == dis.EXTENDED_ARG:
        arg |= raw[offset + 1] << shift
        shift, offset = shift + 8, offset - 2
    return arg


def _name(code, op, arg):
    """The name a load instruction of :data:`_SIMPLE` loads (as :func:`dis.get_instructions` gives its ``argval``)."""
    if op == _LOAD_GLOBAL:
        return code.co_names[arg >> 1]  # (its lowest bit: whether a NULL is pushed first)
    if op == _LOAD_NAME:
        return code.co_names[arg]
    return code._varname_from_oparg(arg)  # a local, a cell or a free variable


def _static_attribute(owner, name):
    """Whether ``owner.name`` is the builtin ``isinstance``, found without running any code (None where that cannot
    be told: a ``__getattribute__`` or ``__getattr__`` of its own, a property, an attribute not found)."""
    if type(owner) is types.ModuleType:
        value = vars(owner).get(name, _MISSING)
        return None if value is _MISSING else value is _ISINSTANCE
    kind = type(owner)
    if kind.__getattribute__ is not object.__getattribute__:
        return None
    found = next((vars(base)[name] for base in kind.__mro__ if name in vars(base)), _MISSING)
    if found is not _MISSING and hasattr(type(found), "__set__"):  # a property: its getter would have to run
        return None
    own = getattr(owner, "__dict__", None)
    if type(own) is dict and name in own:
        return own[name] is _ISINSTANCE
    if found is _MISSING:
        return None
    if type(found) is staticmethod:
        return found.__func__ is _ISINSTANCE
    if found is _ISINSTANCE or isinstance(found, _PLAIN_CALLABLES):
        return found is _ISINSTANCE
    return None if hasattr(type(found), "__get__") else False
