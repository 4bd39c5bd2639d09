"""Private dispatcher of the unrolled auto-encoder: chunks, threads, kernels.

``forward_backward`` runs the numba kernels of ``_kernels/_unrolled.py`` over
fixed-size chunks of samples in the package's thread pool and sums the
per-chunk gradients in chunk order, so results do not depend on ``n_jobs``.
Nothing here validates input: the estimators do.
"""

from dataclasses import dataclass

import numpy as np

from .._kernels import _unrolled as _k
from .._parallel import map_in_order, single_threaded_blas
from .._parts.encoders import ENCODERS
from .._parts.likelihoods import LIKELIHOODS
from .._parts.priors import PRIORS, prox_parameters

#: rows per kernel call; fixed, so that sums do not depend on n_jobs
CHUNK_ROWS = 128
_NO_WEIGHTS = np.empty(0, dtype=np.float64)

MODES = {
    "forward": _k.FORWARD,
    "dec": _k.DEC,
    "ae-ls": _k.AE_LS,
    "ae-lasso": _k.AE_LASSO,
}


@dataclass(frozen=True)
class Network:
    """The unrolled encoder/decoder, everything but the dictionary: the
    encoder (a name of ``ENCODERS``) and its depth, the prior and the
    likelihood.

    ``step`` is the encoder step ``a`` (``1 / (c L)``), held constant in the
    gradient.
    """

    n_unroll: int
    encoder: str
    prior: str
    alpha: float
    negative_alpha: float
    groups: np.ndarray
    likelihood: str = "gaussian"
    n_trials: float = 1.0

    def kernel_args(self, step):
        p1, p2 = prox_parameters(self.prior, step, self.alpha, self.negative_alpha)
        betas = ENCODERS[self.encoder].momentum(self.n_unroll)
        return betas, PRIORS[self.prior], p1, p2, self.groups


@dataclass
class Result:
    """Summed losses over the samples, summed gradient and the codes."""

    data_loss: float
    penalty: float
    grad: np.ndarray
    codes: np.ndarray


def forward_backward(
    X, D, net, step, mode="ae-ls", n_jobs=None, form="auto", weights=None, mask=None,
    init=None,
):  # fmt: skip
    """Codes, summed loss and summed ``D``-gradient of the unrolled network.

    ``mode`` is "forward" (codes and losses only), "dec", "ae-ls" or
    "ae-lasso". ``form`` is "auto" (Gram form for the Gaussian likelihood
    without a mask), "gram" or "explicit" (the general kernel). ``weights``
    (n_samples,) weights the loss of every sample, and so its gradient;
    ``mask`` (n_samples, n_features, 1 where observed, 0 where not) removes
    entries from the encoder's residual and the loss (general kernel only).
    ``init`` (n_samples, n_components) warm-starts the encoder (Gram form of
    the forward pass only).
    """
    n = X.shape[0]
    k = D.shape[0]
    gram_form = form == "gram" or (
        form == "auto" and net.likelihood == "gaussian" and mask is None
    )
    if gram_form and net.likelihood != "gaussian":
        raise ValueError("the Gram form needs the Gaussian likelihood")
    if gram_form and mask is not None:
        raise ValueError("the Gram form has no mask; use form='explicit'")
    codes = np.zeros((n, k), dtype=X.dtype)
    if init is not None:
        if mode != "forward" or not gram_form:
            raise ValueError("init warm-starts the Gram form of the forward pass only")
        codes[:] = init
    if weights is not None:
        weights = np.ascontiguousarray(weights, dtype=np.float64)
    if mask is not None:
        mask = np.ascontiguousarray(mask, dtype=X.dtype)
    betas, prior, p1, p2, groups = net.kernel_args(step)
    code = MODES[mode]
    n_chunks = -(-n // CHUNK_ROWS)

    def run(c):
        sl = slice(c * CHUNK_ROWS, min((c + 1) * CHUNK_ROWS, n))
        losses = np.zeros(2)
        grad = np.zeros_like(D) if code != _k.FORWARD else np.zeros((1, 1), D.dtype)
        if gram_form:
            X_c = X[sl]
            shape = (net.n_unroll, X_c.shape[0], k) if code >= _k.AE_LS else (0, 0, 0)
            Ys = np.empty(shape, dtype=D.dtype)
            Vs = np.empty(shape, dtype=D.dtype)
            args = (
                X_c, X_c @ D.T, D, gram, step, betas, prior, p1, p2, groups,
                net.alpha, net.negative_alpha, code, codes[sl], grad, Ys, Vs, losses,
            )  # fmt: skip
            # no weights (length 0) or mask (0, 0) mean all ones / all observed
            _k.unrolled_gram_weighted_chunk(
                *args, weights[sl] if weights is not None else _NO_WEIGHTS
            )
            if code >= _k.AE_LS:
                S = Vs.reshape(-1, k).T @ Ys.reshape(-1, k)
                grad -= step * ((S + S.T) @ D)
        else:
            args = (
                X[sl], D, step, betas, prior, p1, p2, groups,
                LIKELIHOODS[net.likelihood], net.n_trials, net.alpha,
                net.negative_alpha, code, codes[sl], grad, losses,
            )  # fmt: skip
            _k.unrolled_weighted_chunk(
                *args,
                weights[sl] if weights is not None else _NO_WEIGHTS,
                mask[sl] if mask is not None else np.empty((0, 0), X.dtype),
            )
        return losses, grad

    with single_threaded_blas():
        gram = D @ D.T if gram_form else None
    results = map_in_order(run, n_chunks, n_jobs)
    losses = np.sum([r[0] for r in results], axis=0)
    grad = None
    if code != _k.FORWARD:
        grad = results[0][1].astype(np.float64)
        for r in results[1:]:
            grad += r[1]
    return Result(float(losses[0]), float(losses[1]), grad, codes)
