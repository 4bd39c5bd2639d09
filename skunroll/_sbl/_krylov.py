"""Block conjugate gradients with a Python operator, and stochastic Lanczos
quadrature from the CG coefficients.

Shared by :class:`skunroll.SparseBayesianLearning` (CoFEM on scipy sparse
matrices and ``LinearOperator`` s) and :class:`skunroll.ClusteredMultiTaskSBL`
(every design kind, one system per task and cluster). The per-row update is
the numba kernel :func:`skunroll._kernels._cg.cg_rows_step`; the products are
done by the caller's ``apply``, which may differ from row to row (each row
is a right-hand side of its own system).

References
----------
Golub & Meurant, "Matrices, moments and quadrature with applications",
Princeton University Press, 2010 (Lanczos from CG, Gauss quadrature).
Ubaru, Chen & Saad, "Fast estimation of tr(f(A)) via stochastic Lanczos
quadrature", SIAM J. Matrix Anal. Appl. 38(4), 2017.
"""

import numpy as np
import scipy.linalg

from .._kernels._cg import BROKEN, RUNNING, cg_rows_start, cg_rows_step


def block_cg(apply, B, X, dinv, tol, max_iter, record=False):
    """Block preconditioned CG on the rows of ``X`` (warm start on entry,
    solutions on exit): row ``j`` solves ``A_j x_j = b_j``.

    ``apply(P, rows)`` returns the rows ``A_{rows[k]} P[k]`` (``rows`` are
    the original indices of the rows of ``P``, which shrinks as rows
    converge); ``dinv`` is the inverse of a Jacobi preconditioner shared by
    all rows. A row stops once ``||r|| <= tol ||b||`` or after a breakdown.

    Returns ``(n_iter, worst)`` (iterations run, largest final ``||r|| /
    ||b||``, ``inf`` after a breakdown) and, with ``record=True``, also
    ``(a, b, length)``: the CG step sizes ``a[j, :length[j]]`` and the
    ratios ``b[j, :length[j] - 1]`` of every row, from which
    :func:`lanczos_tridiagonal` rebuilds the Lanczos matrix.
    """
    m = B.shape[0]
    rows = np.arange(m)
    R = B - apply(X, rows)
    P = np.empty_like(R)
    rz = np.empty(m)
    bnorm2 = np.empty(m)
    cg_rows_start(B, R, dinv, P, rz, bnorm2)
    status = np.zeros(m, dtype=np.int8)
    status[np.einsum("ij,ij->i", R, R) <= tol**2 * bnorm2] = 1
    if record:
        hist_a = np.zeros((m, max_iter))
        hist_b = np.zeros((m, max_iter))
        length = np.zeros(m, dtype=np.int64)
    Xa = X.copy()
    worst, n_iter = 0.0, 0
    while True:
        keep = status == RUNNING
        stop = not keep.any() or n_iter >= max_iter
        done = np.ones(rows.shape[0], bool) if stop else ~keep
        if done.any():
            X[rows[done]] = Xa[done]
            ratio = np.sqrt(
                np.einsum("ij,ij->i", R[done], R[done])
                / np.maximum(bnorm2[done], 1e-300)
            )
            ratio[status[done] == BROKEN] = np.inf
            worst = max(worst, float(ratio.max()))
        if done.all():
            break
        if not keep.all():
            rows, Xa, R, P = rows[keep], Xa[keep], R[keep], P[keep]
            rz, bnorm2, status = rz[keep], bnorm2[keep], status[keep]
        Q = apply(P, rows)
        if record:
            pq = np.einsum("ij,ij->i", P, Q).astype(np.float64)
            rz_old = rz.copy()
        cg_rows_step(P, Q, Xa, R, dinv, rz, bnorm2, tol**2, status)
        if record:
            ok = status != BROKEN
            hist_a[rows[ok], n_iter] = rz_old[ok] / pq[ok]
            length[rows[ok]] = n_iter + 1
            cont = status == RUNNING
            hist_b[rows[cont], n_iter] = rz[cont] / rz_old[cont]
        n_iter += 1
    if record:
        return n_iter, worst, (hist_a, hist_b, length)
    return n_iter, worst


def lanczos_tridiagonal(a, b):
    """Diagonal and off-diagonal of the Lanczos matrix ``T`` of the
    (preconditioned) operator from the CG step sizes ``a`` (``m``) and ratios
    ``b`` (``m - 1``): ``T_00 = 1 / a_0``, ``T_jj = 1 / a_j + b_{j-1} /
    a_{j-1}``, ``T_{j,j+1} = sqrt(b_j) / a_j``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    diag = 1.0 / a
    diag[1:] += b / a[:-1]
    return diag, np.sqrt(b) / a[:-1]


def lanczos_log_quadrature(a, b, length):
    """``e_1^T log(T_j) e_1`` for every row ``j`` (Gauss quadrature of
    ``v^T log(A) v / ||v||^2`` with ``v`` the CG start residual, preconditioned:
    see :func:`block_cg`); 0 for a row with no step."""
    out = np.zeros(len(length))
    for j, m in enumerate(length):
        if m == 0:
            continue
        diag, off = lanczos_tridiagonal(a[j, :m], b[j, : m - 1])
        theta, vecs = scipy.linalg.eigh_tridiagonal(diag, off)
        theta = np.maximum(theta, np.finfo(np.float64).tiny)
        out[j] = float(np.sum(vecs[0] ** 2 * np.log(theta)))
    return out
