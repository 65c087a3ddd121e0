"""Process-wide locks that make ``profile`` and ``measure`` safe to call from several threads at once.

``torch.fx`` tracing patches ``nn.Module.__call__`` for the whole process while it runs: a forward in
another thread at that moment would be recorded into the wrong graph ("module is not installed as a
submodule"), so tracing is exclusive and forwards run by convcost share the other side.

>>> with TRACING.shared():
...     pass
"""

from __future__ import annotations

import contextlib
import threading
import weakref


class SharedExclusive:
    """Many holders of the shared side at once, or one of the exclusive side (re-entrant in its thread;
    a thread holding the shared side must not ask for the exclusive one)."""

    def __init__(self):
        self._cond = threading.Condition(threading.Lock())
        self._shared = 0
        self._owner = None
        self._depth = 0

    @contextlib.contextmanager
    def shared(self):
        me = threading.get_ident()
        with self._cond:
            if self._owner != me:
                while self._owner is not None:
                    self._cond.wait()
            self._shared += 1
        try:
            yield
        finally:
            with self._cond:
                self._shared -= 1
                self._cond.notify_all()

    @contextlib.contextmanager
    def exclusive(self):
        me = threading.get_ident()
        with self._cond:
            if self._owner != me:
                while self._owner is not None or self._shared > 0:
                    self._cond.wait()
                self._owner = me
            self._depth += 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if self._depth == 0:
                    self._owner = None
                self._cond.notify_all()

#: fx tracing (exclusive) against forwards run by profile and measure (shared)
TRACING = SharedExclusive()

_MODEL_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_GUARD = threading.Lock()


def model_lock(model) -> threading.RLock:
    """One lock per model object: profiling a model flips its training flags, so one thread at a time."""
    with _GUARD:
        lock = _MODEL_LOCKS.get(model)
        if lock is None:
            lock = _MODEL_LOCKS[model] = threading.RLock()
        return lock
