"""Private dispatcher of factor analysis: chunks, threads, the kernels.

Nothing here validates input. Every function works in the estimator's
internal units (standardised columns) and returns *summed* values and
gradients of quantities to **maximise** (the log-likelihood, or the unrolled
network's surrogate of it); the estimator negates them for the trainer.

The data of a chunk are ``Xt`` (n, p), centred by the current mean and zero
where missing, and ``M`` (n, p), 1 where observed. The parameters are the
loadings ``W`` (p, q), the mean ``m`` (p,) and the log noise variances
``log_psi`` (p,).

Three gradients of the mean log-likelihood, all by the Fisher identity
``grad log p(x) = E_{z|x}[grad log p(x, z)]``, which for factor analysis
needs the posterior mean ``mu`` and covariance ``Sigma`` of every sample:

- ``exact_sums``: ``mu`` and ``Sigma`` by a Cholesky factorisation per sample
  (gradient EM);
- ``unrolled_sums(network=False)``: ``mu`` and ``Sigma ~ mean_k sigma_k
  sigma_k^T`` from ``n_steps`` conjugate-gradient steps on ``A [mu,
  sigma_1..K] = [b, s_1..K]``, the probes ``s_k ~ N(0, A)`` (the *output*
  gradient of probabilistic unrolling);
- ``unrolled_sums(network=True)``: the gradient of the network's surrogate
  ``S = log p(x, mu_I) + mean_k (s_k^T sigma_k - sigma_k^T A sigma_k / 2)``
  through the unrolled steps (the *network* gradient), the probes held
  fixed. Its partial derivative at fixed solver outputs is the output
  gradient; back-propagation adds the solver outputs' dependence on the
  parameters, weighted by the residuals ``b - A mu`` and ``s_k - A
  sigma_k``, so that the gradient's error is the product of two solver
  errors (at the exact solutions ``S`` is ``log p(x, mu) + const``, whose
  gradient, ``mu`` moving with the parameters, is that of ``log p(x) + log
  det(A) / 2``, and ``E[s^T A^{-1} s / 2]`` gives the gradient of ``-log
  det(A) / 2``).
"""

import numpy as np
from scipy.linalg import lapack

from .._kernels._unrolled_cg import (
    LOG_2PI,
    cg_backward,
    cg_forward,
    exact_chunk,
    output_terms,
    pcg_forward,
)
from .._parallel import map_in_order

#: rows per kernel call; fixed, so that sums do not depend on n_jobs
CHUNK_ROWS = 128


def _chunks(n):
    return [slice(s, min(s + CHUNK_ROWS, n)) for s in range(0, n, CHUNK_ROWS)]


def _sum(results, keys):
    return {k: np.sum([r[k] for r in results], axis=0) for k in keys}


# ------------------------------------------------------------------ exact


def exact_posterior(Xt, M, W, log_psi, *, want_sigma=False, accumulate=False):
    """Exact posterior means (n, q), marginal log-likelihoods (n,) and, with
    ``want_sigma``, covariances (n, q, q) of one chunk; with ``accumulate``
    also ``(acc, tot)`` (see ``exact_chunk``)."""
    dt = Xt.dtype
    n, p = Xt.shape
    q = W.shape[1]
    inv_psi = np.exp(-log_psi)
    G = np.eye(q) + (W.T * inv_psi) @ W
    W_ = np.ascontiguousarray(W, dtype=dt)
    mu = np.empty((n, q), dtype=dt)
    loglik = np.empty(n)
    sigma = np.empty((n if want_sigma else 0, q, q))
    acc = np.zeros((p if accumulate else 0, q))
    tot = np.zeros((q, q))
    exact_chunk(
        np.ascontiguousarray(Xt),
        np.ascontiguousarray(M, dtype=dt),
        W_,
        inv_psi.astype(dt),
        log_psi.astype(np.float64),
        G,
        mu,
        loglik,
        want_sigma,
        sigma,
        acc,
        tot,
    )
    return mu, loglik, sigma, (acc, tot)


