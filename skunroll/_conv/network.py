"""Private dispatcher of the convolutional unrolled auto-encoder.

Signals are held as ``(n_samples, n_channels, height, width)`` (a 1-D
recording has ``height == 1``). ``forward_backward`` runs the numba kernel of
``_kernels/_conv.py`` signal by signal in the package's thread pool and sums
the per-signal gradients in signal order (results do not depend on
``n_jobs``). ``encode`` cuts long signals into overlapping chunks along their
last axis: a code after ``T`` unrolled steps depends on the signal within
``T (kw - 1)`` positions on either side, so a chunk extended by that margin
gives exactly the codes of the whole signal. The coordinate-descent encoder
("cd", ``_kernels/_conv_cd.py``) is no unrolled network: it solves the
Gaussian lasso to a tolerance, has no back-propagated gradient ("forward" and
"dec" only), and its chunks, extended by ``CD_REACH_KERNELS`` kernel widths,
agree with the whole signal's codes to the solver's accuracy (both stop at a
per-entry tolerance, not at the exact solution). Nothing here
validates input.
"""

import warnings
from dataclasses import dataclass

import numpy as np
from scipy import fft as sp_fft
from sklearn.exceptions import ConvergenceWarning

from .._kernels import _conv as _k
from .._kernels import _conv_cd as _cd
from .._parallel import map_in_order
from .._parts.encoders import ENCODERS
from .._parts.likelihoods import LIKELIHOODS
from .fft import FFT_MIN_TAPS, fft_sample

MODES = {
    "forward": _k.FORWARD,
    "dec": _k.DEC,
    "ae-ls": _k.AE_LS,
    "ae-lasso": _k.AE_LASSO,
}

#: code positions per chunk (along the last axis) when encoding long signals
CHUNK_POSITIONS = 32768
#: coordinate descent ("cd"): a code entry is left alone when it would move by
#: at most this fraction of the largest ``lambda_k / ||h_k||^2``
CD_TOL = 1e-2
#: coordinate descent: at most this many passes over the marked segments (a
#: safeguard: the solver stops at its tolerance, after about 2,000 passes on
#: the tests' densest problems and 400 on spike recordings)
CD_MAX_PASSES = 10000
#: coordinate descent: chunks overlap by this many kernel widths on each side
CD_REACH_KERNELS = 10
#: Fourier grid oversampling of the operator norm, and its safety factor
_NORM_OVERSAMPLING = 16
_NORM_SAFETY = 1.02


@dataclass(frozen=True)
class ConvNetwork:
    """The unrolled convolutional encoder, everything but the kernels: the
    encoder (a name of ``ENCODERS``) and its depth, the per-kernel weights and
    signs of the l1 prior, the likelihood and the convolution method."""

    n_unroll: int
    encoder: str
    alphas: np.ndarray  # (n_kernels,) sparsity weight per kernel
    signs: np.ndarray  # (n_kernels,) +1, -1 or 0 (two-sided)
    likelihood: str = "gaussian"
    n_trials: float = 1.0
    method: str = "direct"  # "direct", "fft" or "auto" (see uses_fft)

    @property
    def coordinate(self):
        """Whether the encoder is a coordinate-descent solver (not unrolled)."""
        return ENCODERS[self.encoder].kind == "coordinate"

    def reach(self, kw):
        """How far (in positions along the last axis) a code depends on the
        signal: ``n_unroll (kw - 1)`` for the unrolled encoders, exactly;
        ``CD_REACH_KERNELS (kw - 1)`` for coordinate descent, whose
        converged codes depend on distant samples only through chains of
        overlapping events (chunks extended by it give the whole signal's
        codes to the solver's accuracy)."""
        if self.coordinate:
            return CD_REACH_KERNELS * (kw - 1)
        return self.n_unroll * (kw - 1)

    def betas(self):
        return ENCODERS[self.encoder].momentum(self.n_unroll)


