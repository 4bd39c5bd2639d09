"""Proximal operators, one small numba function each.

Each array operator writes into ``out`` (which may alias the input) so the
callers never allocate inside their innermost loop. Thresholds are scalars;
works for float32 and float64 alike.
"""

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def soft_threshold(x, thresh, out):
    """Two-sided soft-threshold: ``sign(x) * max(|x| - thresh, 0)`` (prox of l1)."""
    for i in range(x.shape[0]):
        xi = x[i]
        if xi > thresh:
            out[i] = xi - thresh
        elif xi < -thresh:
            out[i] = xi + thresh
        else:
            out[i] = 0.0
    return out


@njit(nogil=True, cache=True)
def nonneg_soft_threshold(x, thresh, out):
    """Non-negative soft-threshold ``ReLU(x - thresh)`` (prox of l1 + x >= 0)."""
    for i in range(x.shape[0]):
        xi = x[i] - thresh
        out[i] = xi if xi > 0.0 else 0.0
    return out


@njit(nogil=True, cache=True)
def hard_threshold(x, thresh, out):
    """Hard threshold: keep ``x`` where ``|x| > thresh``, zero elsewhere."""
    for i in range(x.shape[0]):
        out[i] = x[i] if abs(x[i]) > thresh else 0.0
    return out


@njit(nogil=True, cache=True)
def group_squared_norms(x, groups):
    """``||x_g||^2`` of every group (``groups[i]``: group index of coordinate i)."""
    n_groups = 0
    for i in range(groups.shape[0]):
        n_groups = max(n_groups, groups[i] + 1)
    sq = np.zeros(n_groups)
    for i in range(x.shape[0]):
        sq[groups[i]] += x[i] * x[i]
    return sq


@njit(nogil=True, cache=True)
def group_soft_threshold(x, thresh, groups, out):
    """Group soft-threshold (prox of the group lasso, non-overlapping groups).

    ``groups[i]`` is the group index of coordinate ``i`` (0 .. n_groups - 1).
    Each group ``g`` is shrunk by ``max(1 - thresh / ||x_g||, 0)``.
    """
    sq = group_squared_norms(x, groups)
    for g in range(sq.shape[0]):
        norm = np.sqrt(sq[g])
        sq[g] = 1.0 - thresh / norm if norm > thresh else 0.0
    for i in range(x.shape[0]):
        out[i] = x[i] * sq[groups[i]]
    return out


@njit(nogil=True, cache=True)
def project_simplex(x, out):
    """Euclidean projection onto the probability simplex {z >= 0, sum z = 1}.

    Sort-based algorithm of Held, Wolfe & Crowder (1974); see also Duchi et al.,
    "Efficient projections onto the l1-ball", ICML 2008.
    """
    u = np.sort(x)[::-1]
    css = 0.0
    theta = 0.0
    for k in range(u.shape[0]):
        css += u[k]
        t = (css - 1.0) / (k + 1)
        if u[k] - t > 0.0:
            theta = t
    for i in range(x.shape[0]):
        xi = x[i] - theta
        out[i] = xi if xi > 0.0 else 0.0
    return out


@njit(nogil=True, cache=True)
def clip_box(x, lower, upper, out):
    """Projection onto the box ``[lower, upper]`` (elementwise clipping)."""
    for i in range(x.shape[0]):
        out[i] = min(max(x[i], lower), upper)
    return out
