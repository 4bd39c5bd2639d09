"""Lasso duality gap for one sample, from Gram-form quantities.

Primal  P(z) = 0.5 ||x - z D||^2 + alpha ||z||_1   (z >= 0 if positive).
Dual    Q(theta) = <x, theta> - 0.5 ||theta||^2 with theta = s (x - z D),
        s = min(1, alpha / ||D (x - z D)||_inf)  (one-sided max if positive).
The residual is formed explicitly from the support of ``z`` for accuracy; the
correlations ``corr = D (x - z D)^T`` are passed in (``b - z G``).
"""

import numpy as np
from numba import njit

from ._blas import axpy, copy_into


@njit(nogil=True, cache=True)
def lasso_primal_dual(x, dictionary, z, corr, alpha, positive, res):
    """Return ``(primal, gap)`` for one sample; ``res`` is a work buffer."""
    copy_into(x, res)
    l1 = 0.0
    for j in range(z.shape[0]):
        zj = z[j]
        if zj != 0.0:
            l1 += abs(zj)
            axpy(-zj, dictionary[j], res)
    res_norm2 = 0.0
    x_res = 0.0
    for f in range(x.shape[0]):
        res_norm2 += res[f] * res[f]
        x_res += x[f] * res[f]
    primal = 0.5 * res_norm2 + alpha * l1
    corr_max = 0.0
    for j in range(corr.shape[0]):
        c = corr[j] if positive else abs(corr[j])
        if c > corr_max:  # a rarely taken branch: faster than max()
            corr_max = c
    scale = 1.0 if corr_max <= alpha else alpha / corr_max
    dual = scale * x_res - 0.5 * scale * scale * res_norm2
    return primal, max(primal - dual, 0.0)


@njit(nogil=True, cache=True)
def relative_gap(primal, gap):
    """Gap relative to the primal objective (0 when both vanish)."""
    if primal <= 0.0:
        return 0.0 if gap <= 0.0 else np.inf
    return gap / primal
