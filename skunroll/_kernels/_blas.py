"""Level-1 helpers written as loops, so the callers allocate nothing."""

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def copy_into(src, out):
    """``out[...] = src`` for arrays of one shape. numba's slice assignment
    from an array compiles a formatted shape-mismatch message (seconds of
    compile time per process and more in every kernel that links it)."""
    for idx in np.ndindex(out.shape):
        out[idx] = src[idx]


@njit(nogil=True, cache=True)
def axpy(a, x, y):
    """``y += a * x`` in place."""
    for i in range(y.shape[0]):
        y[i] += a * x[i]


@njit(nogil=True, cache=True)
def cholesky_solve(L, k, rhs, out):
    """Solve ``L L^T out = rhs`` with the leading ``k x k`` lower factor of ``L``."""
    for a in range(k):
        s = rhs[a]
        for c in range(a):
            s -= L[a, c] * out[c]
        out[a] = s / L[a, a]
    for a in range(k - 1, -1, -1):
        s = out[a]
        for c in range(a + 1, k):
            s -= L[c, a] * out[c]
        out[a] = s / L[a, a]


@njit(nogil=True, cache=True)
def cholesky_append(gram, L, support, k, j):
    """Append atom ``j`` as row ``k`` of the Cholesky factor of ``G[S, S]``.

    ``support[:k]`` are the atoms already factored. Returns False when ``j`` is
    numerically dependent on them (the pivot is below 1e-7 of ``G[j, j]``).
    """
    for a in range(k):
        s = gram[support[a], j]
        for c in range(a):
            s -= L[a, c] * L[k, c]
        L[k, a] = s / L[a, a]
    diag = gram[j, j]
    for c in range(k):
        diag -= L[k, c] * L[k, c]
    if diag <= 1e-7 * gram[j, j]:
        return False
    L[k, k] = np.sqrt(diag)
    return True
