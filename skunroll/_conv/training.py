r"""Training of ``ConvolutionalDictionaryLearning``: its model for the trainer.

CRsAE/DUNL fit the kernels ``h_k`` (and DUNL's baseline ``nu``) of

.. math:: \min_{h, \nu} \sum_x \ell\Big(x, \nu + \sum_k h_k * z_k(x)\Big)
   + \sum_k \lambda_k \|z_k(x)\|_1, \qquad \|h_k\| = 1,

where ``z(x)`` is the output of the unrolled (F)ISTA encoder (CRsAE's
encoder, whose weights are the kernels; run by :mod:`.network`). This module
holds one training step of that problem, the decoder update, for
:class:`skunroll._training.Trainer`: the model (``Model``) and its state
(``State``), the fixed segments of the training signals, the baseline's
Newton step and the kernels' curvature (``decoder_sums``,
``intercept_step``), the optimiser step on the unit sphere with its
projection (``kernel_step``), the smoothness penalty
:math:`\frac{\mu}{2}\sum_k\|\nabla h_k\|^2` and the re-centring of the
kernels in their windows during the first epochs (``align``).
"""

from dataclasses import dataclass

import numpy as np
from sklearn.utils import check_random_state

from .._kernels import _conv as _k
from .._parts.dictionaries import (
    kernel_parameter_shape,
    project_kernels,
    rank1_kernels,
    rank1_parameters,
)
from .._parts.encoders import encoder_step
from .._parts.likelihoods import curvature, link, mean, mean_derivative
from .._training import Sums, TrainingState
from .._training.optim import OPTIMIZERS
from .init import initial_kernels
from .network import ConvNetwork, forward_backward, operator_norm2
from .shapes import kernel_shape, kernel_shape_2d

#: the kernels are re-centred in their window during the first epochs
ALIGN_EPOCHS = 5
#: "auto" segment_size: signals longer than twice this are cut into segments
AUTO_SEGMENT = 16384
#: largest move of a unit-norm kernel in one "sgd" step (a trust region)
MAX_MOVE = 0.5


@dataclass
class State(TrainingState):
    """The trainer's state plus what the convolutional model updates;
    ``params`` holds the kernels ``(K, C, kh, kw)`` and the intercept
    ``(C,)`` (both restored after a non-finite step)."""

    net: ConvNetwork = None
    curvature: float = 1.0
    codes: list = None  # warm starts of the training segments
    align: bool = False  # re-centre the kernels during the first epochs

    @property
    def H(self):
        return self.params["kernels"]

    @H.setter
    def H(self, value):
        self.params["kernels"] = value

    @property
    def intercept(self):
        return self.params["intercept"]

    @intercept.setter
    def intercept(self, value):
        self.params["intercept"] = value