def _exact_chunk_sums(Xt, M, W, log_psi):
    inv_psi = np.exp(-log_psi)
    mu, loglik, _, (acc, tot) = exact_posterior(Xt, M, W, log_psi, accumulate=True)
    mu = mu.astype(np.float64)
    E = (Xt - mu @ W.T.astype(Xt.dtype)) * M
    E = E.astype(np.float64)
    DE = E * inv_psi
    return {
        "value": float(loglik.sum()),
        "W": DE.T @ mu,
        "m": DE.sum(axis=0),
        "log_psi": -0.5 * M.sum(axis=0) + 0.5 * inv_psi * np.sum(E * E, axis=0),
        "acc": acc,
        "tot": tot,
    }


def exact_sums(Xt, M, W, log_psi, n_jobs=None):
    """Summed exact log-likelihood of the rows and its gradients with respect
    to ``W``, ``m`` and ``log_psi`` (gradient EM)."""
    parts = _chunks(Xt.shape[0])
    results = map_in_order(
        lambda c: _exact_chunk_sums(Xt[parts[c]], M[parts[c]], W, log_psi),
        len(parts),
        n_jobs,
    )
    s = _sum(results, ("value", "W", "m", "log_psi", "acc", "tot"))
    inv_psi = np.exp(-log_psi)
    # S_j w_j, S_j the sum of the covariances of the samples observing j
    SW = W @ s["tot"] + s["acc"]
    gW = s["W"] - inv_psi[:, None] * SW
    g_log_psi = s["log_psi"] + 0.5 * inv_psi * np.sum(W * SW, axis=1)
    return s["value"], {"W": gW, "m": s["m"], "log_psi": g_log_psi}


def exact_loglik(Xt, M, W, log_psi, n_jobs=None):
    """Exact marginal log-likelihoods (n,) and posterior means (n, q)."""
    parts = _chunks(Xt.shape[0])
    results = map_in_order(
        lambda c: exact_posterior(Xt[parts[c]], M[parts[c]], W, log_psi)[:2],
        len(parts),
        n_jobs,
    )
    if not results:
        return np.empty(0), np.empty((0, W.shape[1]), dtype=Xt.dtype)
    return (
        np.concatenate([r[1] for r in results]),
        np.concatenate([r[0] for r in results]),
    )


# ------------------------------------------------------------------ unrolled


