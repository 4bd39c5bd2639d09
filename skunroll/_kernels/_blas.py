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


@njit(nogil=True, cache=True)
def cholesky_delete(L, n, t):
    """Remove row and column ``t`` of ``G[S, S]`` from its ``n x n`` factor.

    Rows below ``t`` move up one; they then reach one column past the
    diagonal, which Givens rotations of adjacent columns zero (rotating
    columns keeps ``L L^T``). ``O((n - t) n)``, where refactoring the trailing
    rows costs ``O(n^3)``.
    """
    for r in range(t, n - 1):
        for c in range(r + 2):
            L[r, c] = L[r + 1, c]
    for c in range(t, n - 1):
        a = L[c, c]
        b = L[c, c + 1]
        h = np.sqrt(a * a + b * b)
        cs = a / h
        sn = b / h
        L[c, c] = h
        L[c, c + 1] = 0.0
        for r in range(c + 1, n - 1):
            x = L[r, c]
            y = L[r, c + 1]
            L[r, c] = cs * x + sn * y
            L[r, c + 1] = cs * y - sn * x


@njit(nogil=True, cache=True)
def add_rows(M, rows, coef, n, scale, out):
    """``out += scale * sum_t coef[t] * M[rows[t]]`` over ``t < n``.

    Four rows per pass over ``out``: a quarter of the loads and stores of
    ``out`` that one ``axpy`` per row costs (twice as fast for 4 to 32 rows of
    256 to 1024 entries). The homotopy's direction ``G_A w`` and OMP's
    correlations ``b - G_S gamma`` are this product.
    """
    p = out.shape[0]
    r = n % 4
    for t in range(r):
        g0 = M[rows[t]]
        c0 = scale * coef[t]
        for j in range(p):
            out[j] += c0 * g0[j]
    for t in range(r, n, 4):
        g0, g1, g2, g3 = M[rows[t]], M[rows[t + 1]], M[rows[t + 2]], M[rows[t + 3]]
        c0, c1 = scale * coef[t], scale * coef[t + 1]
        c2, c3 = scale * coef[t + 2], scale * coef[t + 3]
        for j in range(p):
            out[j] += c0 * g0[j] + c1 * g1[j] + c2 * g2[j] + c3 * g3[j]


@njit(nogil=True, cache=True)
def forward_row(L, k, rhs, u):
    """Row ``k`` of the forward solve ``L u = rhs``: ``u[:k]`` already solved."""
    s = rhs[k]
    for c in range(k):
        s -= L[k, c] * u[c]
    u[k] = s / L[k, k]


@njit(nogil=True, cache=True)
def backward_solve(L, k, u, tmp, out):
    """Solve ``L^T out = u`` with the leading ``k x k`` lower factor of ``L``.

    Column by column (``tmp -= out[a] L[a, :a]``): contiguous rows of ``L``
    and no dependency chain, so the inner loop vectorises. ``tmp`` is a work
    buffer.
    """
    for a in range(k):
        tmp[a] = u[a]
    for a in range(k - 1, -1, -1):
        wa = tmp[a] / L[a, a]
        out[a] = wa
        for c in range(a):
            tmp[c] -= wa * L[a, c]


@njit(nogil=True, cache=True)
def argmax(v, positive):
    """Index of the largest ``v`` (``positive``) or ``|v|``, the first on ties.

    A compare with the running winner and a rarely taken branch: 1 cycle per
    entry, faster than a reduction followed by a lookup (numba's ``max`` of
    floats does not vectorise).
    """
    j0 = np.int64(0)
    for j in range(v.shape[0]):
        if (v[j] if positive else abs(v[j])) > (v[j0] if positive else abs(v[j0])):
            j0 = j
    return j0
