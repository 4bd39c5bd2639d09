"""Numba kernels of probabilistic unrolling for factor analysis.

A chunk of samples, each with its own observed rows, shares the loadings
``W`` (p, q). Sample ``i``'s posterior precision is ``A_i = W^T D_i W + I``
with ``D_i = diag(mask_i / psi)``; its right-hand sides are the ``r``
consecutive columns ``i r, ..., i r + r - 1`` of a (q, N) array (the mean's
right-hand side, then the probes). ``d`` (p, n_chunk) holds ``mask_i /
psi``, and ``D`` (p, N) the same with every sample's column repeated for
each of its right-hand sides (``np.repeat(d, r, axis=1)``: the loops over
the (p, N) arrays then run along contiguous rows and vectorise). The matrix
products are BLAS calls (``np.dot``) over the whole chunk.

- ``cg_forward``: ``n_steps`` conjugate-gradient steps from zero on every
  column, recording what the backward pass needs;
- ``pcg_forward``: ``n_steps`` *preconditioned* conjugate-gradient steps
  from zero, the preconditioner a (q, q) matrix shared by the chunk (the
  inverse of an approximation of every ``A_i``), forward only; also returns
  ``W X`` accumulated from the steps' products;
- ``output_terms``: the element-wise terms of the surrogate and of the
  output gradient in one pass over the chunk;
- ``cg_backward``: the hand-written reverse pass of those steps: the adjoint
  of the right-hand sides, and the gradients with respect to ``W`` and
  ``d`` through the operator;
- ``exact_chunk``: exact posterior means, covariances and marginal
  log-likelihoods by a Cholesky factorisation per sample, the precision
  formed from the complement of the observed rows when fewer are missing.
"""

import numpy as np
from numba import njit

LOG_2PI = np.log(2.0 * np.pi)


@njit(nogil=True, cache=True)
def _scale_columns(Y, D, out):
    """``out = Y * D`` (``D`` the per-column weights, see ``pcg_forward``)."""
    p, N = Y.shape
    for j in range(p):
        for c in range(N):
            out[j, c] = Y[j, c] * D[j, c]


@njit(nogil=True, cache=True)
def _col_dot(a, b, out):
    """``out[c] = sum_k a[k, c] b[k, c]``, row by row (contiguous, so the
    inner loop vectorises)."""
    q, N = a.shape
    out[:] = 0.0
    for k in range(q):
        for c in range(N):
            out[c] += a[k, c] * b[k, c]


@njit(nogil=True, cache=True)
def cg_forward(W, Wt, D, B, n_steps, rel_tol, record, P_h, V_h, Y_h, R_h, coef):
    """``n_steps`` CG steps on ``A_i x = b`` for every column of ``B``.

    Returns the solutions (q, N). With ``record``, fills per step ``t``:
    ``P_h[t]`` the search direction, ``V_h[t] = A P_h[t]``, ``Y_h[t] = W
    P_h[t]`` (p, N), ``R_h[t]`` the residual after the step, and ``coef``
    (4, n_steps + 1, N): alpha, beta, rho (squared residual norms, rho[0]
    of the start) and gamma (``p^T A p``). A column whose squared residual
    norm fell to ``rel_tol`` times its start (the dtype's precision) takes
    no more steps.
    """
    q, N = B.shape
    p = W.shape[0]
    X = np.zeros((q, N), dtype=B.dtype)
    R = B.copy()
    P = B.copy()
    rho = np.empty(N, dtype=np.float64)
    rho_new = np.empty(N, dtype=np.float64)
    gamma = np.empty(N, dtype=np.float64)
    Z = np.empty((p, N), dtype=B.dtype)
    _col_dot(R, R, rho)
    floor = rho * rel_tol
    if record:
        coef[2, 0, :] = rho
    for t in range(n_steps):
        Y = np.dot(W, P)
        _scale_columns(Y, D, Z)
        V = np.dot(Wt, Z)
        V += P
        _col_dot(P, V, gamma)
        for c in range(N):
            taken = rho[c] > floor[c] and gamma[c] > 0
            alpha = rho[c] / gamma[c] if taken else 0.0
            for k in range(q):
                X[k, c] += alpha * P[k, c]
                R[k, c] -= alpha * V[k, c]
            if record:
                coef[0, t, c] = alpha
                coef[3, t, c] = gamma[c]
        _col_dot(R, R, rho_new)
        if record:
            P_h[t] = P
            V_h[t] = V
            Y_h[t] = Y
            R_h[t] = R
            coef[2, t + 1, :] = rho_new
        for c in range(N):
            taken = rho[c] > floor[c] and gamma[c] > 0
            beta = rho_new[c] / rho[c] if taken else 0.0
            if record:
                coef[1, t, c] = beta
            for k in range(q):
                P[k, c] = R[k, c] + beta * P[k, c]
            rho[c] = rho_new[c]
    return X


