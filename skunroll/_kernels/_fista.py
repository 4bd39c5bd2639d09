"""Batched ISTA / FISTA on a chunk of samples.

With atoms as rows of ``D`` (n_components, n_features), ``G = D D^T`` and
``B = X D^T``, the gradient of ``0.5 ||x - z D||^2`` for a chunk of codes ``Z``
is ``Z G - B`` (or ``(Z D - X) D^T``, whichever is cheaper); one iteration is
matrix products and a prox. A fixed number of iterations is the forward pass
of the unrolled encoder (``tol = 0``); with ``tol > 0`` the relative duality
gap of every sample is checked every ``check_every`` iterations, and a sample
leaves the batch once its own gap is below ``tol``.

References
----------
Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for linear
inverse problems", SIAM J. Imaging Sci. 2(1), 2009.
"""

import numpy as np
from numba import njit

from ._blas import copy_into
from ._gap import lasso_primal_dual, relative_gap
from ._priors import nonneg_soft_threshold, soft_threshold


@njit(nogil=True, cache=True)
def _prox_rows(V, thresh, positive, out):
    for i in range(V.shape[0]):
        if positive:
            nonneg_soft_threshold(V[i], thresh, out[i])
        else:
            soft_threshold(V[i], thresh, out[i])


@njit(nogil=True, cache=True)
def _relative_gaps(X, dictionary, Z, B, gram, alpha, positive, out):
    """Relative lasso duality gap of every row of a chunk, into ``out``."""
    corr = B - np.dot(Z, gram)
    res = np.empty(X.shape[1], dtype=X.dtype)
    for i in range(X.shape[0]):
        primal, gap = lasso_primal_dual(
            X[i], dictionary, Z[i], corr[i], alpha, positive, res
        )
        out[i] = relative_gap(primal, gap)


@njit(nogil=True, cache=True)
def _gradient(Y, X, B, dictionary, DT, gram, R, out):
    """Least-squares gradient ``Y G - B`` into ``out``, in the cheaper form.

    The Gram form costs ``2 p^2`` flops per sample, the explicit form
    ``(Y D - X) D^T`` costs ``4 p m``; the latter wins when ``p > 2 m``
    (``R`` is its (n, m) buffer, unused otherwise).
    """
    p, m = dictionary.shape
    if p > 2 * m:
        np.dot(Y, dictionary, R)
        R -= X
        np.dot(R, DT, out)
    else:
        np.dot(Y, gram, out)
        out -= B


@njit(nogil=True, cache=True)
def _fista_steps(X, B, dictionary, DT, gram, Z, Y, Z_old, V, R, coef, n_steps, t,
                 positive, accelerated):  # fmt: skip
    """``n_steps`` ISTA/FISTA iterations on the rows of ``Z``; returns ``t``."""
    for _ in range(n_steps):
        # gradient step from the extrapolated point, then the prox
        _gradient(Y, X, B, dictionary, DT, gram, R, V)
        V *= -coef[0]
        V += Y
        copy_into(Z, Z_old)
        _prox_rows(V, coef[1], positive, Z)
        if accelerated:
            t_new = 0.5 * (1.0 + np.sqrt(1.0 + 4.0 * t * t))
            coef[2] = (t - 1.0) / t_new
            c = coef[2]
            for i in range(Y.shape[0]):
                for j in range(Y.shape[1]):
                    Y[i, j] = Z[i, j] + c * (Z[i, j] - Z_old[i, j])
            t = t_new
        else:
            copy_into(Z, Y)
    return t


@njit(nogil=True, cache=True)
def fista_gram(
    X,
    dictionary,
    B,
    gram,
    Z,
    alpha,
    step,
    n_iter,
    tol,
    positive,
    accelerated,
    check_every,
):
    """Run ISTA (``accelerated=False``) or FISTA on the codes ``Z`` in place.

    ``Z`` holds the warm start on entry and the codes on exit. With ``tol > 0``
    a sample stops, and leaves the batch, at the first check where its own
    relative duality gap is at most ``tol``, so its code does not depend on the
    other samples of the chunk. Returns ``(n_iter_done, max_relative_gap)``
    (the gap is -1.0 when ``tol == 0``).
    """
    # scalars in the arrays' dtype, so float32 stays float32 throughout
    coef = np.empty(3, dtype=Z.dtype)
    coef[0] = step
    coef[1] = step * alpha
    DT = np.ascontiguousarray(dictionary.T)
    R = np.empty((Z.shape[0], dictionary.shape[1]), dtype=Z.dtype)
    if tol <= 0.0:
        _fista_steps(X, B, dictionary, DT, gram, Z, Z.copy(), Z.copy(),
                     np.empty_like(Z), R, coef, n_iter, 1.0, positive,
                     accelerated)  # fmt: skip
        return n_iter, -1.0
    rows = np.arange(Z.shape[0])
    Xa, Ba, Za = X.copy(), B.copy(), Z.copy()
    Ya, Za_old, V = Za.copy(), Za.copy(), np.empty_like(Za)
    gaps = np.empty(Z.shape[0])
    t = 1.0
    done = 0
    worst = 0.0
    while rows.shape[0] > 0:
        n_steps = min(check_every, n_iter - done)
        t = _fista_steps(Xa, Ba, dictionary, DT, gram, Za, Ya, Za_old, V,
                         R[: Za.shape[0]], coef, n_steps, t, positive,
                         accelerated)  # fmt: skip
        done += n_steps
        _relative_gaps(Xa, dictionary, Za, Ba, gram, alpha, positive, gaps)
        last = done >= n_iter
        keep = np.empty(rows.shape[0], dtype=np.bool_)
        for a in range(rows.shape[0]):
            keep[a] = gaps[a] > tol and not last
            if not keep[a]:
                copy_into(Za[a], Z[rows[a]])
                worst = max(worst, gaps[a])
        if not np.any(keep):
            break
        if not np.all(keep):
            rows = rows[keep]
            Xa, Ba, Za = Xa[keep], Ba[keep], Za[keep]
            Ya, Za_old, V = Ya[keep], Za_old[keep], V[: Za.shape[0]]
    return done, worst