class Model:
    """The model of the trainer (see :mod:`skunroll._training.trainer`) for
    ``ConvolutionalDictionaryLearning``; ``data`` is ``(segments, masks)``.
    It reads the estimator's parameters when it uses them."""

    def __init__(self, estimator):
        self.est = estimator

    def initial_state(self, X4, net, mask=None):
        """The state before the first step: the initial kernels (from the
        data less each channel's mean when the intercept is fitted), the
        intercept at the link of the channels' means, the optimiser."""
        est = self.est
        rng = check_random_state(est.random_state)
        intercept = np.zeros(X4.shape[1])
        windows = X4  # the data kernels are cut from
        if est._fits_intercept():
            mu = X4.mean(axis=(0, 2, 3), dtype=np.float64)
            intercept = link(mu, est.likelihood, est.n_trials)
            if isinstance(est.kernel_init, str):
                windows = X4 - mu[None, :, None, None].astype(X4.dtype)
        H = initial_kernels(windows, est.kernel_init, est.n_components,
                            est.kernel_size, rng, mask)  # fmt: skip
        H = H.astype(X4.dtype)
        project_kernels(H, est._positive_dict, est.rank1)
        c = curvature(est.likelihood, est.n_trials, X4)
        opt = OPTIMIZERS[est.optimizer](kernel_parameter_shape(H, est.rank1))
        return State(
            params={"kernels": H, "intercept": intercept},
            optimizers={"kernels": opt},
            rng=rng,
            learning_rate=est._learning_rate(),
            net=net,
            curvature=c,
        )

    def n_units(self, data):
        return len(data[0])

    def gradients(self, state, data, idx):
        """Summed objective and kernel gradient of the segments ``idx``."""
        est = self.est
        segs, masks = data
        step = kernel_encoder_step(state.H, state.curvature)
        Xb = [segs[i] for i in idx]
        Mb = None if masks is None else [masks[i] for i in idx]
        warm = state.codes is not None and state.codes[idx[0]] is not None
        init = [state.codes[i] for i in idx] if warm else None
        res = forward_backward(Xb, state.H, state.net, step, est.gradient,
                               est.n_jobs, Mb, init, state.intercept)  # fmt: skip
        penalty = 0.0 if est.gradient == "ae-ls" else res.penalty
        energy, num, den = decoder_sums(
            state, Xb, res.codes, est.likelihood, est.n_trials, est._fits_intercept()
        )
        return Sums(
            objective=res.data_loss + penalty,
            n=idx.size,
            grads={"kernels": res.grad},
            finite=bool(np.isfinite(res.penalty)),
            stats={"energy": energy, "intercept_num": num, "intercept_den": den},
            extra=res.codes if state.codes is not None else None,
        )

    def combine_extra(self, extras):
        """The warm starts of a minibatch: its shards' codes, in order."""
        return [z for codes in extras for z in codes]

    def mean_gradients(self, state, sums):
        """The minibatch means plus the (parameter-only) smoothness term."""
        objective = sums.objective / sums.n
        grad = sums.grads["kernels"] / sums.n
        mu = self.est.kernel_smoothness
        if mu > 0:
            smooth, sgrad = smoothness(state.H, mu)
            objective += smooth
            grad += sgrad
        return objective, {"kernels": grad}

    def apply(self, state, data, idx, grads, sums):
        """The intercept's Newton step, the kernels' step and projection, and
        the warm starts of the next epoch."""
        est = self.est
        stats = sums.stats
        if est._fits_intercept():
            intercept_step(state, stats["intercept_num"], stats["intercept_den"],
                           est.likelihood)  # fmt: skip
        kernel_step(state, grads["kernels"], stats["energy"] / sums.n, est.optimizer,
                    est.rank1, est._positive_dict)  # fmt: skip
        if state.codes is not None:
            for i, z in zip(idx, sums.extra, strict=True):
                state.codes[i] = z

    def reset_optimizers(self, state):
        shape = kernel_parameter_shape(state.H, self.est.rank1)
        state.optimizers = {"kernels": OPTIMIZERS[self.est.optimizer](shape)}

    def end_epoch(self, state, data, objective, stats, n_seen):
        if state.align and state.n_epochs <= ALIGN_EPOCHS:
            align(state, self.est._positive_dict, self.est.rank1)

    def convergence_start(self, state):
        """Not converged during the alignment epochs."""
        if self.est.align_kernels and state.n_epochs <= ALIGN_EPOCHS:
            return None
        return 0

    def callback_info(self, state):
        return {"kernels": state.H}

    def period(self, state):
        return None  # partial_fit has no periods

    def fitted_attributes(self, state):
        est = self.est
        H = state.H
        ks = kernel_shape(est.kernel_size)
        attrs = {
            "_state": state,
            "_net": state.net,
            "kernels_": H.reshape(H.shape[:2] + ks).copy(),
            "n_components_": H.shape[0],
            "intercept_": state.intercept.copy(),
            "step_size_": kernel_encoder_step(H, state.curvature),
            "objective_history_": np.asarray(state.objective_history),
            "n_iter_": state.n_epochs,
            "n_steps_": state.n_steps,
            "learning_rate_": state.learning_rate,
        }
        for name in ("n_features_in_", "signal_shape_", "feature_names_in_"):
            if hasattr(est, name):
                attrs[name] = getattr(est, name)
        return attrs


