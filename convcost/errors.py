"""One library error, and the three-valued check that raises it.

>>> from convcost.symbols import C, G
>>> require(sympy.Eq(sympy.Mod(C, G), 0), "Conv(C, G)", "C must be divisible by G")
(Eq(Mod(C, G), 0),)
>>> require(sympy.Eq(sympy.Mod(6, 4), 0), "Conv(C=6, G=4)", "C=6 is not divisible by G=4")
Traceback (most recent call last):
...
convcost.errors.ConvcostError: Conv(C=6, G=4): C=6 is not divisible by G=4
"""

from __future__ import annotations

import sympy


class ConvcostError(ValueError):
    """The one error convcost raises for input it cannot accept.

    The message names the spec, the offending value and the rule it breaks.
    """


def require(condition, where: object, message) -> tuple:
    """Check ``condition``; raise if it is definitely false.

    Returns ``()`` when the condition is true and ``(condition,)`` when it
    depends on free symbols, so that callers can carry it on their result.
    ``message`` is text, or a function of no arguments that makes it (printing
    a symbolic shape takes longer than the check: it is done only to raise).
    """
    if condition is True:  # decided in plain Python: the common case, no sympy
        return ()
    if condition is not False:
        decided = sympy.sympify(condition)
        if decided is sympy.true:
            return ()
        if decided is not sympy.false:
            return (decided,)
    raise ConvcostError(f"{where}: {message() if callable(message) else message}")


class InternalError(RuntimeError):
    """A bug in convcost: an exception its own code raised, never a verdict on the user's input.

    It keeps the exception it wraps as its cause (``__cause__``) and says where it was raised.

    >>> str(InternalError("profile", KeyError("x")))
    "internal error: KeyError: 'x' in profile (a bug in convcost; please report it)"
    """

    def __init__(self, where: str, exc: BaseException):
        text = str(exc).strip()
        line = text.splitlines()[0] if text else ""
        super().__init__(f"internal error: {type(exc).__name__}: {line} in {where} (a bug in convcost; please "
                         "report it)")
        self.where, self.exc = where, exc
