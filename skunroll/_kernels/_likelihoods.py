"""The likelihood axis: inverse links, their derivatives and the negative
log-likelihoods of the exponential-family likelihoods, dispatched on an
integer code (names and vectorised forms in ``skunroll/_parts/likelihoods.py``).
The dense and the convolutional kernels both read them from here.
"""

import numpy as np
from numba import njit

# likelihood codes
GAUSSIAN, POISSON, BINOMIAL = 0, 1, 2

# exp() of the Poisson natural parameter is evaluated at min(eta, ETA_MAX)
ETA_MAX = 50.0


@njit(nogil=True, cache=True)
def inverse_link(eta, likelihood, n_trials):
    if likelihood == GAUSSIAN:
        return eta
    if likelihood == POISSON:
        return np.exp(min(eta, ETA_MAX))
    if eta >= 0.0:
        return n_trials / (1.0 + np.exp(-eta))
    e = np.exp(eta)
    return n_trials * e / (1.0 + e)


@njit(nogil=True, cache=True)
def inverse_link_derivative(eta, likelihood, n_trials):
    if likelihood == GAUSSIAN:
        return 1.0
    if likelihood == POISSON:
        return np.exp(eta) if eta < ETA_MAX else 0.0
    s = inverse_link(eta, likelihood, 1.0)
    return n_trials * s * (1.0 - s)


@njit(nogil=True, cache=True)
def nll(x, eta, likelihood, n_trials):
    """Negative log-likelihood of one entry, up to terms free of ``eta``."""
    if likelihood == GAUSSIAN:
        d = x - eta
        return 0.5 * d * d
    if likelihood == POISSON:
        return np.exp(min(eta, ETA_MAX)) - x * eta
    softplus = max(eta, 0.0) + np.log1p(np.exp(-abs(eta)))
    return n_trials * softplus - x * eta
