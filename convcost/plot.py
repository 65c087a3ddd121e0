"""Plots of where each choice wins (matplotlib, from the plot extra, imported only when a plot is made).

:func:`plot_break_even` draws the exact region of a :class:`~convcost.breakeven.BreakEven`
over a grid of the solved symbol (x axis) and one other symbol (y axis),
with the closed-form threshold and the rule of thumb on top where they exist.
Symbols on neither axis take the values given, else 64 (named in the title).
The figure is built without pyplot, so no global state or GUI backend is touched.

>>> from convcost import break_even, StandardConv, AsymmetricConv
>>> be = break_even(StandardConv, AsymmetricConv, metric="params", solve_for="K")
>>> fig = plot_break_even(be, y="C", O=64)
>>> fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()
('K', 'C')
"""

from __future__ import annotations

import pathlib

import numpy as np
import sympy

from convcost import display
from convcost.errors import ConvcostError
from convcost.extras import need

#: the value a symbol on neither axis takes when none is given
DEFAULT_VALUE = 64
FORMATS = (".png", ".svg", ".pdf")


def plot_break_even(result, path=None, *, x=None, y=None, ranges: dict | None = None, **fixed):
    """The figure of where A and B win; saved to ``path`` (``.png``, ``.svg`` or ``.pdf``) when given.

    ``ranges`` maps a symbol name to ``(low, high)``; integer symbols are
    sampled at every integer, real ones at 400 points.
    """
    need("matplotlib", "plot", "plotting (convcost.plot, convcost breakeven --plot)")
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    if path is not None and pathlib.Path(path).suffix.lower() not in FORMATS:
        raise ConvcostError(f"plot path {str(path)!r}: give a file ending in {', '.join(FORMATS)}")
    if result.symbol is None:
        raise ConvcostError("nothing to plot: every value is bound, so one side wins everywhere")
    names = [s.name for s in result.variables]
    by_name = {s.name: s for s in result.variables}
    x = x or result.symbol.name
    for axis in (x, y):
        if axis is not None and axis not in names:
            raise ConvcostError(f"cannot plot along {axis}: the condition depends on {', '.join(names) or 'nothing'}")
    others = [n for n in names if n not in (x, y) and n not in fixed]
    if y is None and others:
        y = others.pop(0)
    pinned = {n: fixed.get(n, DEFAULT_VALUE) for n in names if n not in (x, y)}
    ranges = dict(ranges or {})

    fig = Figure(figsize=(6.4, 4.8), layout="constrained")
    ax = fig.add_subplot()
    a, b = display.spec(result.comparison.A.spec), display.spec(result.comparison.B.spec)
    xs = _axis(by_name.get(x, result.symbol), ranges.get(x, (1, 15)))
    if y is None:  # one symbol: the two costs against it
        va = sympy.lambdify(result.symbol, result.comparison.value_a.subs(_bind(pinned)), "numpy")
        vb = sympy.lambdify(result.symbol, result.comparison.value_b.subs(_bind(pinned)), "numpy")
        ax.plot(xs, np.broadcast_to(va(xs), xs.shape), label=f"A: {a}")
        ax.plot(xs, np.broadcast_to(vb(xs), xs.shape), label=f"B: {b}")
        ax.set_ylabel(result.metric)
        ax.legend()
    else:
        ys = _axis(by_name[y], ranges.get(y, (1, 128)))
        grid = result.region(**{x: xs[None, :], y: ys[:, None]}, **pinned)
        grid = np.broadcast_to(grid, (len(ys), len(xs)))
        ax.pcolormesh(xs, ys, grid.astype(float), cmap="coolwarm", vmin=0, vmax=1, shading="nearest",
                      rasterized=True)
        handles = [Patch(color="#3b4cc0", label=f"A cheaper: {a}"), Patch(color="#b40426", label=f"B no dearer: {b}")]
        for relation, style, label in ((result.solution, "-", "threshold (exact)"),
                                       (result.rule_of_thumb, "--", "rule of thumb")):
            curve = _curve(relation, result.symbol, by_name[y], ys, pinned)
            if curve is not None:
                handles.append(ax.plot(curve, ys, style, color="black",
                                       label=f"{label}: {display.formula(relation)}")[0])
        ax.set_xlim(xs[0] - 0.5, xs[-1] + 0.5)
        ax.set_ylabel(y)
        ax.legend(handles=handles, fontsize="small", loc="upper left")
    ax.set_xlabel(x)
    shown = ", ".join(f"{k}={v}" for k, v in pinned.items())
    ax.set_title(f"{result.metric}: where B costs no more than A" + (f" ({shown})" if shown else ""), fontsize="medium")
    if path is not None:
        fig.savefig(path)
    return fig


def _axis(sym, bounds) -> np.ndarray:
    lo, hi = bounds
    if not lo < hi:
        raise ConvcostError(f"range of {sym}: {lo}:{hi} must have low < high")
    return np.arange(int(lo), int(hi) + 1) if sym.is_integer else np.linspace(lo, hi, 400)


def _bind(values: dict) -> dict:
    from convcost.symbols import symbol

    return {symbol(k): v for k, v in values.items()}


def _curve(relation, x, ysym, ys, pinned):
    """The boundary ``x = f(y)`` of a solved relation, or None."""
    if relation is None or not isinstance(relation, sympy.core.relational.Relational) or relation.lhs != x:
        return None
    expr = relation.rhs.subs(_bind(pinned))
    if expr.free_symbols - {ysym}:
        return None
    with np.errstate(all="ignore"):
        values = np.asarray(sympy.lambdify(ysym, expr, "numpy")(ys.astype(float)), dtype=float)
    return np.broadcast_to(values, ys.shape)
