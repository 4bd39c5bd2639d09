"""Exact lasso on the Gram matrix: working-set coordinate descent with an
active-set polish, stopped on the duality gap.

For one sample with ``b = D x`` (correlations) and ``G = D D^T``, the lasso
``min_z 0.5 ||x - z D||^2 + alpha ||z||_1`` is solved by

1. coordinate descent restricted to a small working set ``W`` (the current
   support plus the atoms that violate the optimality conditions most);
2. once the support is stable, an exact solve on it: with signs ``s`` the
   optimality conditions read ``G_SS z_S = b_S - alpha s``; when the solution
   keeps the signs and satisfies ``|b_k - G_kS z_S| <= alpha`` on ``W``, it is the
   exact minimiser on ``W`` (the feature-sign / active-set step);
3. the duality gap over all atoms: stop when it is below ``tol`` relative to
   the primal objective, otherwise enlarge ``W`` with the new violators.

The cost per sample is governed by the support size, not by the number of
atoms, which is what makes it fast for sparse codes.

References
----------
Lee, Battle, Raina & Ng, "Efficient sparse coding algorithms", NeurIPS 2006
(feature-sign search). Massias, Gramfort & Salmon, "Celer: a fast solver for
the lasso with dual extrapolation", ICML 2018 (working sets, duality gaps).
"""

import numpy as np
from numba import njit

from ._blas import axpy, cholesky_append, cholesky_solve, copy_into
from ._gap import lasso_primal_dual, relative_gap
from ._lars import lars_lasso_sample


@njit(nogil=True, cache=True)
def cholesky_solve_subset(gram, support, n_s, rhs, L, out):
    """Solve ``G[S, S] u = rhs`` by Cholesky; False if ``G[S, S]`` is singular."""
    for a in range(n_s):
        if not cholesky_append(gram, L, support, a, support[a]):
            return False
    cholesky_solve(L, n_s, rhs, out)
    return True


@njit(nogil=True, cache=True)
def _cd_update(z, j, corr, gram, alpha, positive, ws, n_w):
    """One coordinate update of ``z[j]``; ``corr`` kept exact on ``ws``."""
    gjj = gram[j, j]
    old = z[j]
    u = old + corr[j] / gjj
    thr = alpha / gjj
    if u > thr:
        new = u - thr
    elif u < -thr and not positive:
        new = u + thr
    else:
        new = 0.0
    delta = new - old
    if delta != 0.0:
        z[j] = new
        for c in range(n_w):
            k = ws[c]
            corr[k] -= delta * gram[j, k]
    return delta


@njit(nogil=True, cache=True)
def _polish(z, b, gram, alpha, positive, ws, n_w, corr, supp, rhs, u, L, cand):
    """Exact solve on the support of ``z`` within ``ws``; True if accepted."""
    n_s = np.int64(0)  # not a literal: no extra compile of the callees
    for a in range(n_w):
        j = ws[a]
        if z[j] != 0.0:
            supp[n_s] = j
            rhs[n_s] = b[j] - (alpha if z[j] > 0.0 else -alpha)
            n_s += 1
    if not cholesky_solve_subset(gram, supp, n_s, rhs, L, u):
        return False
    for a in range(n_s):
        if u[a] * z[supp[a]] <= 0.0:
            return False
    slack = alpha * (1.0 + 1e-10)
    for c in range(n_w):
        k = ws[c]
        s = b[k]
        for a in range(n_s):
            s -= u[a] * gram[supp[a], k]
        cand[c] = s
        if z[k] == 0.0 and (s > slack or (not positive and s < -slack)):
            return False
    for a in range(n_s):
        z[supp[a]] = u[a]
    for c in range(n_w):
        corr[ws[c]] = cand[c]
    return True


@njit(nogil=True, cache=True)
def _build_working_set(z, corr, alpha, positive, ws_size, ws, score):
    """Support of ``z`` plus the strongest violators, ``ws_size`` in all."""
    p = z.shape[0]
    n_w = np.int64(0)  # not a literal: no extra compile of the callees
    n_viol = 0
    for j in range(p):
        if z[j] != 0.0:
            ws[n_w] = j
            n_w += 1
            score[j] = -np.inf
        else:
            c = corr[j] if positive else abs(corr[j])
            score[j] = c - alpha
            if c > alpha:
                n_viol += 1
            else:
                score[j] = -np.inf
    n_add = max(ws_size - n_w, 1)
    if n_viol <= n_add:
        for j in range(p):
            if z[j] == 0.0 and score[j] > -np.inf:
                ws[n_w] = j
                n_w += 1
        return n_w
    return _append_top_k(score, n_add, ws, n_w)


@njit(nogil=True, cache=True)
def _append_top_k(score, k, ws, n_w):
    """Append the indices of the ``k`` largest scores to ``ws[n_w:]``.

    Insertion into a sorted window: O(p k) in the worst case, no allocation,
    and cheaper than a full sort for the small ``k`` of a working set.
    """
    n_top = 0
    for j in range(score.shape[0]):
        s = score[j]
        if n_top == k and s <= score[ws[n_w + k - 1]]:
            continue
        pos = min(n_top, k - 1)
        while pos > 0 and score[ws[n_w + pos - 1]] < s:
            ws[n_w + pos] = ws[n_w + pos - 1]
            pos -= 1
        ws[n_w + pos] = j
        n_top = min(n_top + 1, k)
    return n_w + n_top


