"""Convolutional unrolled auto-encoder: direct convolutions, forward, backward.

Every signal is held as ``(n_channels, height, width)`` (a 1-D recording has
``height == 1``), kernels ``H`` as ``(n_kernels, n_channels, kh, kw)`` and
code maps ``z`` as ``(n_kernels, height - kh + 1, width - kw + 1)``: a kernel
is placed entirely inside the signal ("valid" codes, as in alphacsc). The
synthesis and analysis operators are

    (H z)[c, i, j]   = sum_k sum_{a, b} H[k, c, a, b] z[k, i - a, j - b]
    (H^T r)[k, i, j] = sum_c sum_{a, b} H[k, c, a, b] r[c, i + a, j + b].

The encoder is the unrolled ISTA/FISTA of ``_unrolled.py`` with these
operators in place of ``D`` and ``D^T``; its prox is the soft threshold with
one threshold and one sign constraint per kernel, and with an optional mask of
the allowed code positions. The backward pass is the dense one with the same
substitution: with ``e_t = H y_t``, ``r_t = x - f(e_t)`` and the adjoint
``g_{t+1} = dL/dz_{t+1}``,

    v_t  = [z_{t+1} != 0] * g_{t+1}
    w_t  = f'(e_t) * (H v_t)
    dL/dH += a (C(r_t, v_t) - C(w_t, y_t)),  C(s, z)[k, c, a, b] =
             sum_{i, j} z[k, i, j] s[c, i + a, j + b]
    dL/dy_t = v_t - a H^T w_t.

Codes and adjoints are sparse, so the synthesis and ``C`` loop over non-zero
code entries only; the analysis ``H^T r`` is dense and its innermost loop runs
along the signal's last axis, which the compiler vectorises.

References
----------
Tolooshams, Dey & Ba, "Deep residual autoencoders for expectation
maximization-inspired dictionary learning", IEEE TNNLS 2020 (CRsAE).
Tolooshams et al., "Interpretable deep learning for deconvolutional analysis of
neural signals", Neuron 2025 / bioRxiv 2024 (DUNL).
"""

import numpy as np
from numba import njit

from ._blas import copy_into
from ._likelihoods import inverse_link, nll
from ._likelihoods import inverse_link_derivative as link_derivative
from ._priors import shrink
from ._unrolled import AE_LASSO, AE_LS, DEC, FORWARD

__all__ = ["AE_LASSO", "AE_LS", "DEC", "FORWARD"]


@njit(nogil=True, cache=True)
def synthesis(z, H, out):
    """``out = H z``; zero code entries are skipped."""
    out[:] = 0.0
    n_kernels, n_channels, kh, kw = H.shape
    for k in range(n_kernels):
        for i in range(z.shape[1]):
            for j in range(z.shape[2]):
                v = z[k, i, j]
                if v != 0.0:
                    for c in range(n_channels):
                        for a in range(kh):
                            for b in range(kw):
                                out[c, i + a, j + b] += v * H[k, c, a, b]


@njit(nogil=True, cache=True)
def analysis(r, H, out):
    """``out = H^T r`` (correlation of ``r`` with every kernel)."""
    out[:] = 0.0
    n_kernels, n_channels, kh, kw = H.shape
    p1, p2 = out.shape[1], out.shape[2]
    for k in range(n_kernels):
        for c in range(n_channels):
            for a in range(kh):
                for b in range(kw):
                    h = H[k, c, a, b]
                    for i in range(p1):
                        row = r[c, i + a]
                        dst = out[k, i]
                        for j in range(p2):
                            dst[j] += h * row[j + b]


@njit(nogil=True, cache=True)
def add_kernel_correlation(s, z, scale, grad):
    """``grad += scale * C(s, z)``, looping over the non-zeros of ``z``."""
    n_kernels, n_channels, kh, kw = grad.shape
    for k in range(n_kernels):
        for i in range(z.shape[1]):
            for j in range(z.shape[2]):
                v = z[k, i, j]
                if v != 0.0:
                    v *= scale
                    for c in range(n_channels):
                        for a in range(kh):
                            for b in range(kw):
                                grad[k, c, a, b] += v * s[c, i + a, j + b]


@njit(nogil=True, cache=True)
def prox_entry(u, threshold, sign, allowed):
    """Soft threshold of one code entry with its kernel's sign constraint
    (+1, -1 or 0); zero where the code mask does not allow a code."""
    if not allowed:
        return 0.0
    return shrink(u, threshold, sign)


@njit(nogil=True, cache=True)
def prox(u, thresholds, signs, mask, use_mask, out):
    """Soft threshold per kernel with its sign constraint (+1, -1 or 0)."""
    for k in range(u.shape[0]):
        for i in range(u.shape[1]):
            for j in range(u.shape[2]):
                allowed = not use_mask or mask[k, i, j]
                out[k, i, j] = prox_entry(u[k, i, j], thresholds[k], signs[k], allowed)


