"""Private dispatcher of the unrolled auto-encoder: chunks, threads, kernels.

``forward_backward`` runs the numba kernels of ``_kernels/_unrolled.py`` over
fixed-size chunks of samples in the package's thread pool and sums the
per-chunk gradients in chunk order, so results do not depend on ``n_jobs``.
Nothing here validates input: the estimators do.

The sparse-autoencoder encoders (``kind`` "pursuit" and "shallow" in
``ENCODERS``) go through ``_autoencoder_forward_backward``: chunks of
``SAE_CHUNK_ROWS`` rows, each densified (sparse ``X``), centred by the
pre-bias and multiplied by ``D^T`` with BLAS, then the kernels of
``_kernels/_pursuit.py``; their codes come back as a CSR matrix assembled
chunk by chunk, so memory stays O(chunk x n_components).
"""

from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from .._kernels import _pursuit as _p
from .._kernels import _unrolled as _k
from .._parallel import map_in_order, single_threaded_blas
from .._parts.encoders import ENCODERS
from .._parts.likelihoods import LIKELIHOODS
from .._parts.priors import PRIORS, prox_parameters

#: rows per kernel call; fixed, so that sums do not depend on n_jobs
CHUNK_ROWS = 128
#: rows per chunk of the sparse-autoencoder encoders (their per-chunk gradient
#: is a full (n_components, n_features) array, so larger chunks add less)
SAE_CHUNK_ROWS = 512
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
    n_nonzero_coefs: int = 0
    tol: float = 0.0
    positive: bool = False

    @property
    def autoencoder(self):
        return ENCODERS[self.encoder].autoencoder

    def kernel_args(self, step):
        p1, p2 = prox_parameters(self.prior, step, self.alpha, self.negative_alpha)
        betas = ENCODERS[self.encoder].momentum(self.n_unroll)
        return betas, PRIORS[self.prior], p1, p2, self.groups


@dataclass
class Result:
    """Summed losses over the samples, summed gradient and the codes (a CSR
    matrix for the sparse-autoencoder encoders, with the gradients of the
    pre-bias and encoder bias and the per-sample losses)."""

    data_loss: float
    penalty: float
    grad: np.ndarray
    codes: object
    grad_intercept: np.ndarray = None
    grad_encoder_bias: np.ndarray = None
    row_loss: np.ndarray = None


def forward_backward(
    X, D, net, step, mode="ae-ls", n_jobs=None, form="auto", weights=None, mask=None,
    init=None, intercept=None, encoder_bias=None,
):  # fmt: skip
    """Codes, summed loss and summed ``D``-gradient of the unrolled network.

    ``mode`` is "forward" (codes and losses only), "dec", "ae-ls" or
    "ae-lasso". ``form`` is "auto" (Gram form for the Gaussian likelihood
    without a mask), "gram" or "explicit" (the general kernel). ``weights``
    (n_samples,) weights the loss of every sample, and so its gradient;
    ``mask`` (n_samples, n_features, 1 where observed, 0 where not) removes
    entries from the encoder's residual and the loss (general kernel only).
    ``init`` (n_samples, n_components) warm-starts the encoder (Gram form of
    the forward pass only). ``intercept`` and ``encoder_bias`` are the
    pre-bias and encoder bias of the sparse-autoencoder encoders (see
    ``_autoencoder_forward_backward``).
    """
    if net.autoencoder:
        return _autoencoder_forward_backward(
            X, D, net, mode, n_jobs, intercept, encoder_bias
        )
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


_SAE_MODES = {"forward": _p.FORWARD, "dec": _p.DEC, "ae-ls": _p.AE, "ae-lasso": _p.AE}