@njit(nogil=True, cache=True)
def pcg_forward(W, Wt, D, B, Pinv, n_steps, rel_tol):
    """``n_steps`` preconditioned CG steps on ``A_i x = b`` for every column
    of ``B``, from zero, with the symmetric positive definite (q, q)
    ``Pinv`` (an approximation of ``A_i^{-1}`` shared by the chunk).
    ``D`` (p, N) is ``d`` with every sample's column repeated for each of
    its right-hand sides (``np.repeat(d, r, axis=1)``), so that the loops
    over the (p, N) arrays run along contiguous rows.

    Returns the solutions ``X`` (q, N) and ``U = W X`` (p, N), accumulated
    from the steps' products ``W p_t`` (no extra product). A column whose
    ``r^T Pinv r`` fell to ``rel_tol`` times its start takes no more steps.
    """
    q, N = B.shape
    p = W.shape[0]
    X = np.zeros((q, N), dtype=B.dtype)
    U = np.zeros((p, N), dtype=B.dtype)
    R = B.copy()
    Zr = np.dot(Pinv, R)
    P = Zr.copy()
    rho = np.empty(N, dtype=np.float64)
    rho_new = np.empty(N, dtype=np.float64)
    gamma = np.empty(N, dtype=np.float64)
    alpha = np.empty(N, dtype=np.float64)
    beta = np.empty(N, dtype=np.float64)
    Z = np.empty((p, N), dtype=B.dtype)
    _col_dot(R, Zr, rho)
    floor = rho * rel_tol
    for t in range(n_steps):
        Y = np.dot(W, P)
        # Z = diag(d) Y and gamma = p^T A p = |p|^2 + sum_j d_j (W p)_j^2 in
        # one pass: the last step needs no product with W^T (no residual
        # after it)
        _col_dot(P, P, gamma)
        for j in range(p):
            for c in range(N):
                z = Y[j, c] * D[j, c]
                Z[j, c] = z
                gamma[c] += Y[j, c] * z
        for c in range(N):
            taken = rho[c] > floor[c] and gamma[c] > 0
            alpha[c] = rho[c] / gamma[c] if taken else 0.0
        for k in range(q):
            for c in range(N):
                X[k, c] += alpha[c] * P[k, c]
        for j in range(p):
            for c in range(N):
                U[j, c] += alpha[c] * Y[j, c]
        if t == n_steps - 1:
            break
        V = np.dot(Wt, Z)
        for k in range(q):
            for c in range(N):
                R[k, c] -= alpha[c] * (V[k, c] + P[k, c])
        Zr = np.dot(Pinv, R)
        _col_dot(R, Zr, rho_new)
        for c in range(N):
            taken = rho[c] > floor[c] and gamma[c] > 0
            beta[c] = rho_new[c] / rho[c] if taken else 0.0
            rho[c] = rho_new[c] if taken else 0.0
        for k in range(q):
            for c in range(N):
                P[k, c] = Zr[k, c] + beta[c] * P[k, c]
    return X, U


@njit(nogil=True, cache=True)
def output_terms(Xt, M, U, d, inv_psi, r, G, g_m, g_log_psi, n_observed):
    """The solver outputs' element-wise terms of a chunk in one pass.

    ``U = W X`` (p, N) holds ``W mu_i`` in column ``i r`` and ``W sigma_ik``
    in columns ``i r + k``. Fills ``G`` (p, N, dtype of ``U``) with
    ``diag(1 / psi) e_i`` (``e_i`` the residual at the mean on the observed
    rows) in the mean's columns and ``-diag(d_i) W sigma_ik / K`` in the
    probes', so that the output gradient of ``W`` is ``G X^T``; adds to
    ``g_m`` and ``g_log_psi`` (float64) their output gradients, less the
    term ``-M.sum(0) / 2`` of ``g_log_psi``, and to ``n_observed`` the
    column sums of the mask ``M``; returns ``(sum_i e_i^T
    diag(1 / psi) e_i, sum_ik sigma_ik^T W^T D_i W sigma_ik)``, the data
    and the probes' quadratic terms of the surrogate (float64 sums).
    """
    n, p = Xt.shape
    K = r - 1
    quad_e = 0.0
    quad_probe = 0.0
    for j in range(p):
        w = inv_psi[j]
        se = 0.0
        se2 = 0.0
        sp = 0.0
        count = 0.0
        for i in range(n):
            c = i * r
            count += M[i, j]
            e = (Xt[i, j] - U[j, c]) * M[i, j]
            de = e * w
            G[j, c] = de
            se += de
            se2 += e * de
            dji = d[j, i]
            for k in range(1, r):
                ws = U[j, c + k]
                dws = ws * dji
                G[j, c + k] = -dws / K
                sp += ws * dws
        g_m[j] += se
        g_log_psi[j] += 0.5 * (se2 + sp / K)
        n_observed[j] += count
        quad_e += se2
        quad_probe += sp
    return quad_e, quad_probe