@njit(nogil=True, cache=True)
def residual(x, e, offset, likelihood, n_trials, r):
    """``r = x - f(e + offset)`` (``offset`` per channel); returns the summed
    negative log-likelihood."""
    loss = 0.0
    for c in range(x.shape[0]):
        for i in range(x.shape[1]):
            for j in range(x.shape[2]):
                eta = e[c, i, j] + offset[c]
                r[c, i, j] = x[c, i, j] - inverse_link(eta, likelihood, n_trials)
                loss += nll(x[c, i, j], eta, likelihood, n_trials)
    return loss


@njit(nogil=True, cache=True)
def scale_by_link_derivative(hv, e, offset, likelihood, n_trials):
    """``hv *= f'(e + offset)`` (nothing to do for the Gaussian likelihood)."""
    if likelihood == 0:
        return
    for c in range(hv.shape[0]):
        for i in range(hv.shape[1]):
            for j in range(hv.shape[2]):
                eta = e[c, i, j] + offset[c]
                hv[c, i, j] *= link_derivative(eta, likelihood, n_trials)


@njit(nogil=True, cache=True)
def momentum_point(z, z_prev, beta, y):
    for k in range(z.shape[0]):
        for i in range(z.shape[1]):
            for j in range(z.shape[2]):
                y[k, i, j] = z[k, i, j] + beta * (z[k, i, j] - z_prev[k, i, j])


@njit(nogil=True, cache=True)
def conv_unrolled_sample(
    x, H, step, betas, thresholds, signs, mask, use_mask, alphas,
    likelihood, n_trials, offset, mode, z_out, grad, losses, history, z_init, warm,
):  # fmt: skip
    """Encode one signal with the unrolled (F)ISTA and back-propagate.

    The iterations start at ``z_0 = z_{-1} = z_init`` when ``warm`` (a
    constant of the network: no gradient flows into it), else at zero.

    ``offset`` (one value per channel) is added to the linear predictor:
    ``eta = H z + offset``. It must be zero for the Gaussian likelihood,
    whose Gram form ignores it: ``_run_sample`` runs the Gaussian network on
    ``x - offset`` instead.

    ``history`` is ``(n_unroll + 1, *z.shape)`` for the ``ae-*`` modes (the
    iterates ``z_0 .. z_T``) and ``(2, *z.shape)`` otherwise. ``losses``
    receives the data loss and the penalty; ``grad`` accumulates ``dL/dH``
    for every mode but ``FORWARD``.
    """
    if likelihood == 0 and mode <= DEC:
        _gram_sample(x, H, step, betas, thresholds, signs, mask, use_mask, alphas,
                     mode, z_out, grad, losses, z_init, warm)  # fmt: skip
        return
    n_unroll = betas.shape[0]
    keep = history.shape[0] > 2
    zshape = z_out.shape
    y = np.zeros(zshape, dtype=z_out.dtype)
    g = np.empty(zshape, dtype=z_out.dtype)
    e = np.empty(x.shape, dtype=x.dtype)
    r = np.empty(x.shape, dtype=x.dtype)
    if warm:
        copy_into(z_init, y)
    copy_into(y, history[0])
    copy_into(y, history[1])
    prev, cur = 0, 0
    for t in range(n_unroll):
        if t > 0:
            momentum_point(history[cur], history[prev], betas[t], y)
        synthesis(y, H, e)
        residual(x, e, offset, likelihood, n_trials, r)
        analysis(r, H, g)
        nxt = t + 1 if keep else (cur + 1) % 2
        if not keep and t == 0:
            nxt = 1
        u = y + step * g
        prox(u, thresholds, signs, mask, use_mask, history[nxt])
        prev, cur = cur, nxt
    copy_into(history[cur], z_out)
    synthesis(z_out, H, e)
    losses[0] += residual(x, e, offset, likelihood, n_trials, r)
    penalty = 0.0
    for k in range(zshape[0]):
        penalty += alphas[k] * np.abs(z_out[k]).sum()
    losses[1] += penalty
    if mode == FORWARD:
        return
    # direct term: dl/dH at fixed codes (the whole DEC gradient)
    add_kernel_correlation(r, z_out, -1.0, grad)
    if mode == DEC:
        return
    # adjoint of z_T
    analysis(r, H, g)
    g *= -1.0
    if mode == AE_LASSO:
        for k in range(zshape[0]):
            for i in range(zshape[1]):
                for j in range(zshape[2]):
                    v = z_out[k, i, j]
                    if v > 0.0:
                        g[k, i, j] += alphas[k]
                    elif v < 0.0:
                        g[k, i, j] -= alphas[k]
    _backward(x, H, step, betas, likelihood, n_trials, offset, history, g, y, e, r,
              grad)  # fmt: skip