def kernel_encoder_step(H, c):
    """The encoder step ``1 / (c L)`` (``_parts/encoders.py``) with ``L`` the
    squared norm of the convolution operator of ``H``."""
    return encoder_step(operator_norm2(H), c)


def segments(X4, mask, kernel_size, segment_size):
    """Fixed partition of the training signals (and masks) along their last
    axis into pieces of ``segment_size`` code positions ("auto": whole up to
    ``2 * AUTO_SEGMENT``, else ``AUTO_SEGMENT``)."""
    kw = kernel_shape_2d(kernel_size)[1]
    width = X4.shape[3] - kw + 1
    if segment_size == "auto":
        size = width if width <= 2 * AUTO_SEGMENT else AUTO_SEGMENT
    else:
        size = segment_size
    segs, masks = [], None if mask is None else []
    for i in range(X4.shape[0]):
        for lo in range(0, width, size):
            hi = min(lo + size, width)
            segs.append(X4[i, :, :, lo : hi + kw - 1])
            if mask is not None:
                masks.append(np.ascontiguousarray(mask[i, :, :, lo:hi]))
    return segs, masks


def decoder_sums(state, Xb, codes, likelihood, n_trials, fit_intercept):
    """The kernels' curvature scale and the intercept's Newton step, as sums
    over the segments ``Xb`` (so that shards of a minibatch add up).

    Returns the code energy of every kernel, ``sum_p z_kp^2`` (Gaussian),
    or for the count likelihoods the Gauss-Newton diagonal of the data
    loss in every kernel tap, ``sum_p z_kp^2 f'(eta_{p + tau})``: the rate
    under a response's peak is far higher than under its tail, and one
    curvature per kernel (their mean) overshot at the peak taps, so that
    the kernels drifted away from planted ones. Then, per channel, the
    numerator ``sum(x - f(eta))`` and denominator ``sum(f'(eta))`` of the
    intercept's Newton step (zeros without ``fit_intercept``).
    """
    gaussian = likelihood == "gaussian"
    num = np.zeros_like(state.intercept)
    den = np.zeros_like(state.intercept)
    if gaussian:
        energy = sum(np.einsum("kij,kij->k", z, z, dtype=np.float64) for z in codes)
        if not fit_intercept:
            return energy, num, den
    else:
        energy = np.zeros(state.H.shape)  # the per-tap curvature
    H = state.H
    for x, z in zip(Xb, codes, strict=True):
        e = np.empty(x.shape, dtype=x.dtype)
        _k.synthesis(z, H.astype(x.dtype, copy=False), e)
        eta = e + state.intercept[:, None, None]
        d = mean_derivative(eta, likelihood, n_trials)
        num += (x - mean(eta, likelihood, n_trials)).sum(axis=(1, 2))
        den += d.sum(axis=(1, 2))
        if not gaussian:
            _k.add_kernel_correlation(d.astype(z.dtype), z * z, 1.0, energy)
    return energy, num, den


def intercept_step(state, num, den, likelihood):
    """Every channel's intercept takes one Newton step on the data loss at
    the minibatch's codes, ``nu += sum(x - f(eta)) / sum(f'(eta))`` (exact
    for the Gaussian; at most 1 in magnitude for the count likelihoods, on
    their link scale)."""
    step = num / np.maximum(den, 1e-12)
    if likelihood != "gaussian":  # a Newton step on a link scale, at most 1
        step = np.clip(step, -1.0, 1.0)
    state.intercept += step


