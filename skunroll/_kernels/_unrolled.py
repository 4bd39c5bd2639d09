"""Forward and hand-written backward pass of the unrolled sparse auto-encoder.

With atoms as rows of ``D`` (n_components, n_features), a sample ``x``, the
step ``a`` and ``P`` the prior's proximal map, the encoder runs ``T`` steps

    y_t = z_t + b_t (z_t - z_{t-1})                  (b_t = 0 for ISTA)
    u_t = y_t + a (x - f(y_t D)) D^T,   z_{t+1} = P(u_t),   z_0 = z_{-1} = 0

and the decoder returns ``f(z_T D)`` (``f`` the inverse link). The loss of a
sample is the negative log-likelihood ``l(x, z_T D)``, plus the prior penalty
``h(z_T)`` for the ``ae-lasso`` gradient. Its gradient with respect to ``D`` is
accumulated by reverse-mode differentiation written out by hand: with
``e_t = y_t D``, ``r_t = x - f(e_t)`` and the adjoint ``g_{t+1} = dL/dz_{t+1}``,

    v_t  = J_P(u_t)^T g_{t+1}
    w_t  = f'(e_t) * (v_t D)
    dL/dD += a (v_t^T r_t - y_t^T w_t)
    dL/dy_t = v_t - a w_t D^T
    g_t += (1 + b_t) dL/dy_t,   g_{t-1} += -b_t dL/dy_t.

The step ``a`` is treated as a constant (it is ``1 / L`` with ``L`` computed
from ``D`` outside the graph). Every sample is independent, so the kernels run
sample by sample with ``T``-deep buffers that stay in cache, and skip the zero
entries of the codes and of their adjoints (a sparse code makes ``y D`` and
the outer products cheap).

``unrolled_weighted_chunk`` handles every likelihood.
``unrolled_gram_weighted_chunk`` is the Gaussian special case in Gram form
(``G = D D^T``): the residual step becomes ``u_t = y_t - a (y_t G - x D^T)``,
whose cost is ``nnz(y_t) * n_components``
per step instead of ``n_components * n_features``; its ``D``-gradient is
``a (sum_t v_t)^T x - a (S + S^T) D`` with ``S = sum_t v_t^T y_t``.

``unrolled_weighted_chunk`` and ``unrolled_gram_weighted_chunk`` weight the
loss of every row (the backward pass is linear in the upstream adjoint, so a
weight scales the adjoints of ``z_T`` and of the reconstruction); the former
also masks unobserved entries out of the encoder's residual and the loss, as
in the missing-data experiments of Lin, Song & Ba, "Mixture model
auto-encoders: deep clustering through dictionary learning", ICASSP 2022.

References
----------
Tolooshams & Ba, "Stable and interpretable unrolled dictionary learning",
TMLR 2022 (the ``dec``, ``ae-lasso`` and ``ae-ls`` gradients).
Tolooshams, Dey & Ba, "Deep residual autoencoders for expectation
maximization-inspired dictionary learning", IEEE TNNLS 2020 (priors and
exponential-family likelihoods).
"""

import numpy as np
from numba import njit

from ._blas import copy_into
from ._likelihoods import inverse_link, inverse_link_derivative, nll
from ._priors import add_penalty_gradient, penalty_row, prox_row, prox_vjp_row

# what a kernel computes
FORWARD, DEC, AE_LS, AE_LASSO = 0, 1, 2, 3


@njit(nogil=True, cache=True)
def _nonzeros(v, idx):
    count = 0
    for j in range(v.shape[0]):
        if v[j] != 0.0:
            idx[count] = j
            count += 1
    return count


@njit(nogil=True, cache=True)
def _sparse_times(v, idx, count, M, out):
    """``out = v M`` for a vector with nonzeros ``v[idx[:count]]``."""
    out[:] = 0.0
    for c in range(count):
        j = idx[c]
        vj = v[j]
        for f in range(M.shape[1]):
            out[f] += vj * M[j, f]


@njit(nogil=True, cache=True)
def _times_transpose(r, M, out):
    """``out = r M^T`` (dense)."""
    for j in range(M.shape[0]):
        acc = 0.0
        for f in range(M.shape[1]):
            acc += r[f] * M[j, f]
        out[j] = acc


@njit(nogil=True, cache=True)
def _add_outer(scale, v, idx, count, w, out):
    """``out += scale * v^T w`` for a sparse ``v`` (nonzeros ``idx[:count]``)."""
    for c in range(count):
        j = idx[c]
        s = scale * v[j]
        for f in range(w.shape[0]):
            out[j, f] += s * w[f]


# --- the general kernel -----------------------------------------------------