def gram_matrix(D, n_jobs=None, block=512):
    """``D D^T`` by blocks of rows on the package's threads: each block row
    computes its upper part (``D_i D_{j >= i}^T``, half the products) and
    mirrors it below the diagonal."""
    k = D.shape[0]
    G = np.empty((k, k), dtype=D.dtype)

    def run(c):
        lo, hi = c * block, min((c + 1) * block, k)
        upper = np.dot(D[lo:hi], D[lo:].T)
        G[lo:hi, lo:] = upper
        G[hi:, lo:hi] = upper[:, hi - lo :].T

    map_in_order(run, -(-k // block), n_jobs)
    return G


def _autoencoder_forward_backward(
    X, D, net, mode="ae-ls", n_jobs=None, intercept=None, encoder_bias=None
):
    """Codes (CSR), summed losses and gradients of a sparse-autoencoder
    encoder (``mp``, ``topk``, ``relu``); see ``_kernels/_pursuit.py``.

    ``intercept`` (n_features,) is the pre-bias ``b`` (None: zeros) and
    ``encoder_bias`` (n_components,) the shallow encoders' ``b_enc``. ``X``
    may be a scipy sparse matrix (densified chunk by chunk). ``mode``
    "ae-ls" and "ae-lasso" both differentiate through the encoder; the
    penalty ``alpha ||z||_1`` enters the loss when ``net.alpha > 0``.
    """
    n, m = X.shape
    k = D.shape[0]
    dt = D.dtype
    encoder = ENCODERS[net.encoder]
    code = _SAE_MODES[mode]
    pursuit = encoder.kind == "pursuit"
    n_top = net.n_nonzero_coefs if encoder.top_k else 0
    cap = net.n_nonzero_coefs if encoder.sparsity_steps else k
    b = np.zeros(m, dtype=dt) if intercept is None else intercept.astype(dt, copy=False)
    b_enc = None
    if not pursuit and encoder_bias is not None:
        b_enc = encoder_bias.astype(dt, copy=False)
    gram = gram_matrix(D, n_jobs) if pursuit else None
    DT = D.T
    sparse_X = sp.issparse(X)
    n_chunks = -(-n // SAE_CHUNK_ROWS)
    row_loss = np.empty(n, dtype=np.float64)

    def run(c):
        sl = slice(c * SAE_CHUNK_ROWS, min((c + 1) * SAE_CHUNK_ROWS, n))
        X_c = X[sl]
        X_c = np.ascontiguousarray(X_c.toarray() if sparse_X else X_c, dtype=dt)
        n_c = X_c.shape[0]
        A = np.dot(X_c - b, DT)
        if b_enc is not None:
            A += b_enc
        idx = np.empty((n_c, cap), dtype=np.int32)
        val = np.empty((n_c, cap), dtype=dt)
        nnz = np.empty(n_c, dtype=np.int64)
        losses = np.zeros(2)
        grads = (
            np.zeros((k, m) if code != _p.FORWARD else (1, 1), dtype=dt),
            np.zeros(m),
            np.zeros(k),
        )
        if pursuit:
            Ai = A.view(np.int32 if dt == np.float32 else np.int64)
            mask = Ai.dtype.type(-1 if net.positive else np.iinfo(Ai.dtype).max)
            _p.mp_chunk(
                X_c, A, Ai, D, gram, b, net.n_nonzero_coefs, mask, net.tol,
                net.alpha, code, idx, val, nnz, row_loss[sl], grads[0], grads[1],
                losses,
            )  # fmt: skip
        else:
            _p.shallow_chunk(
                X_c, A, D, b, n_top, net.positive, net.alpha, code, idx, val,
                nnz, row_loss[sl], *grads, losses,
            )  # fmt: skip
        keep = np.arange(cap) < nnz[:, None]
        return losses, grads, nnz, idx[keep], val[keep]

    results = map_in_order(run, n_chunks, n_jobs)
    losses = np.sum([r[0] for r in results], axis=0)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.concatenate([r[2] for r in results]), out=indptr[1:])
    codes = sp.csr_matrix(
        (
            np.concatenate([r[4] for r in results]),
            np.concatenate([r[3] for r in results]),
            indptr,
        ),
        shape=(n, k),
    )
    result = Result(float(losses[0]), float(losses[1]), None, codes, row_loss=row_loss)
    if code != _p.FORWARD:
        grads = [g.astype(np.float64) for g in results[0][1]]
        for r in results[1:]:
            for total, g in zip(grads, r[1], strict=True):
                total += g
        result.grad, result.grad_intercept, result.grad_encoder_bias = grads
    return result
