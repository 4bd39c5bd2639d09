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

from ._blas import (
    add_rows,
    argmax,
    axpy,
    backward_solve,
    cholesky_append,
    cholesky_delete,
    copy_into,
    forward_row,
)


@njit(nogil=True, cache=True, error_model="numpy")
def _entry_step(c, a, lam, positive, in_active, gamma, steps):
    """Smallest step at which an inactive correlation reaches ``+-lambda``.

    Along the path ``c_j - t a_j`` reaches ``+lambda`` at ``(lambda - c_j) /
    (1 - a_j)`` and ``-lambda`` at ``(lambda + c_j) / (1 + a_j)``. For
    ``|c_j| < lambda`` the first comes first exactly when ``c_j > lambda a_j``
    (cross-multiply), so one division per atom gives the candidate step, with
    sign ``s``: ``(lambda - s c_j) / (1 - s a_j)``. The first pass only
    stores candidates, so it vectorises; the winner is found after (the
    costly part of a kink was this scan, 11 cycles per atom with two
    divisions and the running minimum in one loop).
    """
    inf = np.inf
    for j in range(c.shape[0]):
        s = 1.0 if positive or c[j] > lam * a[j] else -1.0
        num = lam - s * c[j]
        den = 1.0 - s * a[j]
        g = num / den
        ok = (den > 1e-12) & (num > 0.0) & (~in_active[j])
        steps[j] = g if ok else inf
    best = gamma
    j_best = np.int64(-1)
    for j in range(c.shape[0]):
        if steps[j] < best:  # a rarely taken branch (numba's min does not vectorise)
            best = steps[j]
            j_best = j
    if j_best < 0:
        return gamma, -1, 1.0
    sign = 1.0 if positive or c[j_best] > lam * a[j_best] else -1.0
    return steps[j_best], j_best, sign


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
    u,
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

    The direction on the active set is ``w = G_AA^{-1} s = L^{-T} u`` with
    ``u = L^{-1} s`` kept up to date row by row (an entering atom appends
    one row to ``L`` and to ``u``); ``a = G_A w`` is formed four rows at a
    time. ``u`` and ``steps`` are work buffers (``steps`` is also the
    solve's scratch).
    """
    z[:] = 0.0
    copy_into(b, c)
    in_active[:] = False
    j0 = argmax(c, positive)
    lam = c[j0] if positive else abs(c[j0])
    if lam <= alpha:
        return True
    cholesky_append(gram, L, active, np.int64(0), j0)
    active[0] = j0
    signs[0] = 1.0 if c[j0] > 0.0 else -1.0
    in_active[j0] = True
    forward_row(L, np.int64(0), signs, u)
    n_a = np.int64(1)
    for _ in range(max_steps):
        backward_solve(L, n_a, u, steps, w)
        a[:] = 0.0
        add_rows(gram, active, w, n_a, 1.0, a)
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
            # the dropped atom leaves the factor of G_AA by Givens rotations;
            # the forward solve is redone from its row on (the rows above are
            # unchanged)
            z[active[drop]] = 0.0
            in_active[active[drop]] = False
            cholesky_delete(L, n_a, drop)
            for r in range(drop, n_a - 1):
                active[r] = active[r + 1]
                signs[r] = signs[r + 1]
            n_a -= 1
            if n_a == 0:
                return True
            for r in range(drop, n_a):
                forward_row(L, r, signs, u)
        elif event >= 0:
            if not cholesky_append(gram, L, active, n_a, event):
                return False
            active[n_a] = event
            signs[n_a] = sign
            in_active[event] = True
            forward_row(L, n_a, signs, u)
            n_a += 1
        else:
            return True
    return False