@njit(nogil=True, cache=True)
def _correlations(b, gram, z, corr):
    """``corr = b - z G`` over the support of ``z``; returns the support size."""
    copy_into(b, corr)
    n_supp = 0
    for j in range(z.shape[0]):
        if z[j] != 0.0:
            axpy(-z[j], gram[j], corr)
            n_supp += 1
    return n_supp


@njit(nogil=True, cache=True)
def lasso_gram_sample(
    x,
    dictionary,
    b,
    gram,
    z,
    alpha,
    positive,
    max_iter,
    tol,
    corr,
    res,
    ws,
    score,
    supp,
    rhs,
    u,
    L,
    cand,
):
    """Solve the lasso for one sample in place of ``z`` (warm start).

    Returns ``(n_outer_iterations, relative_gap)``.
    """
    p = b.shape[0]
    n_supp = _correlations(b, gram, z, corr)
    ws_size = max(16, 2 * n_supp)
    cd_tol = 1e-4
    rel_gap = np.inf
    # coordinate-descent sweeps are budgeted against max_iter in total, so a
    # slowly converging sample (tiny alpha, ill-conditioned Gram) cannot run
    # 10,000 sweeps in each of max_iter outer iterations
    sweeps_left = 100 * max_iter
    n_stalled = 0
    for it in range(max_iter):
        primal, gap = lasso_primal_dual(x, dictionary, z, corr, alpha, positive, res)
        new_gap = relative_gap(primal, gap)
        if new_gap <= tol:
            return it, new_gap
        # a gap that no longer decreases is at the floor of the precision (an
        # alpha far below max |b|, e.g. alpha = 0 on an exactly fitting model)
        n_stalled = n_stalled + 1 if new_gap >= 0.99 * rel_gap else 0
        rel_gap = min(rel_gap, new_gap)
        if n_stalled >= 5:
            break
        n_w = _build_working_set(z, corr, alpha, positive, ws_size, ws, score)
        moved = False
        for _ in range(min(10000, sweeps_left)):
            sweeps_left -= 1
            max_delta = 0.0
            max_z = 0.0
            changed = False
            for a in range(n_w):
                j = ws[a]
                was_zero = z[j] == 0.0
                delta = _cd_update(z, j, corr, gram, alpha, positive, ws, n_w)
                moved = moved or delta != 0.0
                max_delta = max(max_delta, abs(delta))
                max_z = max(max_z, abs(z[j]))
                changed = changed or (was_zero != (z[j] == 0.0))
            if not changed and _polish(
                z, b, gram, alpha, positive, ws, n_w, corr, supp, rhs, u, L, cand
            ):
                break
            if max_delta <= cd_tol * max_z:
                break
        # refresh the correlations outside the working set (the polish may
        # have moved z even when coordinate descent did not)
        n_supp = _correlations(b, gram, z, corr)
        if not moved or sweeps_left <= 0:
            break  # stagnation (the gap is at the floor of the precision) or budget
        cd_tol *= 0.1
        ws_size = min(p, max(2 * ws_size, 2 * n_supp))
    primal, gap = lasso_primal_dual(x, dictionary, z, corr, alpha, positive, res)
    return max_iter, relative_gap(primal, gap)


@njit(nogil=True, cache=True)
def _all_zero(z):
    for j in range(z.shape[0]):
        if z[j] != 0.0:
            return False
    return True


@njit(nogil=True, cache=True)
def lasso_gram(X, dictionary, B, gram, Z, alpha, positive, max_iter, tol):
    """Exact lasso for every row of a chunk; ``Z`` is the warm start, in place.

    Rows of ``Z`` that are all zero (a cold start) are first solved by the
    homotopy (:func:`lars_lasso_sample`); the working-set coordinate descent
    then only runs where the duality gap is still above ``tol`` (or from a
    non-zero warm start). Returns ``(max_outer_iterations, max_relative_gap)``.
    """
    n_samples, p = B.shape
    n_features = X.shape[1]
    dtype = B.dtype
    corr = np.empty(p, dtype=dtype)
    res = np.empty(n_features, dtype=dtype)
    ws = np.empty(p, dtype=np.int64)
    score = np.empty(p, dtype=dtype)
    supp = np.empty(p, dtype=np.int64)
    rhs = np.empty(p, dtype=dtype)
    u = np.empty(p, dtype=dtype)
    cand = np.empty(p, dtype=dtype)
    v = np.empty(p, dtype=dtype)
    in_active = np.empty(p, dtype=np.bool_)
    L = np.empty((p, p), dtype=dtype)
    worst_it = 0
    worst_gap = 0.0
    for i in range(n_samples):
        z = Z[i]
        if _all_zero(z):
            lars_lasso_sample(
                B[i],
                gram,
                alpha,
                positive,
                8 * p,
                z,
                corr,
                cand,
                u,
                v,
                rhs,
                supp,
                in_active,
                L,
                score,
            )
            primal, gap = lasso_primal_dual(
                X[i], dictionary, z, corr, alpha, positive, res
            )
            rel_gap = relative_gap(primal, gap)
            if rel_gap <= tol:
                worst_gap = max(worst_gap, rel_gap)
                continue
        n_it, gap = lasso_gram_sample(
            X[i],
            dictionary,
            B[i],
            gram,
            z,
            alpha,
            positive,
            max_iter,
            tol,
            corr,
            res,
            ws,
            score,
            supp,
            rhs,
            u,
            L,
            cand,
        )
        worst_it = max(worst_it, n_it)
        worst_gap = max(worst_gap, gap)
    return worst_it, worst_gap