@njit(nogil=True, cache=True)
def _backward(x, H, step, betas, likelihood, n_trials, offset, history, g1, y, e, r,
              grad):  # fmt: skip
    """Reverse pass through the ``T`` unrolled steps (``g1 = dL/dz_T``).

    ``history[0]`` holds ``z_0`` (zero, or the warm start): ``y_0 = z_0``.
    """
    n_unroll = betas.shape[0]
    g0 = np.zeros_like(g1)
    gm = np.zeros_like(g1)
    v = np.empty_like(g1)
    dy = np.empty_like(g1)
    hv = np.empty_like(e)
    n = v.size
    for t in range(n_unroll - 1, -1, -1):
        z_next = history[t + 1].reshape(n)
        v_, g1_ = v.reshape(n), g1.reshape(n)
        for idx in range(n):
            v_[idx] = g1_[idx] if z_next[idx] != 0.0 else 0.0
        if t > 0:
            momentum_point(history[t], history[t - 1], betas[t], y)
        else:
            copy_into(history[0], y)
        synthesis(y, H, e)
        residual(x, e, offset, likelihood, n_trials, r)
        synthesis(v, H, hv)
        scale_by_link_derivative(hv, e, offset, likelihood, n_trials)
        add_kernel_correlation(r, v, step, grad)
        add_kernel_correlation(hv, y, -step, grad)
        analysis(hv, H, dy)
        dy_, g0_, gm_ = dy.reshape(n), g0.reshape(n), gm.reshape(n)
        for idx in range(n):
            d = v_[idx] - step * dy_[idx]
            g0_[idx] += (1.0 + betas[t]) * d
            gm_[idx] += -betas[t] * d
        g1, g0, gm = g0, gm, g1
        gm[:] = 0.0


# --- Gram form of the Gaussian encoder --------------------------------------


@njit(nogil=True, cache=True)
def kernel_gram(H):
    """``G[k, l, e, f] = sum_{c,a,b} H[k, c, a, b] H[l, c, a - e, b - f]``,
    offsets ``e, f`` stored shifted by ``kh - 1``, ``kw - 1``: then
    ``(H^T H z)[k, i, j] = sum_{l, e, f} G[k, l, e, f] z[l, i + e, j + f]``."""
    n_kernels, n_channels, kh, kw = H.shape
    G = np.zeros((n_kernels, n_kernels, 2 * kh - 1, 2 * kw - 1))
    for k in range(n_kernels):
        for m in range(n_kernels):
            for c in range(n_channels):
                for a in range(kh):
                    for b in range(kw):
                        h = H[k, c, a, b]
                        for a2 in range(kh):
                            for b2 in range(kw):
                                G[k, m, a - a2 + kh - 1, b - b2 + kw - 1] += (
                                    h * H[m, c, a2, b2]
                                )
    return G


@njit(nogil=True, cache=True)
def _gram_scatter(F, m, p, q, v, out):
    """``out += H^T H`` applied to ``v`` at code entry ``(m, p, q)``, with
    ``F = G[:, :, ::-1, ::-1]`` so that the inner loop runs forward."""
    eh = (F.shape[2] - 1) // 2
    ew = (F.shape[3] - 1) // 2
    p1, p2 = out.shape[1], out.shape[2]
    j_lo = max(0, q - ew)
    j_hi = min(p2, q + ew + 1)
    off = ew - q
    for k in range(out.shape[0]):
        for i in range(max(0, p - eh), min(p1, p + eh + 1)):
            g = F[k, m, eh + i - p]
            dst = out[k, i]
            for j in range(j_lo, j_hi):
                dst[j] += g[j + off] * v


@njit(nogil=True, cache=True)
def _gram_apply_sparse(F, z, out):
    """``out += H^T H z`` over the non-zeros of ``z`` (``F`` as in
    ``_gram_scatter``)."""
    for m in range(z.shape[0]):
        for p in range(z.shape[1]):
            for q in range(z.shape[2]):
                if z[m, p, q] != 0.0:
                    _gram_scatter(F, m, p, q, z[m, p, q], out)