def kernel_step(state, grad, energy, optimizer, rank1, positive_dict):
    """Optimiser step on the sphere, then the projection.

    The gradient's component along each (unit-norm) kernel is removed
    first: the projection undoes it, and Adam's per-entry scaling would
    turn it into a drift. For "sgd", the gradient is divided by
    ``energy`` (per signal): the code energy ``sum(z_k ** 2)`` of every
    kernel, or for the count likelihoods a curvature per kernel tap (see
    :func:`decoder_sums`), and the step is shortened to move the kernel by
    at most ``MAX_MOVE`` (codes near zero would otherwise give huge steps).
    """
    H = state.H
    if optimizer == "sgd":
        if energy.ndim == 1:  # one curvature per kernel
            energy = energy[:, None, None, None]
        else:  # per entry: floored at a tenth of the kernel's mean
            energy = np.maximum(
                energy, 0.1 * energy.mean(axis=(1, 2, 3), keepdims=True)
            )
        grad = grad / np.maximum(energy, 1e-12 * energy.max() + 1e-300)
    if not rank1:
        radial = np.einsum("kcij,kcij->k", grad, H)
        grad = grad - radial[:, None, None, None] * H
        if optimizer == "sgd":  # a unit kernel moves by at most MAX_MOVE
            size = state.learning_rate * np.sqrt(np.einsum("kcij,kcij->k", grad, grad))
            grad *= np.minimum(1.0, MAX_MOVE / np.maximum(size, 1e-300))[
                :, None, None, None
            ]
        state.optimizers["kernels"].step(H, grad, state.learning_rate)
    else:
        params, G = rank1_parameters(H, grad)
        state.optimizers["kernels"].step(params, G, state.learning_rate)
        rank1_kernels(params, H)
    project_kernels(H, positive_dict, rank1)


def align(state, positive_dict, rank1):
    """Shift every kernel so that its energy is centred in its window (and
    its warm-start codes the other way)."""
    H = state.H
    moved = []
    for k in range(H.shape[0]):
        shifts = centring_shifts(H[k])
        if any(shifts):
            H[k] = shift(H[k], shifts)
            moved.append(k)
            for z in state.codes or ():
                if z is not None:  # an event's onset moves the other way
                    z[k] = shift(z[k][None], (-shifts[0], -shifts[1]))[0]
    if moved:
        project_kernels(H, positive_dict, rank1)
        if hasattr(state.optimizers["kernels"], "reset_rows"):
            state.optimizers["kernels"].reset_rows(moved)


def smoothness(H, mu):
    """``mu/2 sum ||diff h||^2`` along the spatial axes, and its gradient."""
    value = 0.0
    grad = np.zeros(H.shape)
    for axis in (2, 3):
        if H.shape[axis] < 2:
            continue
        d = np.diff(H.astype(np.float64), axis=axis)
        value += 0.5 * mu * float(np.sum(d * d))
        pad = [(0, 0)] * 4
        pad[axis] = (1, 1)
        dp = np.pad(d, pad)
        grad += mu * -np.diff(dp, axis=axis)
    return value, grad


def centring_shifts(h, fraction=0.98):
    """Integer shifts along (rows, columns) that centre, in the window, the
    shortest interval holding ``fraction`` of the kernel's energy (no shift
    for a kernel that fills its window)."""
    e = np.square(h.astype(np.float64)).sum(axis=0)  # (kh, kw)
    total = e.sum()
    shifts = []
    for axis in (0, 1):
        prof = e.sum(axis=1 - axis)
        n = prof.size
        if total <= 0 or n == 1:
            shifts.append(0)
            continue
        cum = np.concatenate([[0.0], np.cumsum(prof)])
        best = (n, 0, n - 1)
        for lo in range(n):  # shortest [lo, hi] with enough energy
            hi = int(np.searchsorted(cum, cum[lo] + fraction * total)) - 1
            if hi < n and hi - lo < best[0]:
                best = (hi - lo, lo, hi)
        _, lo, hi = best
        shifts.append(int(np.fix((lo + hi - (n - 1)) / 2)))
    return tuple(shifts)


def shift(h, shifts):
    """Move the kernel content by ``-shifts`` (zero fill)."""
    out = np.zeros_like(h)
    sr, sc = shifts
    kh, kw = h.shape[1:]
    src_r = slice(max(sr, 0), kh + min(sr, 0))
    dst_r = slice(max(-sr, 0), kh + min(-sr, 0))
    src_c = slice(max(sc, 0), kw + min(sc, 0))
    dst_c = slice(max(-sc, 0), kw + min(-sc, 0))
    out[:, dst_r, dst_c] = h[:, src_r, src_c]
    return out
