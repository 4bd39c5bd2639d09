r"""The archetypal parametrisation of a dictionary (A-SAE / RA-SAE).

Fel et al. (ICML 2025) keep every atom in the convex hull of the data, up to a
small relaxation:

.. math::

    D = \operatorname{normalise}(W C + \Lambda), \qquad
    W \ge 0,\ W \mathbf{1} = \mathbf{1}, \qquad \|\Lambda_i\|_2 \le \delta,

with ``C`` (n_candidates, n_features) fixed candidate points, ``W``
(n_components, n_candidates) row-stochastic and ``Lambda`` (n_components,
n_features) the relaxation (``delta = 0``: A-SAE; ``delta > 0``: RA-SAE).

skunroll's atoms are unit-norm (every encoder and the encoder step assume
it), so the fused dictionary is normalised row by row: an atom is the
*direction* of a point of the relaxed hull. The candidates are scaled to
unit norm too, which leaves the cone of directions ``normalise(W C)`` spans
unchanged and makes ``delta`` a fraction of an atom's norm, whatever the
scale of the data.

The trained parameters are ``W`` and ``Lambda``: the gradient with respect to
``D`` (whatever encoder computed it) is pulled back through the normalisation
and the product, the optimiser steps ``W`` and ``Lambda``, and they are
projected back: rows of ``W`` onto the simplex (exact Euclidean projection),
rows of ``Lambda`` onto the ball of radius ``delta``.
"""

import warnings

import numpy as np
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning

from .._kernels._archetypal import project_simplex_rows

#: k-means runs on at most this many samples per candidate, for at most
#: KMEANS_MAX_ITER Lloyd iterations (candidates need not be converged
#: centroids; on the benchmark's data k-means stopped after 6 to 17)
SUBSAMPLE_PER_CANDIDATE = 20
KMEANS_MAX_ITER = 30
#: default number of candidates per atom, capped at the number of samples and
#: at MAX_DEFAULT_CANDIDATES: W (and Adam's two moments of it) is dense,
#: n_components x n_candidates
CANDIDATES_PER_ATOM = 4
MAX_DEFAULT_CANDIDATES = 4096
#: atoms whose |cos| exceeds this are copies (the projection onto the simplex
#: snaps atoms onto the same vertex, where they share its samples equally, so
#: the usage rule of free dictionaries never re-draws them)
COPY_COHERENCE = 0.99
#: weight of the random (Dirichlet) part of an atom's initial weights when
#: there are fewer candidates than atoms (so that atoms start distinct)
INIT_MIX = 0.2


def default_n_candidates(n_components, n_samples):
    return min(n_samples, CANDIDATES_PER_ATOM * n_components, MAX_DEFAULT_CANDIDATES)


def _unit_rows(C, rng):
    """Rows scaled to unit norm (by their largest entry first, so that no
    scale of the data overflows or underflows); a zero row becomes a random
    unit vector."""
    peak = np.abs(C).max(axis=1, keepdims=True)
    C /= np.where(peak > 0, peak, 1).astype(C.dtype)
    norms = np.linalg.norm(C, axis=1)
    zero = ~(norms > 0)
    if np.any(zero):
        C[zero] = rng.standard_normal((int(zero.sum()), C.shape[1]))
        norms[zero] = np.linalg.norm(C[zero], axis=1)
    C /= norms[:, None].astype(C.dtype)
    return C


def candidate_points(X, n_candidates, rng, method="kmeans"):
    """Unit-norm candidates: k-means centroids of a random subsample of
    ``X`` (at most ``SUBSAMPLE_PER_CANDIDATE * n_candidates`` samples; the
    subsample itself when it has no more points than ``n_candidates``), or
    distinct random samples (``method="samples"``)."""
    n_samples = X.shape[0]
    n_sub = n_candidates if method == "samples" else n_samples
    n_sub = min(n_sub, SUBSAMPLE_PER_CANDIDATE * n_candidates)
    rows = np.sort(rng.choice(n_samples, size=n_sub, replace=False))
    sub = np.asarray(X[rows])
    peak = float(np.abs(sub).max()) if sub.size else 0.0
    if peak > 0 and np.isfinite(peak):  # k-means squares distances: scale-free
        sub = sub / 2.0 ** np.round(np.log2(peak))  # (a power of two: exact)
    if n_sub <= n_candidates:
        C = sub
    else:
        with warnings.catch_warnings():  # duplicate points: fewer distinct ones
            warnings.simplefilter("ignore", ConvergenceWarning)
            kmeans = KMeans(
                n_candidates, n_init=1, max_iter=KMEANS_MAX_ITER,
                random_state=rng.randint(2**31 - 1),
            ).fit(sub)  # fmt: skip
        C = kmeans.cluster_centers_
    return _unit_rows(np.array(C, dtype=X.dtype), rng)


def initial_weights(n_components, n_candidates, rng, dtype):
    """Every atom starts on a random candidate (distinct ones when there are
    enough), mixed with a random point of the simplex when there are fewer
    candidates than atoms."""
    W = np.zeros((n_components, n_candidates), dtype=dtype)
    enough = n_candidates >= n_components
    picks = rng.choice(n_candidates, size=n_components, replace=not enough)
    W[np.arange(n_components), picks] = 1.0
    if not enough:
        mix = rng.dirichlet(np.ones(n_candidates), size=n_components)
        W[...] = (1.0 - INIT_MIX) * W + INIT_MIX * mix
    return W


