"""Shared helpers of the dictionary-recovery benchmark."""

import numpy as np

from skunroll import sparse_encode
from skunroll.datasets import make_sparse_coded_data
from skunroll.metrics import atom_recovery_errors


def planted_data(D, n_samples, n_nonzero_coefs, noise, seed):
    """Signals with codes of random sign and magnitude in [1, 2] on ``D``."""
    X, D, _ = make_sparse_coded_data(
        n_samples, D, n_nonzero_coefs=n_nonzero_coefs, code_distribution="uniform",
        noise=noise, random_state=seed,
    )  # fmt: skip
    return dict(X=X, D_true=D)


def recovery_scores(D_true, D, threshold):
    errors = atom_recovery_errors(D_true, D)
    return float(np.mean(errors < threshold)), float(np.median(errors))


def lasso_objective(X, D, alpha):
    """Mean over samples of the exact lasso cost with the atoms of ``D``.

    Zero atoms (never used) are dropped; the other atoms are scaled to unit
    norm, the constraint every solver of the benchmark works under.
    """
    norms = np.linalg.norm(D, axis=1)
    D = D[norms > 0] / norms[norms > 0, None]
    Z = sparse_encode(X, D, algorithm="lasso", alpha=alpha)
    residual = X - Z @ D
    return float(np.mean(0.5 * np.sum(residual**2, axis=1) + alpha * np.abs(Z).sum(1)))


def initial_dictionary(X, n_components, seed):
    """Distinct samples of ``X``, normalised: the state after 0 epochs."""
    rng = np.random.RandomState(seed)
    D = X[rng.choice(X.shape[0], n_components, replace=False)]
    return D / np.maximum(np.linalg.norm(D, axis=1, keepdims=True), 1e-12)


def next_epochs(stop_val):
    """Evaluate after 0, 1, 2, 4, 8, ... epochs."""
    return 1 if stop_val == 0 else 2 * stop_val
