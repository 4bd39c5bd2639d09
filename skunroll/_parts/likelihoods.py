"""Exponential-family likelihoods of the unrolled auto-encoder.

The decoder outputs the mean ``f(z D)`` through the inverse link ``f``; the
loss is the negative log-likelihood (up to terms free of ``D`` and ``z``), and
the encoder's residual is ``x - f(y D)`` (Tolooshams, Dey & Ba, IEEE TNNLS
2020, table of exponential-family components):

========= ============= ================== =========================
name      data          inverse link f      negative log-likelihood
========= ============= ================== =========================
gaussian  real          identity           (x - eta)^2 / 2
poisson   counts >= 0   exp                exp(eta) - x eta
binomial  0..n_trials   n sigmoid          n log(1 + e^eta) - x eta
========= ============= ================== =========================

The encoder step is ``1 / (c L)`` with ``L = ||D||_2^2`` and ``c`` a bound on
the curvature of the likelihood: 1 (Gaussian), ``n_trials / 4`` (binomial)
and, for the Poisson likelihood whose curvature ``exp(eta)`` is unbounded,
the largest count of the data (the curvature at a good fit is about the count
itself; the mean count gave steps that diverged).
"""

import numpy as np

from .._kernels import _likelihoods as _k

LIKELIHOODS = {"gaussian": _k.GAUSSIAN, "poisson": _k.POISSON, "binomial": _k.BINOMIAL}


def check_counts(X, likelihood, n_trials):
    """Raise a ValueError when ``X`` is not data of ``likelihood``."""
    if likelihood == "gaussian":
        return
    if np.any(X < 0) or np.any(X != np.round(X)):
        raise ValueError(
            f"likelihood={likelihood!r} needs X of non-negative integer counts; "
            "got negative or non-integer values."
        )
    if likelihood == "binomial" and np.any(X > n_trials):
        raise ValueError(
            f"likelihood='binomial' needs counts in [0, n_trials={n_trials}]; "
            f"got a maximum of {X.max()}."
        )


def curvature(likelihood, n_trials, X):
    """Curvature scale ``c`` of the encoder step ``1 / (c L)``."""
    if likelihood == "gaussian":
        return 1.0
    if likelihood == "binomial":
        return n_trials / 4.0
    return max(1.0, float(X.max()))


def mean(eta, likelihood, n_trials):
    """Inverse link ``f(eta)``, vectorised: the decoder's output (``exp`` is
    evaluated at ``min(eta, ETA_MAX)``, as in the kernels)."""
    if likelihood == "poisson":
        return np.exp(np.minimum(eta, _k.ETA_MAX))
    if likelihood == "binomial":
        return n_trials / (1.0 + np.exp(-eta))
    return eta


def link(mu, likelihood, n_trials):
    """The link ``f^{-1}(mu)``, vectorised, with the mean clipped into the
    interior of its range (1e-6 from its ends) so the result is finite."""
    if likelihood == "poisson":
        return np.log(np.maximum(mu, 1e-6))
    if likelihood == "binomial":
        p = np.clip(np.asarray(mu, dtype=np.float64) / n_trials, 1e-6, 1.0 - 1e-6)
        return np.log(p / (1.0 - p))
    return np.asarray(mu, dtype=np.float64)


def mean_derivative(eta, likelihood, n_trials):
    """``f'(eta)``, vectorised: the variance function at ``f(eta)``."""
    if likelihood == "poisson":
        return mean(eta, likelihood, n_trials)
    if likelihood == "binomial":
        m = mean(eta, likelihood, n_trials)
        return m * (1.0 - m / n_trials)
    return np.ones_like(eta)
