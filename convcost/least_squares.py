"""Bounded least squares with a prior, in plain numpy: the solvers the latency model's fits share.

* :func:`nnls` solves ``min |a x - b|`` subject to ``x >= lower`` (Lawson and Hanson's active set).
* :func:`ridge_toward` adds a prior: ``min |a x - b|^2 + weight |x - prior|^2`` subject to ``x >= lower``, by
  appending ``sqrt(weight) I`` rows to ``a`` (and ``sqrt(weight) prior`` to ``b``): where the data say little
  about a coefficient, it stays near its prior; where they say much, they win.

>>> import numpy as np
>>> a = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
>>> nnls(a, a @ np.array([2.0, 3.0])).round(6).tolist()
[2.0, 3.0]
>>> ridge_toward(a, a @ np.array([2.0, 3.0]), prior=np.ones(2), weight=0.0).round(6).tolist()
[2.0, 3.0]
"""

from __future__ import annotations

import numpy as np

from convcost.errors import ConvcostError


def nnls(a, b, lower=None, iterations: int = 200) -> np.ndarray:
    """Least squares ``min |a x - b|`` subject to ``x >= lower`` (default 0), by an active-set loop.

    >>> nnls(np.array([[1.0, 0.0], [0.0, 1.0]]), np.array([2.0, -3.0])).tolist()
    [2.0, 0.0]
    """
    a, b = np.asarray(a, float), np.asarray(b, float)
    if a.ndim != 2 or b.shape != (a.shape[0],):
        raise ConvcostError(f"nnls: a must be a matrix and b a vector of its rows, got shapes {a.shape} and {b.shape}")
    lower = np.zeros(a.shape[1]) if lower is None else np.asarray(lower, float)
    b = b - a @ lower  # solve for x - lower >= 0
    free = np.ones(a.shape[1], bool)
    x = np.zeros(a.shape[1])
    for _ in range(iterations):
        x = np.zeros(a.shape[1])
        if free.any():
            x[free] = np.linalg.lstsq(a[:, free], b, rcond=None)[0]
        if (x >= -1e-15).all():
            # a fixed variable whose gradient wants to grow is freed again (Lawson-Hanson's outer step)
            gradient = a.T @ (b - a @ x)
            wants = ~free & (gradient > 1e-12 * max(1.0, np.abs(gradient).max()))
            if not wants.any():
                break
            free[np.argmax(np.where(wants, gradient, -np.inf))] = True
            continue
        free[np.argmin(np.where(free, x, np.inf))] = False
    return np.maximum(x, 0) + lower


def ridge_toward(a, b, prior, weight: float, lower=None) -> np.ndarray:
    """``min |a x - b|^2 + weight |x - prior|^2`` subject to ``x >= lower`` (default 0).

    A column no row uses keeps its prior (clipped to ``lower``); ``weight`` 0 is :func:`nnls`.

    >>> a = np.array([[1.0, 0.0]])       # the second coefficient is never seen
    >>> ridge_toward(a, np.array([4.0]), prior=np.ones(2), weight=1.0).round(9).tolist()
    [2.5, 1.0]
    """
    a, b, prior = np.asarray(a, float), np.asarray(b, float), np.asarray(prior, float)
    if prior.shape != (a.shape[1],):
        raise ConvcostError(f"ridge_toward: prior has shape {prior.shape}, the matrix {a.shape[1]} columns")
    if not (np.isfinite(weight) and weight >= 0):
        raise ConvcostError(f"ridge_toward: weight={weight!r} must be a finite number >= 0")
    root = np.sqrt(weight)
    stacked = np.vstack([a, root * np.eye(a.shape[1])])
    return nnls(stacked, np.concatenate([b, root * prior]), lower)
