"""Block preconditioned conjugate gradients for ``(beta Phi^T Phi + diag lam) x = b``.

The right-hand sides are the rows of ``B`` (one contiguous vector each); every
row runs its own CG recursion, and the rows share the products with ``Phi``,
which are matrix-matrix products over the rows still running. A row leaves the
block once its residual satisfies ``||r|| <= tol ||b||``.

:func:`cg_rows_step` is the per-iteration update (everything but the operator
product), used both by :func:`cg_dense` here and by the Python driver of
``skunroll._sbl.sbl`` for scipy sparse matrices and ``LinearOperator`` s, whose
products cannot run inside numba.

References
----------
Hestenes & Stiefel, "Methods of conjugate gradients for solving linear
systems", J. Res. Nat. Bur. Standards 49(6), 1952.
"""

import numpy as np
from numba import njit

from ._blas import copy_into

RUNNING = 0
CONVERGED = 1
BROKEN = 2
"""Status of a row: still iterating, residual below tolerance, or a breakdown
(a non-positive or non-finite curvature ``p^T A p``; the iterate is kept)."""


@njit(nogil=True, cache=True)
def _dot(a, b):
    s = 0.0
    for i in range(a.shape[0]):
        s += a[i] * b[i]
    return s


@njit(nogil=True, cache=True)
def cg_rows_start(B, R, dinv, P, rz, bnorm2):
    """Given residuals ``R = B - A X``, set ``P = M^-1 R``, ``rz`` and ``||b||^2``."""
    for j in range(R.shape[0]):
        for i in range(R.shape[1]):
            P[j, i] = dinv[i] * R[j, i]
        rz[j] = _dot(R[j], P[j])
        bnorm2[j] = _dot(B[j], B[j])


@njit(nogil=True, cache=True)
def cg_rows_step(P, Q, X, R, dinv, rz, bnorm2, tol2, status):
    """One CG iteration on every row, given ``Q = A P``; updates in place.

    ``status[j]`` becomes ``CONVERGED`` when ``||r_j||^2 <= tol2 ||b_j||^2``
    and ``BROKEN`` on a breakdown. Returns the number of rows still running.
    """
    running = 0
    for j in range(P.shape[0]):
        if status[j] != RUNNING:
            continue
        pq = _dot(P[j], Q[j])
        if not (pq > 0.0 and np.isfinite(pq)):
            status[j] = BROKEN
            continue
        a = rz[j] / pq
        rr = 0.0
        for i in range(P.shape[1]):
            X[j, i] += a * P[j, i]
            R[j, i] -= a * Q[j, i]
            rr += R[j, i] * R[j, i]
        if rr <= tol2 * bnorm2[j]:
            status[j] = CONVERGED
            continue
        rz_new = 0.0
        for i in range(P.shape[1]):
            rz_new += R[j, i] * R[j, i] * dinv[i]
        if not (rz_new > 0.0 and np.isfinite(rz_new)):
            status[j] = BROKEN
            continue
        b = rz_new / rz[j]
        rz[j] = rz_new
        for i in range(P.shape[1]):
            P[j, i] = dinv[i] * R[j, i] + b * P[j, i]
        running += 1
    return running


@njit(nogil=True, cache=True)
def _apply(P, Phi, PhiT, gram, lam, beta, use_gram, U, Q):
    """``Q = beta P Phi^T Phi + P diag(lam)`` (or with the Gram matrix)."""
    if use_gram:
        np.dot(P, gram, Q)
    else:
        np.dot(P, PhiT, U)
        np.dot(U, Phi, Q)
    for j in range(Q.shape[0]):
        for i in range(Q.shape[1]):
            Q[j, i] = beta * Q[j, i] + lam[i] * P[j, i]


@njit(nogil=True, cache=True)
def cg_dense(Phi, PhiT, gram, use_gram, lam, beta, dinv, B, X, tol, max_iter):
    """Block PCG on the rows of ``X`` (warm start on entry, solutions on exit).

    Solves ``X (beta Phi^T Phi + diag lam) = B`` row by row, with ``Phi`` of
    shape (n, p) and its transpose ``PhiT`` (C-contiguous), or, when
    ``use_gram``, the Gram matrix ``gram = Phi^T Phi`` (p, p). ``dinv`` is the
    inverse of the Jacobi preconditioner. Rows that converge leave the block,
    so the products shrink as they do. Returns ``(n_iter, worst)``: iterations
    run and the largest final ``||r|| / ||b||`` of any row (``inf`` after a
    breakdown).
    """
    m, p = X.shape
    dtype = X.dtype
    n = Phi.shape[0]
    # the running rows are kept compacted at the front of the work arrays, in
    # their original order (plain loops, no fancy indexing: cheaper to compile)
    rows = np.empty(m, dtype=np.int64)
    Xa = np.empty((m, p), dtype=dtype)
    for j in range(m):
        rows[j] = j
        for i in range(p):
            Xa[j, i] = X[j, i]
    Q = np.empty((m, p), dtype=dtype)
    U = np.empty((m, n), dtype=dtype)
    _apply(Xa, Phi, PhiT, gram, lam, beta, use_gram, U, Q)
    R = np.empty((m, p), dtype=dtype)
    for j in range(m):
        for i in range(p):
            R[j, i] = B[j, i] - Q[j, i]
    P = np.empty((m, p), dtype=dtype)
    rz = np.empty(m, dtype=np.float64)
    bnorm2 = np.empty(m, dtype=np.float64)
    cg_rows_start(B, R, dinv, P, rz, bnorm2)
    status = np.zeros(m, dtype=np.int8)
    for j in range(m):
        if _dot(R[j], R[j]) <= tol * tol * bnorm2[j]:
            status[j] = CONVERGED
    worst = 0.0
    n_iter = 0
    k = m
    while True:
        n_keep = 0
        for a in range(k):
            if status[a] != RUNNING:
                copy_into(Xa[a], X[rows[a]])
                ratio = np.sqrt(_dot(R[a], R[a]) / max(bnorm2[a], 1e-300))
                if status[a] == BROKEN:
                    ratio = np.inf
                worst = max(worst, ratio)
            else:
                n_keep += 1
        if n_keep == 0 or n_iter >= max_iter:
            for a in range(k):
                if status[a] == RUNNING:
                    copy_into(Xa[a], X[rows[a]])
                    ratio = np.sqrt(_dot(R[a], R[a]) / max(bnorm2[a], 1e-300))
                    worst = max(worst, ratio)
            break
        if n_keep < k:
            w = 0
            for a in range(k):
                if status[a] != RUNNING:
                    continue
                if w != a:
                    rows[w] = rows[a]
                    for i in range(p):
                        Xa[w, i] = Xa[a, i]
                        R[w, i] = R[a, i]
                        P[w, i] = P[a, i]
                    rz[w] = rz[a]
                    bnorm2[w] = bnorm2[a]
                    status[w] = status[a]
                w += 1
            k = w
        _apply(P[:k], Phi, PhiT, gram, lam, beta, use_gram, U[:k], Q[:k])
        cg_rows_step(P[:k], Q[:k], Xa[:k], R[:k], dinv, rz[:k], bnorm2[:k],
                     tol * tol, status[:k])  # fmt: skip
        n_iter += 1
    return n_iter, worst
