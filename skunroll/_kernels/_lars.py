"""Homotopy (LARS with the lasso modification) on the Gram matrix, one sample.

Follows the piecewise-linear path of lasso solutions from ``lambda = ||b||_inf``
(where ``z = 0``) down to ``alpha``: at each kink an atom enters the active set
(its correlation reaches ``lambda``) or leaves it (its coefficient crosses
zero). Between kinks the active coefficients move along ``G_AA^{-1} s``. The
Cholesky factor of ``G_AA`` is extended by one row per entering atom and
rebuilt after a drop. A path of ``k`` kinks costs ``O(p k^2)``: fast when the
codes are sparse.

References
----------
Osborne, Presnell & Turlach, "A new approach to variable selection in least
squares problems", IMA J. Numer. Anal. 20(3), 2000. Efron, Hastie, Johnstone &
Tibshirani, "Least angle regression", Ann. Statist. 32(2), 2004.
"""

import numpy as np
from numba import njit

from ._blas import axpy, cholesky_append, cholesky_solve, copy_into


@njit(nogil=True, cache=True, error_model="numpy")
def _entry_step(c, a, lam, positive, in_active, gamma, steps):
    """Smallest step at which an inactive correlation reaches ``+-lambda``.

    Two passes so the first (the costly one) is branch-free and vectorises:
    every candidate step goes into ``steps``, then the winner is looked up.
    """
    inf = np.inf
    best = gamma
    for j in range(c.shape[0]):
        d1 = 1.0 - a[j]
        n1 = lam - c[j]
        g1 = n1 / d1 if (d1 > 1e-12) & (n1 > 0.0) else inf
        d2 = 1.0 + a[j]
        n2 = lam + c[j]
        g2 = n2 / d2 if (d2 > 1e-12) & (n2 > 0.0) & (not positive) else inf
        g = min(g1, g2)
        g = inf if in_active[j] else g
        steps[j] = g
        best = min(best, g)
    if best >= gamma:
        return gamma, -1, 1.0
    for j in range(c.shape[0]):
        if steps[j] == best:
            sign = 1.0 if (lam - c[j]) / (1.0 - a[j]) == best else -1.0
            return best, j, sign
    return gamma, -1, 1.0


@njit(nogil=True, cache=True)
def _drop(active, signs, n_a, t, gram, L, in_active):
    """Remove the ``t``-th active atom and refactor ``G_AA``."""
    in_active[active[t]] = False
    for u in range(t, n_a - 1):
        active[u] = active[u + 1]
        signs[u] = signs[u + 1]
    n_a -= 1
    for u in range(n_a):
        if not cholesky_append(gram, L, active, u, active[u]):
            return -1
    return n_a


@njit(nogil=True, cache=True)
def lars_lasso_sample(
    b,
    gram,
    alpha,
    positive,
    max_steps,
    z,
    c,
    a,
    w,
    signs,
    active,
    in_active,
    L,
    steps,
):
    """Lasso solution for one sample by homotopy, written into ``z``.

    ``c`` ends holding the correlations ``b - z G``. Returns True when the
    path reached ``alpha``; False when it stopped early (a numerically
    dependent atom, or ``max_steps`` kinks), leaving a feasible ``z``.
    """
    p = b.shape[0]
    z[:] = 0.0
    copy_into(b, c)
    in_active[:] = False
    j0 = np.int64(0)  # not a literal: no extra compile of the callees
    for j in range(p):
        if (c[j] if positive else abs(c[j])) > (c[j0] if positive else abs(c[j0])):
            j0 = j
    lam = c[j0] if positive else abs(c[j0])
    if lam <= alpha:
        return True
    cholesky_append(gram, L, active, np.int64(0), j0)
    active[0] = j0
    signs[0] = 1.0 if c[j0] > 0.0 else -1.0
    in_active[j0] = True
    n_a = np.int64(1)
    for _ in range(max_steps):
        cholesky_solve(L, n_a, signs, w)
        a[:] = 0.0
        for t in range(n_a):
            axpy(w[t], gram[active[t]], a)
        gamma, event, sign = _entry_step(
            c, a, lam, positive, in_active, lam - alpha, steps
        )
        drop = np.int64(-1)
        for t in range(n_a):
            if w[t] != 0.0:
                g = -z[active[t]] / w[t]
                if 0.0 < g < gamma:
                    gamma, drop = g, t
        for t in range(n_a):
            z[active[t]] += gamma * w[t]
        axpy(-gamma, a, c)
        lam -= gamma
        if drop >= 0:
            z[active[drop]] = 0.0
            n_a = _drop(active, signs, n_a, drop, gram, L, in_active)
            if n_a <= 0:
                return n_a == 0
        elif event >= 0:
            if not cholesky_append(gram, L, active, n_a, event):
                return False
            active[n_a] = event
            signs[n_a] = sign
            in_active[event] = True
            n_a += 1
        else:
            return True
    return False