@njit(nogil=True, cache=True)
def _gram_sample(x, H, step, betas, thresholds, signs, mask, use_mask, alphas,
                 mode, z_out, grad, losses, z_init, warm):  # fmt: skip
    """Gaussian encoder in Gram form: ``H^T x`` once, then ``c = H^T H z``
    updated where the codes change (they are sparse), so a step costs
    ``nnz(dz) * n_kernels * (2 kh - 1) * (2 kw - 1)`` instead of a full
    correlation; a step in which so many codes change that this is dearer
    recomputes ``c`` as ``H^T (H z)``."""
    n_unroll = betas.shape[0]
    F = np.ascontiguousarray(kernel_gram(H)[:, :, ::-1, ::-1])
    shape = z_out.shape
    b = np.empty(shape, dtype=z_out.dtype)
    analysis(x, H, b)
    z_prev = np.zeros(shape, dtype=z_out.dtype)
    if warm:
        copy_into(z_init, z_prev)
    z_cur = z_prev.copy()
    z_new = np.empty(shape, dtype=z_out.dtype)
    c_cur = np.zeros(shape)
    _gram_apply_sparse(F, z_cur, c_cur)
    c_prev = c_cur.copy()
    c_new = np.empty(shape)
    # cost of updating c = H^T H z entry by entry, against recomputing it
    n_kernels, n_channels, kh, kw = H.shape
    scatter_cost = n_kernels * F.shape[2] * F.shape[3]
    dense_cost = n_kernels * n_channels * kh * kw * shape[1] * shape[2]
    e = np.empty(x.shape, dtype=x.dtype)
    dense = np.empty(shape, dtype=x.dtype)
    for t in range(n_unroll):
        beta = betas[t]
        n_changed = 0
        for k in range(shape[0]):
            for i in range(shape[1]):
                for j in range(shape[2]):
                    zc = z_cur[k, i, j]
                    y = zc + beta * (zc - z_prev[k, i, j])
                    grad_y = b[k, i, j] - (1.0 + beta) * c_cur[k, i, j]
                    grad_y += beta * c_prev[k, i, j]
                    allowed = not use_mask or mask[k, i, j]
                    u = y + step * grad_y
                    z_new[k, i, j] = prox_entry(u, thresholds[k], signs[k], allowed)
                    if z_new[k, i, j] != zc:
                        n_changed += 1
        if n_changed * scatter_cost <= dense_cost:
            copy_into(c_cur, c_new)
            for k in range(shape[0]):
                for i in range(shape[1]):
                    for j in range(shape[2]):
                        d = z_new[k, i, j] - z_cur[k, i, j]
                        if d != 0.0:
                            _gram_scatter(F, k, i, j, d, c_new)
        else:  # many codes moved: H^T (H z) directly is cheaper
            synthesis(z_new, H, e)
            analysis(e, H, dense)
            copy_into(dense, c_new)
        z_prev, z_cur, z_new = z_cur, z_new, z_prev
        c_prev, c_cur, c_new = c_cur, c_new, c_prev
    copy_into(z_cur, z_out)
    gram_finish(x, H, z_out, b, c_cur, alphas, mode, losses, grad)


@njit(nogil=True, cache=True)
def gram_finish(x, H, z, b, c, alphas, mode, losses, grad):
    """Losses of the final codes ``z`` from ``b = H^T x`` and ``c = H^T H z``,
    ``0.5 ||x - H z||^2 = 0.5 ||x||^2 - <z, b> + 0.5 <z, c>``, and for "dec"
    the kernel gradient at ``z``."""
    quad = 0.0
    penalty = 0.0
    for k in range(z.shape[0]):
        for i in range(z.shape[1]):
            for j in range(z.shape[2]):
                v = z[k, i, j]
                if v != 0.0:
                    quad += v * (0.5 * c[k, i, j] - b[k, i, j])
                    penalty += alphas[k] * abs(v)
    losses[0] += 0.5 * np.sum(x.astype(np.float64) ** 2) + quad
    losses[1] += penalty
    if mode == DEC:
        e = np.empty(x.shape, dtype=x.dtype)
        synthesis(z, H, e)
        r = x - e
        add_kernel_correlation(r, z, -1.0, grad)


# --- event detection ----------------------------------------------------------


@njit(nogil=True, cache=True)
def non_maximum_suppression(z, threshold, radius, out):
    """Keep the entries of code maps ``z`` (n_kernels, h, w) above
    ``threshold`` in magnitude that are the largest within ``radius``
    positions of their kernel's map (the earliest of equal ones)."""
    n_kernels, h, w = z.shape
    rh = radius if h > 1 else 0
    for k in range(n_kernels):
        for i in range(h):
            for j in range(w):
                v = abs(z[k, i, j])
                out[k, i, j] = 0.0
                if v <= threshold or v == 0.0:
                    continue
                keep = True
                for a in range(max(0, i - rh), min(h, i + rh + 1)):
                    for b in range(max(0, j - radius), min(w, j + radius + 1)):
                        u = abs(z[k, a, b])
                        if u > v or (u == v and (a < i or (a == i and b < j))):
                            keep = False
                            break
                    if not keep:
                        break
                if keep:
                    out[k, i, j] = z[k, i, j]