@njit(nogil=True, cache=True)
def unrolled_weighted_chunk(
    X, D, step, betas, prior, p1, p2, groups, likelihood, n_trials,
    alpha, negative_alpha, mode, Z, grad, losses, weights, mask,
):  # fmt: skip
    """Unrolled encoder, decoder, loss and ``D``-gradient of a chunk of rows,
    with per-row weights and a mask of observed entries.

    Writes the codes ``z_T`` into ``Z``; for ``mode`` DEC / AE_LS / AE_LASSO,
    adds the gradient of the summed loss to ``grad`` (n_components,
    n_features). ``losses[0] += sum of the data loss``, ``losses[1] += sum of
    the penalty h(z_T)``. ``betas`` is the momentum of each step.

    The loss of row ``i`` is ``weights[i] * (sum_f mask[i, f] l(x_if, eta_if)
    + h(z_T))``, and the encoder's residual is ``mask * (x - f(y_t D))``: the
    unobserved entries take no part in the codes, the loss or the gradient.
    ``weights`` of length 0 means all ones, ``mask`` of shape (0, 0) means
    every entry observed. The backward pass is linear in the upstream adjoint,
    so a weight scales the adjoints of ``z_T`` and ``eta_T``.
    """
    weighted = weights.shape[0] > 0
    masked = mask.shape[0] > 0
    n_unroll = betas.shape[0]
    k, m = D.shape
    dt = X.dtype
    Ys = np.zeros((n_unroll, k), dtype=dt)
    Us = np.zeros((n_unroll, k), dtype=dt)
    Es = np.zeros((n_unroll, m), dtype=dt)
    z = np.zeros(k, dtype=dt)
    z_prev = np.zeros(k, dtype=dt)
    r = np.zeros(m, dtype=dt)
    w = np.zeros(m, dtype=dt)
    gk = np.zeros(k, dtype=dt)
    g_next = np.zeros(k, dtype=dt)
    g_cur = np.zeros(k, dtype=dt)
    v = np.zeros(k, dtype=dt)
    idx = np.zeros(k, dtype=np.int64)
    for i in range(X.shape[0]):
        x = X[i]
        z[:] = 0.0
        z_prev[:] = 0.0
        for t in range(n_unroll):
            y = Ys[t]
            for j in range(k):
                y[j] = z[j] + betas[t] * (z[j] - z_prev[j])
            count = _nonzeros(y, idx)
            _sparse_times(y, idx, count, D, Es[t])
            for f in range(m):
                r[f] = x[f] - inverse_link(Es[t, f], likelihood, n_trials)
            if masked:
                for f in range(m):
                    r[f] *= mask[i, f]
            _times_transpose(r, D, gk)
            for j in range(k):
                Us[t, j] = y[j] + step * gk[j]
            copy_into(z, z_prev)
            prox_row(Us[t], prior, p1, p2, groups, z)
        copy_into(z, Z[i])
        count = _nonzeros(z, idx)
        _sparse_times(z, idx, count, D, w)  # w = eta_T
        data_loss = 0.0
        for f in range(m):
            data_loss += nll(x[f], w[f], likelihood, n_trials) * (
                mask[i, f] if masked else 1.0
            )
            r[f] = inverse_link(w[f], likelihood, n_trials) - x[f]  # dl/deta
            if masked:
                r[f] *= mask[i, f]
        wi = weights[i] if weighted else 1.0
        losses[0] += wi * data_loss
        losses[1] += wi * penalty_row(z, prior, alpha, negative_alpha, groups)
        if mode == FORWARD:
            continue
        _add_outer(wi, z, idx, count, r, grad)  # decoder (direct) gradient
        if mode == DEC:
            continue
        _times_transpose(r, D, g_next)  # dL/dz_T
        if mode == AE_LASSO:
            add_penalty_gradient(z, prior, alpha, negative_alpha, groups, g_next)
        if weighted:
            for j in range(k):
                g_next[j] *= wi
        g_cur[:] = 0.0
        for t in range(n_unroll - 1, -1, -1):
            prox_row(Us[t], prior, p1, p2, groups, gk)  # z_{t+1} = P(u_t)
            prox_vjp_row(Us[t], gk, g_next, prior, p1, p2, groups, v)
            count = _nonzeros(v, idx)
            _sparse_times(v, idx, count, D, w)
            for f in range(m):
                r[f] = x[f] - inverse_link(Es[t, f], likelihood, n_trials)
                w[f] *= inverse_link_derivative(Es[t, f], likelihood, n_trials)
            if masked:
                for f in range(m):
                    r[f] *= mask[i, f]
                    w[f] *= mask[i, f]
            _add_outer(step, v, idx, count, r, grad)
            y = Ys[t]
            count = _nonzeros(y, idx)
            _add_outer(-step, y, idx, count, w, grad)
            _times_transpose(w, D, gk)  # gk = w D^T
            b = betas[t]
            for j in range(k):
                ybar = v[j] - step * gk[j]
                g_cur[j] += (1.0 + b) * ybar
                g_next[j] = -b * ybar  # becomes part of g_{t-1}
            # shift: g_{t} is complete, g_{t-1} holds its first contribution
            for j in range(k):
                tmp = g_cur[j]
                g_cur[j] = g_next[j]
                g_next[j] = tmp


# --- the Gaussian kernel in Gram form, batched -----------------------------