def operator_norm2(H):
    """Squared spectral norm of the convolution operator of kernels ``H``.

    The operator ``z -> H z`` is block-Toeplitz; its norm over signals of any
    length is bounded by (and, for long signals, equal to) the supremum over
    frequencies of the largest singular value of the ``n_channels x
    n_kernels`` transfer matrix. The supremum is taken on a Fourier grid
    oversampled ``16x`` and raised by 2 % to cover the grid's gaps; the value
    does not depend on the signal length, so chunked and whole-signal
    encodings use the same step.
    """
    kh, kw = H.shape[2:]
    shape = tuple(
        1 if s == 1 else int(sp_fft.next_fast_len(_NORM_OVERSAMPLING * s))
        for s in (kh, kw)
    )
    F = sp_fft.rfft2(H.astype(np.float64), s=shape, axes=(2, 3))  # (K, C, f1, f2)
    F = F.reshape(F.shape[0], F.shape[1], -1).transpose(2, 0, 1)  # (f, K, C)
    if F.shape[1] <= F.shape[2]:
        G = F @ F.conj().transpose(0, 2, 1)
    else:
        G = F.conj().transpose(0, 2, 1) @ F
    return _NORM_SAFETY * float(np.linalg.eigvalsh(G)[:, -1].max())


def n_positions(shape, kernel_shape):
    return shape[0] - kernel_shape[0] + 1, shape[1] - kernel_shape[1] + 1


def _history(net, mode, zshape, dtype):
    depth = net.n_unroll + 1 if mode >= _k.AE_LS else 2
    return np.empty((depth, *zshape), dtype=dtype)


def _run_sample(x, H, net, step, mode, mask, z_out, grad, losses, z_init=None,
                offset=None):  # fmt: skip
    dtype = x.dtype
    betas = net.betas()
    thresholds = (step * net.alphas).astype(np.float64)
    use_mask = mask is not None
    if mask is None:
        mask = np.ones((1, 1, 1), dtype=np.bool_)
    if offset is None:
        offset = np.zeros(x.shape[0])
    elif net.likelihood == "gaussian":  # the Gaussian network runs on x - offset
        x = (x - offset[:, None, None]).astype(dtype, copy=False)
        offset = np.zeros(x.shape[0])
    args = (
        x, H, dtype.type(step), betas, thresholds, net.signs.astype(np.int64),
        mask, use_mask, net.alphas.astype(np.float64), LIKELIHOODS[net.likelihood],
        net.n_trials, np.asarray(offset, dtype=np.float64), mode, z_out, grad, losses,
    )  # fmt: skip
    warm = (z_out if z_init is None else z_init, z_init is not None)
    if net.coordinate:
        if mode > _k.DEC:
            raise ValueError(
                "the 'cd' encoder is not unrolled: it has no back-propagated "
                "gradient (use gradient='dec')."
            )
        alphas = net.alphas.astype(np.float64)
        tol = CD_TOL * cd_scale(H, alphas, x)
        passes = _cd.cd_sample(x, H, alphas, net.signs.astype(np.int64), mask,
                               use_mask, tol, CD_MAX_PASSES, mode, z_out, grad,
                               losses, *warm)  # fmt: skip
        if passes >= CD_MAX_PASSES:
            warnings.warn(
                f"the 'cd' encoder stopped after {CD_MAX_PASSES} passes with codes "
                "still moving by more than its tolerance; the codes are not "
                "converged.",
                ConvergenceWarning,
                stacklevel=2,
            )
    elif uses_fft(net, H):
        fft_sample(*args, *warm)
    elif net.likelihood == "gaussian" and mode <= _k.DEC:
        # conv_unrolled_sample's own Gram-form branch, called directly: the
        # general kernel then compiles (numba) only where it runs
        _k._gram_sample(*args[:9], mode, z_out, grad, losses, *warm)
    else:
        history = _history(net, mode, z_out.shape, dtype)
        _k.conv_unrolled_sample(*args, history, *warm)


def cd_scale(H, alphas, x):
    """The code scale of coordinate descent's tolerance: the largest
    ``lambda_k / ||h_k||^2``, or without sparsity weights a bound on one
    update, ``max |x| max_k ||h_k||_1 / ||h_k||^2``."""
    flat = H.reshape(H.shape[0], -1).astype(np.float64)
    energy = np.maximum(np.sum(flat**2, axis=1), np.finfo(np.float64).tiny)
    scale = float(np.max(alphas / energy))
    if scale > 0.0:
        return scale
    return float(np.max(np.abs(x))) * float(
        np.max(np.sum(np.abs(flat), axis=1) / energy)
    )