@njit(nogil=True, cache=True)
def cg_backward(W, Wt, D, r, Xbar, n_steps, P_h, V_h, Y_h, R_h, coef, B, gW, gd):
    """Reverse pass of ``cg_forward``: given ``Xbar``, the adjoint of its
    output, returns the adjoint of the right-hand sides ``B`` (q, N) and
    adds to ``gW`` (p, q) and ``gd`` (p, n_chunk) the gradients through the
    operator ``A_i = W^T diag(d_i) W + I`` (each ``v_t = A p_t`` contributes
    ``Abar += vbar_t p_t^T``)."""
    q, N = Xbar.shape
    p = W.shape[0]
    dt = Xbar.dtype
    rbar = np.zeros((q, N), dtype=dt)
    pbar_next = np.zeros((q, N), dtype=dt)
    pbar = np.zeros((q, N), dtype=dt)
    vbar = np.zeros((q, N), dtype=dt)
    rhobar_next = np.zeros(N, dtype=np.float64)
    Zv = np.empty((p, N), dtype=dt)
    Zp = np.empty((p, N), dtype=dt)
    for t in range(n_steps - 1, -1, -1):
        P = P_h[t]
        V = V_h[t]
        Rn = R_h[t]
        for c in range(N):
            alpha = coef[0, t, c]
            beta = coef[1, t, c]
            rho_t = coef[2, t, c]
            rho_n = coef[2, t + 1, c]
            gamma = coef[3, t, c]
            # p_{t+1} = r_{t+1} + beta p_t
            betabar = 0.0
            for k in range(q):
                rbar[k, c] += pbar_next[k, c]
                betabar += pbar_next[k, c] * P[k, c]
                pbar[k, c] = beta * pbar_next[k, c]
            # beta = rho_{t+1} / rho_t (zero when the step was not taken)
            rhobar_t = 0.0
            if beta != 0.0:
                rhobar_next[c] += betabar / rho_t
                rhobar_t = -(betabar / rho_t) * (rho_n / rho_t)
            # rho_{t+1} = |r_{t+1}|^2
            for k in range(q):
                rbar[k, c] += 2.0 * rhobar_next[c] * Rn[k, c]
            # r_{t+1} = r_t - alpha v_t ; x_{t+1} = x_t + alpha p_t
            alphabar = 0.0
            for k in range(q):
                alphabar += Xbar[k, c] * P[k, c] - rbar[k, c] * V[k, c]
                vbar[k, c] = -alpha * rbar[k, c]
                pbar[k, c] += alpha * Xbar[k, c]
            # alpha = rho_t / gamma ; gamma = p^T v
            if alpha != 0.0:
                rhobar_t += alphabar / gamma
                gammabar = -alphabar * alpha / gamma
                for k in range(q):
                    pbar[k, c] += gammabar * V[k, c]
                    vbar[k, c] += gammabar * P[k, c]
            rhobar_next[c] = rhobar_t
        # v_t = A p_t: pbar += A vbar, Abar += vbar p^T
        Yv = np.dot(W, vbar)
        _scale_columns(Yv, D, Zv)
        AV = np.dot(Wt, Zv)
        for k in range(q):
            for c in range(N):
                pbar[k, c] += AV[k, c] + vbar[k, c]
        _scale_columns(Y_h[t], D, Zp)
        gW += np.dot(Zv, P.T)
        gW += np.dot(Zp, vbar.T)
        Yt = Y_h[t]
        for j in range(p):
            for c in range(N):
                gd[j, c // r] += Yv[j, c] * Yt[j, c]
        pbar_next, pbar = pbar, pbar_next
    # r_0 = p_0 = B, rho_0 = |r_0|^2
    Bbar = np.empty((q, N), dtype=dt)
    for k in range(q):
        for c in range(N):
            Bbar[k, c] = rbar[k, c] + pbar_next[k, c] + 2.0 * rhobar_next[c] * B[k, c]
    return Bbar


@njit(nogil=True, cache=True)
def exact_chunk(Xt, M, W, inv_psi, log_psi, G, mu, loglik, want_sigma, sigma, acc, tot):
    """Exact posterior of every row of the chunk.

    ``Xt`` (n, p): centred data, zero where missing; ``M`` (n, p): 1 where
    observed; ``G = I + W^T diag(inv_psi) W`` (every row observed). Fills
    ``mu`` (n, q) (posterior means), ``loglik`` (n,) (marginal
    log-likelihoods of the observed entries) and, with ``want_sigma``,
    ``sigma`` (n, q, q) (posterior covariances). Accumulates ``acc``
    (p, q) and ``tot`` (q, q) so that ``S_j w_j = tot w_j + acc[j]``, with
    ``S_j`` the sum of the covariances of the samples that observe feature
    ``j`` and ``w_j`` its loadings (pass ``acc`` of shape (0, q) to skip): a
    sample adds ``Sigma_i w_j`` at its observed rows, or, when fewer are
    missing, adds ``Sigma_i`` to ``tot`` and subtracts ``Sigma_i w_j`` at its
    missing rows (one matrix product either way).
    """
    n, p = Xt.shape
    q = W.shape[1]
    dt = Xt.dtype
    accumulate = acc.shape[0] > 0
    for i in range(n):
        n_obs = 0
        for j in range(p):
            if M[i, j] != 0:
                n_obs += 1
        n_mis = p - n_obs
        # the precision from the fewer of the missing and the observed rows
        use_missing = n_mis <= n_obs
        n_rows = n_mis if use_missing else n_obs
        rows = np.empty(n_rows, dtype=np.int64)
        Wr = np.empty((n_rows, q), dtype=dt)
        Wd = np.empty((q, n_rows), dtype=dt)
        h = 0
        for j in range(p):
            if (M[i, j] == 0) == use_missing:
                rows[h] = j
                for k in range(q):
                    Wr[h, k] = W[j, k]
                    Wd[k, h] = W[j, k] * inv_psi[j]
                h += 1
        part = np.dot(Wd, Wr)
        A = np.empty((q, q), dtype=np.float64)
        for k in range(q):
            for h2 in range(q):
                if use_missing:
                    A[k, h2] = G[k, h2] - part[k, h2]
                else:
                    A[k, h2] = part[k, h2] + (1.0 if k == h2 else 0.0)
        for k in range(q):  # symmetric, up to rounding
            for h2 in range(k):
                s = 0.5 * (A[k, h2] + A[h2, k])
                A[k, h2] = s
                A[h2, k] = s
        L = np.linalg.cholesky(A)
        logdet = 0.0
        for k in range(q):
            logdet += 2.0 * np.log(L[k, k])
        S = np.linalg.inv(A)
        for k in range(q):
            for h2 in range(k):
                s = 0.5 * (S[k, h2] + S[h2, k])
                S[k, h2] = s
                S[h2, k] = s
        b = np.zeros(q, dtype=np.float64)
        quad = 0.0
        sum_log_psi = 0.0
        for j in range(p):
            if M[i, j] != 0:
                x = Xt[i, j] * inv_psi[j]
                quad += Xt[i, j] * x
                sum_log_psi += log_psi[j]
                for k in range(q):
                    b[k] += W[j, k] * x
        m = np.dot(S, b)
        quad -= np.dot(b, m)
        loglik[i] = -0.5 * (n_obs * LOG_2PI + sum_log_psi + logdet + quad)
        for k in range(q):
            mu[i, k] = m[k]
        if want_sigma:
            sigma[i] = S
        if accumulate:
            sign = 1.0
            if use_missing:
                tot += S
                sign = -1.0
            WrT = np.empty((q, n_rows), dtype=np.float64)
            for h in range(n_rows):
                for k in range(q):
                    WrT[k, h] = Wr[h, k]
            SW = np.dot(S, WrT)  # (q, n_rows): Sigma_i w_j
            for h in range(n_rows):
                j = rows[h]
                for k in range(q):
                    acc[j, k] += sign * SW[k, h]
