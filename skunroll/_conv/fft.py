"""FFT form of the convolutional unrolled auto-encoder, for long kernels.

The same network and backward pass as ``conv_unrolled_sample`` in
``_kernels/_conv.py`` (whose numba helpers it reuses for the prox, the
residual, the momentum and the sparse kernel correlations), with the dense
synthesis ``H z`` and analysis ``H^T r`` computed by ``scipy.fft``: a
zero-padded transform of the signal's size makes the circular products equal
the linear ones. A step costs ``O((n_kernels + n_channels) N log N)`` instead
of ``O(n_kernels n_channels kh kw N)``, which pays for kernels of more than
about a hundred taps (``FFT_MIN_TAPS``).
"""

import numpy as np
from scipy import fft as sp_fft

from .._kernels import _conv as _k

#: kernels with at least this many taps (kh * kw) use the FFT form under "auto"
FFT_MIN_TAPS = 128


class FourierOperators:
    """``H z`` and ``H^T r`` of signals of one shape, through ``rfft2``."""

    def __init__(self, H, signal_shape):
        self.kshape = H.shape[2:]
        self.signal_shape = signal_shape
        self.fshape = tuple(
            int(sp_fft.next_fast_len(s, real=True)) for s in signal_shape
        )
        self.pshape = tuple(
            s - k + 1 for s, k in zip(signal_shape, self.kshape, strict=True)
        )
        self.Hf = sp_fft.rfft2(H, s=self.fshape, axes=(2, 3))  # (K, C, f1, f2)
        self.dtype = H.dtype

    def synthesis(self, z, out):
        zf = sp_fft.rfft2(z, s=self.fshape, axes=(1, 2))  # (K, f1, f2)
        ef = np.einsum("kcij,kij->cij", self.Hf, zf)
        s1, s2 = self.signal_shape
        out[:] = sp_fft.irfft2(ef, s=self.fshape, axes=(1, 2))[:, :s1, :s2]

    def analysis(self, r, out):
        rf = sp_fft.rfft2(r, s=self.fshape, axes=(1, 2))  # (C, f1, f2)
        af = np.einsum("kcij,cij->kij", self.Hf.conj(), rf)
        p1, p2 = self.pshape
        out[:] = sp_fft.irfft2(af, s=self.fshape, axes=(1, 2))[:, :p1, :p2]


def fft_sample(
    x, H, step, betas, thresholds, signs, mask, use_mask, alphas,
    likelihood, n_trials, offset, mode, z_out, grad, losses, z_init, warm,
):  # fmt: skip
    """``conv_unrolled_sample`` with FFT products (same arguments, no history
    buffer: the iterates are kept in a list)."""
    ops = FourierOperators(H, x.shape[1:])
    zshape = z_out.shape
    y = np.zeros(zshape, dtype=z_out.dtype) if not warm else z_init.astype(z_out.dtype)
    g = np.empty(zshape, dtype=z_out.dtype)
    e = np.empty(x.shape, dtype=x.dtype)
    r = np.empty(x.shape, dtype=x.dtype)
    history = [y.copy(), y.copy()]  # z_{-1}, z_0
    for t in range(len(betas)):
        if t > 0:
            _k.momentum_point(history[-1], history[-2], betas[t], y)
        ops.synthesis(y, e)
        _k.residual(x, e, offset, likelihood, n_trials, r)
        ops.analysis(r, g)
        z = np.empty_like(y)
        _k.prox(y + step * g, thresholds, signs, mask, use_mask, z)
        history.append(z)
    z_out[:] = history[-1]
    ops.synthesis(z_out, e)
    losses[0] += _k.residual(x, e, offset, likelihood, n_trials, r)
    losses[1] += float(np.sum(alphas * np.abs(z_out).sum(axis=(1, 2))))
    if mode == _k.FORWARD:
        return
    _k.add_kernel_correlation(r, z_out, -1.0, grad)
    if mode == _k.DEC:
        return
    ops.analysis(r, g)
    g1 = -g
    if mode == _k.AE_LASSO:
        g1 += alphas[:, None, None] * np.sign(z_out)
    _fft_backward(ops, x, step, betas, likelihood, n_trials, offset, history[1:], g1,
                  grad)  # fmt: skip


def _fft_backward(ops, x, step, betas, likelihood, n_trials, offset, zs, g1, grad):
    """Reverse pass; ``zs[t]`` is ``z_t`` for ``t = 0 .. T``."""
    g0 = np.zeros_like(g1)
    gm = np.zeros_like(g1)
    y = np.empty_like(g1)
    dy = np.empty_like(g1)
    e = np.empty(x.shape, dtype=x.dtype)
    r = np.empty_like(e)
    hv = np.empty_like(e)
    for t in range(len(betas) - 1, -1, -1):
        v = np.where(zs[t + 1] != 0, g1, 0.0).astype(g1.dtype)
        if t > 0:
            _k.momentum_point(zs[t], zs[t - 1], betas[t], y)
        else:
            y[:] = zs[0]
        ops.synthesis(y, e)
        _k.residual(x, e, offset, likelihood, n_trials, r)
        ops.synthesis(v, hv)
        _k.scale_by_link_derivative(hv, e, offset, likelihood, n_trials)
        _k.add_kernel_correlation(r, v, step, grad)
        _k.add_kernel_correlation(hv, y, -step, grad)
        ops.analysis(hv, dy)
        d = v - step * dy
        g0 += (1.0 + betas[t]) * d
        gm -= betas[t] * d
        g1, g0, gm = g0, gm, g1
        gm[:] = 0.0