def uses_fft(net, H):
    """Whether the FFT form runs: ``net.method``, or "auto" by kernel size."""
    if net.method == "auto":
        return H.shape[2] * H.shape[3] >= FFT_MIN_TAPS
    return net.method == "fft"


@dataclass
class ConvResult:
    """Summed losses over the signals, summed gradient and the code maps."""

    data_loss: float
    penalty: float
    grad: np.ndarray
    codes: list


def forward_backward(X, H, net, step, mode="ae-ls", n_jobs=None, masks=None,
                     init=None, offset=None):  # fmt: skip
    """Code maps, summed loss and summed ``H``-gradient over signals ``X``.

    ``X`` is a 4-D array or a list of ``(n_channels, h, w)`` signals of any
    sizes (``masks`` and ``init`` alike); the encoder starts at the code maps
    ``init`` if given, else at zero. ``offset`` (one value per channel, the
    model's intercept) is added to the linear predictor ``H z``; the gradient
    is taken at a fixed offset. ``codes`` is a list of code maps.
    """
    n = len(X)
    code = MODES[mode]
    k = H.shape[0]
    codes = [np.zeros((k, *n_positions(x.shape[1:], H.shape[2:])), dtype=x.dtype)
             for x in X]  # fmt: skip

    def run(i):
        losses = np.zeros(2)
        grad = np.zeros(H.shape) if code != _k.FORWARD else np.zeros((1, 1, 1, 1))
        mask = None if masks is None else masks[i]
        z0 = None if init is None else init[i]
        _run_sample(X[i], H, net, step, code, mask, codes[i], grad, losses, z0,
                    offset)  # fmt: skip
        return losses, grad

    results = map_in_order(run, n, n_jobs)
    losses = np.sum([r[0] for r in results], axis=0)
    grad = None
    if code != _k.FORWARD:
        grad = results[0][1].copy()
        for r in results[1:]:
            grad += r[1]
    return ConvResult(float(losses[0]), float(losses[1]), grad, codes)


def encode(X, H, net, step, n_jobs=None, masks=None, chunk_positions=None,
           offset=None):  # fmt: skip
    """Code maps of ``X`` (no gradient), in overlapping chunks along the last
    axis run in parallel; equal to encoding every signal whole (for "cd", to
    the solver's accuracy)."""
    chunk = CHUNK_POSITIONS if chunk_positions is None else int(chunk_positions)
    kw = H.shape[3]
    margin = net.reach(kw)
    n = X.shape[0]
    zshape = (H.shape[0], *n_positions(X.shape[2:], H.shape[2:]))
    codes = np.zeros((n, *zshape), dtype=X.dtype)
    width = zshape[2]
    starts = list(range(0, width, chunk))
    tasks = [(i, s) for i in range(n) for s in starts]

    def run(t):
        i, s = tasks[t]
        e = min(s + chunk, width)
        lo, hi = max(0, s - margin), min(width, e + margin)
        x = np.ascontiguousarray(X[i, :, :, lo : hi + kw - 1])
        mask = None if masks is None else np.ascontiguousarray(masks[i][:, :, lo:hi])
        z = np.zeros((zshape[0], zshape[1], hi - lo), dtype=X.dtype)
        _run_sample(x, H, net, step, _k.FORWARD, mask, z, np.zeros((1, 1, 1, 1)),
                    np.zeros(2), None, offset)  # fmt: skip
        codes[i, :, :, s:e] = z[:, :, s - lo : e - lo]

    map_in_order(run, len(tasks), n_jobs)
    return codes


def reconstruct(codes, H):
    """``H z`` of every code map: the linear predictor (before the link)."""
    n, _, p1, p2 = codes.shape
    out = np.empty((n, H.shape[1], p1 + H.shape[2] - 1, p2 + H.shape[3] - 1),
                   dtype=codes.dtype)  # fmt: skip
    Hc = H.astype(codes.dtype, copy=False)
    for i in range(n):
        _k.synthesis(codes[i], Hc, out[i])
    return out
