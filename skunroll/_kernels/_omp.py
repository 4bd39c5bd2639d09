"""Batched orthogonal matching pursuit on the Gram matrix (Cholesky updates).

For one sample with ``b = D x`` and ``G = D D^T``: pick the atom most
correlated with the residual, extend the Cholesky factor of ``G[S, S]`` by one
row, solve ``G[S, S] gamma = b[S]`` by two triangular solves, and update the
correlations ``b - G[:, S] gamma``. The squared residual norm is
``||x||^2 - b[S] . gamma``.

References
----------
Rubinstein, Zibulevsky & Elad, "Efficient implementation of the K-SVD
algorithm using batch orthogonal matching pursuit", Technion CS-2008-08.
"""

import numpy as np
from numba import njit

from ._blas import add_rows, argmax, backward_solve, cholesky_append, forward_row


@njit(nogil=True, cache=True)
def omp_gram_sample(
    b, gram, x_norm2, n_nonzero, tol, z, corr, L, support, rhs, u, gamma, tmp
):
    """OMP for one sample; writes the code into ``z`` (zeroed first).

    Stops after ``n_nonzero`` atoms, when the squared residual norm is at most
    ``tol`` (if ``tol >= 0``), or when the next atom is linearly dependent on
    the selected ones. Returns the number of selected atoms.

    ``u = L^{-1} b_S`` grows by one entry per atom; ``gamma = L^{-T} u``; the
    correlations ``b - G_S gamma`` are formed four rows at a time.
    """
    z[:] = 0.0
    k = np.int64(0)  # not a literal: no extra compile of the callees
    positive = np.bool_(False)  # not a literal: argmax's one signature
    j = argmax(b, positive)
    while k < n_nonzero:
        if k > 0:
            j = argmax(corr, positive)
            if corr[j] == 0.0:
                break
        elif b[j] == 0.0:
            break
        if not cholesky_append(gram, L, support, k, j):
            break
        support[k] = j
        rhs[k] = b[j]
        forward_row(L, k, rhs, u)
        k += 1
        backward_solve(L, k, u, tmp, gamma)
        if tol >= 0.0:
            res2 = x_norm2
            for a in range(k):
                res2 -= rhs[a] * gamma[a]
            if res2 <= tol:
                break
        if k == n_nonzero:
            break  # the correlations are only needed to pick a next atom
        for f in range(b.shape[0]):
            corr[f] = b[f]
        add_rows(gram, support, gamma, k, -1.0, corr)
    for a in range(k):
        z[support[a]] = gamma[a]
    return k


@njit(nogil=True, cache=True)
def omp_gram(B, gram, x_norm2, n_nonzero, tol, Z):
    """OMP for every row of a chunk; returns the smallest support size reached."""
    n_samples, p = B.shape
    dtype = B.dtype
    corr = np.empty(p, dtype=dtype)
    rhs = np.empty(p, dtype=dtype)
    u = np.empty(p, dtype=dtype)
    gamma = np.empty(p, dtype=dtype)
    tmp = np.empty(p, dtype=dtype)
    support = np.empty(p, dtype=np.int64)
    k_max = min(n_nonzero, p)
    L = np.zeros((k_max + 1, k_max + 1), dtype=dtype)
    fewest = k_max
    for i in range(n_samples):
        k = omp_gram_sample(
            B[i], gram, x_norm2[i], k_max, tol, Z[i], corr, L, support, rhs, u,
            gamma, tmp,
        )  # fmt: skip
        fewest = min(fewest, k)
    return fewest
