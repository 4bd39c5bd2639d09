"""Shared fixtures: small planted sparse-coding problems."""

import numpy as np
import pytest


def planted_problem(n_samples, n_features, n_components, n_nonzero, seed=0):
    """Unit-norm Gaussian dictionary, codes of random sign and magnitude in [1, 2]."""
    rng = np.random.default_rng(seed)
    D = rng.standard_normal((n_components, n_features))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Z = np.zeros((n_samples, n_components))
    for i in range(n_samples):
        idx = rng.choice(n_components, n_nonzero, replace=False)
        Z[i, idx] = rng.choice([-1, 1], n_nonzero) * rng.uniform(1, 2, n_nonzero)
    X = Z @ D + 0.01 * rng.standard_normal((n_samples, n_features))
    return X, D, Z


@pytest.fixture(scope="session")
def problem():
    return planted_problem(120, 20, 40, 3)


@pytest.fixture(scope="session")
def overcomplete():
    return planted_problem(80, 16, 48, 4, seed=1)


def reproducer_data():
    """The data of the reliability issue's reproducers: ``X`` (12, 6) and a
    unit-norm ``D`` (8, 6)."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 6))
    D = rng.standard_normal((8, 6))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    return X, D


@pytest.fixture
def data():
    return reproducer_data()


def finite_differences(fun, D, h=1e-6):
    """Central differences of the scalar ``fun`` at every entry of ``D``: the
    independent reference of the hand-written gradients."""
    grad = np.zeros_like(D)
    for idx in np.ndindex(D.shape):
        E = np.zeros_like(D)
        E[idx] = h
        grad[idx] = (fun(D + E) - fun(D - E)) / (2 * h)
    return grad
