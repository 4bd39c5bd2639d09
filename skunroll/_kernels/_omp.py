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

from ._blas import axpy, cholesky_append, cholesky_solve, copy_into


@njit(nogil=True, cache=True)
def _argmax_abs(v):
    """Index of the largest ``|v|``: a vectorisable max, then a lookup."""
    best = 0.0
    for j in range(v.shape[0]):
        best = max(best, abs(v[j]))
    for j in range(v.shape[0]):
        if abs(v[j]) == best:
            return j
    return 0


@njit(nogil=True, cache=True)
def omp_gram_sample(b, gram, x_norm2, n_nonzero, tol, z, corr, L, support, rhs, gamma):
    """OMP for one sample; writes the code into ``z`` (zeroed first).

    Stops after ``n_nonzero`` atoms, when the squared residual norm is at most
    ``tol`` (if ``tol >= 0``), or when the next atom is linearly dependent on
    the selected ones. Returns the number of selected atoms.
    """
    z[:] = 0.0
    copy_into(b, corr)
    k = np.int64(0)  # not a literal: no extra compile of the callees
    while k < n_nonzero:
        j = _argmax_abs(corr)
        if corr[j] == 0.0 or not cholesky_append(gram, L, support, k, j):
            break
        support[k] = j
        rhs[k] = b[j]
        k += 1
        cholesky_solve(L, k, rhs, gamma)
        if tol >= 0.0:
            res2 = x_norm2
            for a in range(k):
                res2 -= rhs[a] * gamma[a]
            if res2 <= tol:
                break
        if k == n_nonzero:
            break  # the correlations are only needed to pick a next atom
        copy_into(b, corr)
        for a in range(k):
            axpy(-gamma[a], gram[support[a]], corr)
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
    gamma = np.empty(p, dtype=dtype)
    support = np.empty(p, dtype=np.int64)
    k_max = min(n_nonzero, p)
    L = np.zeros((k_max + 1, k_max + 1), dtype=dtype)
    fewest = k_max
    for i in range(n_samples):
        k = omp_gram_sample(
            B[i], gram, x_norm2[i], k_max, tol, Z[i], corr, L, support, rhs, gamma
        )
        fewest = min(fewest, k)
    return fewest