def rademacher(rng, shape, dtype):
    """Independent random signs (+-1) of ``shape``, from ``rng``'s bytes (a
    bit per sign: far cheaper than normal draws). Zero mean and identity
    covariance, all the probes need (``draw_probes``)."""
    size = int(np.prod(shape))
    bits = np.unpackbits(np.frombuffer(rng.bytes(-(-size // 8)), dtype=np.uint8))
    signs = bits[:size].astype(dtype)
    signs *= 2
    signs -= 1
    return signs.reshape(shape)


def draw_probes(W, log_psi, M, noise_p, noise_q):
    """Probes ``s = W^T D^{1/2} a + e ~ N(0, A)`` for every sample: ``a`` =
    ``noise_p`` (n, K, p) and ``e`` = ``noise_q`` (n, K, q) independent with
    zero mean and identity covariance (standard normal, or the estimator's
    random signs: ``E[s s^T] = A`` either way, all the gradients use, though
    ``s`` is Gaussian only with normal noise); returns (q, n, K)."""
    n, K, p = noise_p.shape
    sd = np.exp(-0.5 * log_psi).astype(noise_p.dtype) * M  # (n, p)
    Z = noise_p * sd[:, None, :]
    S = Z.reshape(n * K, p) @ W.astype(noise_p.dtype)  # (n K, q)
    S += noise_q.reshape(n * K, -1)
    return np.ascontiguousarray(S.reshape(n, K, -1).transpose(2, 0, 1))


def preconditioner(W, d, kind):
    """The (q, q) preconditioner ``(I + W^T diag(d_bar) W)^{-1}`` of a chunk
    (float64), the inverse of an approximation of every sample's precision
    ``A_i = I + W^T diag(d_i) W``: ``kind="mean"`` takes ``d_bar`` the
    chunk's mean of ``d_i`` (so the approximation is the mean of the
    ``A_i``), ``kind="full"`` every row observed (``d_bar = 1 / psi``, pass
    it as ``d``, shape (p,))."""
    if kind == "mean":  # the mean over the chunk, as a product (a fast reduction)
        d_bar = d @ np.full(d.shape[1], 1.0 / d.shape[1], dtype=d.dtype)
    else:
        d_bar = d
    # the product in W's dtype (an approximation need not be exact), the
    # factorisation in float64
    A = ((W.T * d_bar.astype(W.dtype)) @ W).astype(np.float64)
    A.flat[:: A.shape[0] + 1] += 1.0
    # A^{-1} = L^{-T} L^{-1} (LAPACK potrf: the factor with its upper half
    # zeroed; trtri: its inverse)
    L, info = lapack.dpotrf(A, lower=1)
    if info == 0:
        L, info = lapack.dtrtri(L, lower=1)
    if info != 0:  # not positive definite (non-finite parameters)
        return np.full(A.shape, np.nan)
    return L.T @ L


def unrolled_chunk(Xt, M, W, log_psi, S, n_steps, network, precondition=None):
    """Surrogate value and gradients of one chunk (see the module docstring).

    ``S`` (q, n, K): the probes' right-hand sides, held fixed.
    ``precondition`` (``None``, ``"mean"`` or ``"full"``, see
    ``preconditioner``): preconditioned CG steps; only without ``network``
    (the reverse pass does not differentiate the preconditioner). Returns a
    dict of the summed surrogate ``value``, the gradients ``W``, ``m``,
    ``log_psi`` (float64), the solver outputs ``mu`` (q, n) and ``sigma``
    (q, n, K), and the solver's final relative residual ``residual``
    (summed over samples).
    """
    dt = Xt.dtype
    n, p = Xt.shape
    q, _, K = S.shape
    r = K + 1
    N = n * r
    inv_psi64 = np.exp(-log_psi)
    inv_psi = inv_psi64.astype(dt)
    W_ = np.ascontiguousarray(W, dtype=dt)
    Wt = np.ascontiguousarray(W_.T)
    d = np.ascontiguousarray((M * inv_psi).T)  # (p, n)
    D = np.repeat(d, r, axis=1)  # (p, N): d per right-hand side
    Xd = Xt * inv_psi  # zero where missing
    Bm = np.empty((q, n, r), dtype=dt)
    Bm[:, :, 0] = Wt @ Xd.T
    Bm[:, :, 1:] = S
    Bm = Bm.reshape(q, N)
    shape_h = (n_steps, q, N) if network else (0, 1, 1)
    P_h = np.empty(shape_h, dtype=dt)
    V_h = np.empty(shape_h, dtype=dt)
    R_h = np.empty(shape_h, dtype=dt)
    Y_h = np.empty((n_steps, p, N) if network else (0, 1, 1), dtype=dt)
    coef = np.zeros((4, n_steps + 1, N) if network else (4, 1, 1))
    rel_tol = float(np.finfo(dt).eps) ** 2
    if precondition is not None:
        if network:
            raise ValueError("the network gradient has no preconditioned solver")
        Pinv = preconditioner(
            W_, d if precondition == "mean" else inv_psi64, precondition
        ).astype(dt)
        X, U = pcg_forward(W_, Wt, D, Bm, Pinv, n_steps, rel_tol)
        U = U.reshape(p, n, r)
    else:
        X = cg_forward(
            W_, Wt, D, Bm, n_steps, rel_tol, network, P_h, V_h, Y_h, R_h, coef
        )
        U = (W_ @ X).reshape(p, n, r)
    Xr = X.reshape(q, n, r)
    mu, sig = Xr[:, :, 0], Xr[:, :, 1:]
    U2 = U.reshape(p, N)
    G = np.empty((p, N), dtype=dt)
    gm = np.zeros(p)
    g_log_psi = np.zeros(p)
    M_cols = np.zeros(p)  # observed count per feature
    quad_e, quad_probe = output_terms(
        Xt, M, U2, d, inv_psi64, r, G, gm, g_log_psi, M_cols
    )
    g_log_psi -= 0.5 * M_cols
    sig64 = sig.astype(np.float64)
    value = -0.5 * (
        (M_cols.sum() + n * q) * LOG_2PI
        + float(M_cols @ log_psi)
        + quad_e
        + float(np.sum(np.square(mu, dtype=np.float64)))
    )
    value += (
        float(np.sum(S * sig64)) - 0.5 * (float(np.sum(sig64 * sig64)) + quad_probe)
    ) / K
    # the output gradient: the Fisher identity with Sigma ~ mean sigma sigma^T,
    # sum_i [D e_i mu_i^T - sum_k D_i W sigma_ik sigma_ik^T / K] = G X^T
    gW = (G @ X.T).astype(np.float64)
    out = {"value": value, "mu": mu, "sigma": sig}
    if network:
        # adjoint of the solver outputs: dS/dmu = b - A mu, dS/dsigma = (s - A sigma)/K
        T = -U
        T[:, :, 0] += Xt.T
        T *= d[:, :, None]
        H = (Wt @ T.reshape(p, N)).reshape(q, n, r)
        Xbar = np.empty((q, n, r), dtype=dt)
        Xbar[:, :, 0] = H[:, :, 0] - mu
        Xbar[:, :, 1:] = (S - sig + H[:, :, 1:]) / K
        gW_net = np.zeros((p, q), dtype=dt)
        gd = np.zeros((p, n), dtype=dt)
        Bbar = cg_backward(
            W_, Wt, D, r, Xbar.reshape(q, N), n_steps, P_h, V_h, Y_h, R_h, coef,
            Bm, gW_net, gd,
        )  # fmt: skip
        bbar = Bbar.reshape(q, n, r)[:, :, 0]  # the probes' adjoints are dropped
        # b = W^T diag(d) (x - m)
        Wb = W_ @ bbar  # (p, n)
        gW += gW_net.astype(np.float64) + Xd.T.astype(np.float64) @ bbar.T
        gm -= np.sum(d * Wb, axis=1, dtype=np.float64)
        gd += Xt.T * Wb
        # d_ji = M_ij / psi_j, d/dlog psi_j = -d_ji d/dd_ji
        g_log_psi -= np.sum(d.astype(np.float64) * gd, axis=1)
    out.update(W=gW, m=gm, log_psi=g_log_psi)
    return out


def unrolled_sums(
    Xt, M, W, log_psi, probes, n_steps, network, n_jobs=None, precondition=None
):
    """Summed surrogate value and gradients over chunks (see
    ``unrolled_chunk``). ``probes``: the probes' right-hand sides (q, n, K),
    or the noise ``(a, e)`` of ``draw_probes``, which then
    draws them chunk by chunk."""
    parts = _chunks(Xt.shape[0])

    def run(c):
        sl = parts[c]
        if isinstance(probes, tuple):
            S = draw_probes(W, log_psi, M[sl], probes[0][sl], probes[1][sl])
        else:
            S = np.ascontiguousarray(probes[:, sl])
        return unrolled_chunk(
            Xt[sl], M[sl], W, log_psi, S, n_steps, network, precondition
        )

    results = map_in_order(run, len(parts), n_jobs)
    s = _sum(results, ("value", "W", "m", "log_psi"))
    return float(s["value"]), {k: s[k] for k in ("W", "m", "log_psi")}