def fuse(W, C, Lambda, out):
    """``out = normalise(W C + Lambda)`` row by row; returns the norms of the
    rows before normalisation (a row of zero norm is left zero)."""
    U = W @ C
    U += Lambda
    norms = np.linalg.norm(U, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    out[...] = U / safe[:, None].astype(U.dtype)
    return norms


def pull_back(grad_D, D, norms, C):
    r"""Gradients with respect to ``W`` and ``Lambda`` of a function of
    ``D = normalise(U)``, ``U = W C + Lambda``, from its gradient ``G`` with
    respect to ``D``: ``grad_U = (G - <G_i, d_i> d_i) / ||U_i||`` row by row
    (the Jacobian of the normalisation), ``grad_W = grad_U C^T``,
    ``grad_Lambda = grad_U``."""
    D = D.astype(np.float64, copy=False)
    G = np.asarray(grad_D, dtype=np.float64)
    safe = np.where(norms > 0, norms, 1.0)
    grad_U = (G - np.einsum("ij,ij->i", G, D)[:, None] * D) / safe[:, None]
    return grad_U @ C.T.astype(np.float64, copy=False), grad_U


def project(W, Lambda, delta):
    """``W`` rows onto the simplex, ``Lambda`` rows into the ball of radius
    ``delta`` (in place)."""
    project_simplex_rows(W)
    if delta == 0:
        Lambda[...] = 0.0
        return
    norms = np.linalg.norm(Lambda, axis=1)
    over = norms > delta
    Lambda[over] *= (delta / norms[over])[:, None].astype(Lambda.dtype)


def step(params, C, grad_D, optimizers, learning_rate, delta):
    """One optimiser step of ``W`` and ``Lambda`` from the ``D``-gradient,
    the projections, and the fused ``D`` (``params`` updated in place)."""
    grad_W, grad_Lambda = pull_back(grad_D, params["D"], params["norms"], C)
    optimizers["W"].step(params["W"], grad_W, learning_rate)
    if delta > 0:
        optimizers["Lambda"].step(params["Lambda"], grad_Lambda, learning_rate)
    project(params["W"], params["Lambda"], delta)
    refuse(params, C)


def refuse(params, C):
    """Fuse ``D`` from ``W`` and ``Lambda`` and keep the norms of the
    unnormalised atoms in ``params["norms"]`` (the pull-back needs them); an
    atom whose unnormalised norm vanished (antipodal candidates cancelling)
    restarts on its heaviest candidate."""
    norms = fuse(params["W"], C, params["Lambda"], params["D"])
    dead = np.flatnonzero(~(norms > 0))
    if dead.size:
        best = np.argmax(params["W"][dead], axis=1)
        params["W"][dead] = 0.0
        params["W"][dead, best] = 1.0
        params["Lambda"][dead] = 0.0
        norms = fuse(params["W"], C, params["Lambda"], params["D"])
    params["norms"] = norms


def copies(D, threshold=COPY_COHERENCE):
    """The later atom of every pair whose ``|cos|`` exceeds ``threshold``."""
    cos = np.abs(D @ D.T)
    _, second = np.nonzero(np.triu(cos > threshold, k=1))
    return np.unique(second)


def redraw(params, C, rows, targets):
    """Re-draw atoms ``rows`` onto the candidates closest (largest cosine) to
    ``targets`` (one row each, e.g. residuals of badly reconstructed
    samples), with no relaxation."""
    cos = targets @ C.T
    best = np.argmax(cos, axis=1)
    params["W"][rows] = 0.0
    params["W"][rows, best] = 1.0
    params["Lambda"][rows] = 0.0
    refuse(params, C)


def initial_parameters(X, n_components, n_candidates, candidates, rng):
    """The parameters ``{"D", "W", "Lambda", "norms"}`` and the unit candidates
    ``C``: k-means centroids of ``X`` (``candidates="kmeans"``), random
    samples of it (``"samples"``) or the given array."""
    if isinstance(candidates, str):
        if n_candidates is None:
            n_candidates = default_n_candidates(n_components, X.shape[0])
        if n_candidates > X.shape[0]:
            raise ValueError(
                f"n_candidates={n_candidates} is larger than the number of "
                f"samples n_samples={X.shape[0]}: the candidates are k-means "
                "centroids or samples of X. Lower n_candidates or pass more "
                "samples (in partial_fit, the first call's batch)."
            )
        C = candidate_points(X, n_candidates, rng, candidates)
    else:
        C = _unit_rows(np.array(candidates, dtype=X.dtype, order="C"), rng)
    W = initial_weights(n_components, C.shape[0], rng, X.dtype)
    Lambda = np.zeros((n_components, X.shape[1]), dtype=X.dtype)
    params = {"D": np.empty_like(Lambda), "W": W, "Lambda": Lambda}
    refuse(params, C)
    return params, C