@njit(nogil=True, cache=True)
def unrolled_gram_weighted_chunk(
    X, B, D, gram, step, betas, prior, p1, p2, groups, alpha, negative_alpha,
    mode, Z, grad, Ys, Vs, losses, weights,
):  # fmt: skip
    """Gaussian-likelihood special case of ``unrolled_weighted_chunk`` in Gram
    form.

    The chunk moves through the ``T`` steps together, each step one matrix
    product with ``gram = D D^T`` (``u_t = y_t - a (y_t G - x D^T)``, with
    ``B = X D^T`` precomputed), so the work is BLAS whatever the sparsity of
    the iterates. For the ae modes, ``y_t`` and ``v_t = J_P(u_t)^T g_{t+1}``
    are written into ``Ys`` and ``Vs`` (T, n, n_components); the kernel adds
    the decoder term and ``a (sum_t v_t)^T x`` to ``grad`` and the caller
    finishes with ``grad -= a (S + S^T) D``, ``S = sum_t v_t^T y_t``. The
    loss of row ``i`` is weighted by ``weights[i]`` (all ones if ``weights``
    has length 0): the adjoints of ``z_T`` and of the reconstruction are
    scaled row by row.

    ``Z`` holds the warm start ``z_0 = z_{-1}`` on entry (zeros for the
    networks) and the codes on exit. The forward pass alone (``mode`` FORWARD)
    of a dictionary with more than twice as many atoms as features computes
    the gradient step as ``(y D - x) D^T``, which is then cheaper.
    """
    weighted = weights.shape[0] > 0
    n_unroll = betas.shape[0]
    n, k = B.shape
    dt = X.dtype
    keep = mode >= AE_LS
    # the backward pass needs every z_t and u_t; the forward pass three and one
    Zs = np.zeros((n_unroll + 1 if keep else 3, n, k), dtype=dt)
    Us = np.empty((n_unroll if keep else 1, n, k), dtype=dt)
    Y = np.empty((n, k), dtype=dt)
    GY = np.empty((n, k), dtype=dt)
    copy_into(Z, Zs[0])  # the warm start (zeros unless given)
    # the forward pass alone takes the cheaper form of the gradient step:
    # (y D - x) D^T costs 4 k m flops a row, y G - x D^T 2 k^2
    explicit = mode == FORWARD and k > 2 * D.shape[1]
    DT = np.ascontiguousarray(D.T) if explicit else np.empty((0, 0), dtype=dt)
    R = np.empty((n if explicit else 0, D.shape[1]), dtype=dt)
    for t in range(n_unroll):
        beta = betas[t]
        Z_t = Zs[t if keep else t % 3]
        Z_prev = Zs[(t - 1 if keep else (t - 1) % 3) if t > 0 else 0]
        U = Us[t if keep else 0]
        Z_next = Zs[t + 1 if keep else (t + 1) % 3]
        for i in range(n):
            for j in range(k):
                Y[i, j] = Z_t[i, j] + beta * (Z_t[i, j] - Z_prev[i, j])
        # GY: the gradient y_t G - x D^T of every row, in the cheaper form
        if explicit:
            np.dot(Y, D, R)
            R -= X
            np.dot(R, DT, GY)
        else:
            np.dot(Y, gram, GY)
            GY -= B
        for i in range(n):
            for j in range(k):
                U[i, j] = Y[i, j] - step * GY[i, j]
            prox_row(U[i], prior, p1, p2, groups, Z_next[i])
        if keep:
            copy_into(Y, Ys[t])
    copy_into(Zs[n_unroll if keep else n_unroll % 3], Z)
    R = np.dot(Z, D)
    for i in range(n):
        data_loss = 0.0
        for f in range(R.shape[1]):
            R[i, f] -= X[i, f]
            data_loss += 0.5 * R[i, f] * R[i, f]
        wi = weights[i] if weighted else 1.0
        losses[0] += wi * data_loss
        losses[1] += wi * penalty_row(Z[i], prior, alpha, negative_alpha, groups)
        if weighted:
            for f in range(R.shape[1]):
                R[i, f] *= wi
    if mode == FORWARD:
        return
    grad += np.dot(Z.T, R)
    if mode == DEC:
        return
    g_next = np.dot(Z, gram) - B  # dL/dz_T = (z D - x) D^T
    if mode == AE_LASSO:
        for i in range(n):
            add_penalty_gradient(Z[i], prior, alpha, negative_alpha, groups, g_next[i])
    if weighted:
        for i in range(n):
            for j in range(k):
                g_next[i, j] *= weights[i]
    g_cur = np.zeros((n, k), dtype=dt)
    vsum = np.zeros((n, k), dtype=dt)
    for t in range(n_unroll - 1, -1, -1):
        V = Vs[t]
        for i in range(n):
            prox_vjp_row(Us[t, i], Zs[t + 1, i], g_next[i], prior, p1, p2, groups, V[i])
        np.dot(V, gram, GY)
        beta = betas[t]
        for i in range(n):
            for j in range(k):
                vsum[i, j] += V[i, j]
                ybar = V[i, j] - step * GY[i, j]
                g_cur[i, j] += (1.0 + beta) * ybar
                g_next[i, j] = -beta * ybar
        g_cur, g_next = g_next, g_cur
    grad += step * np.dot(vsum.T, X)
