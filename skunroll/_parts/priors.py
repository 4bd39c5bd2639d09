"""Priors on the codes: their names and the parameters of their proximal maps.

Each prior is the activation function of an encoder step (the proximal map of
its penalty ``h`` at the encoder step ``a``), from the table of Tolooshams,
Dey & Ba, "Deep residual autoencoders for expectation maximization-inspired
dictionary learning", IEEE TNNLS 2020; the table and the maps themselves are in
``skunroll/_kernels/_priors.py``, the one place every encoder reads them from.

``nonneg_l1`` is the kernels' name of the l1 prior with non-negative codes:
``UnrolledDictionaryLearning`` asks for it as ``prior="l1",
positive_code=True`` (its ``prior="nonneg_l1"`` is deprecated).
"""

import numbers
import warnings

import numpy as np

from .._kernels import _priors as _k

PRIORS = {
    "l1": _k.L1,
    "nonneg_l1": _k.NONNEG_L1,
    "ridge": _k.RIDGE,
    "two_sided_gaussian": _k.TWO_SIDED_GAUSSIAN,
    "group_l1": _k.GROUP_L1,
    "simplex": _k.SIMPLEX,
}

#: priors that ``positive_code=True`` applies to (the simplex is non-negative)
POSITIVE_PRIORS = ("l1", "nonneg_l1", "simplex")

#: priors whose codes the exact lasso solvers of ``sparse_encode`` compute
LASSO_PRIORS = ("l1", "nonneg_l1")


def prox_parameters(prior, step, alpha, negative_alpha):
    """Step-scaled parameters ``(p1, p2)`` of the prior's proximal map."""
    if prior in ("l1", "nonneg_l1", "group_l1"):
        return step * alpha, 0.0
    if prior == "ridge":
        return 1.0 / (1.0 + step * alpha), 0.0
    if prior == "two_sided_gaussian":
        return 1.0 / (1.0 + step * alpha), 1.0 / (1.0 + step * negative_alpha)
    return 0.0, 0.0


def resolve_negative_alpha(prior, alpha, negative_alpha):
    """``negative_alpha`` of the two-sided Gaussian prior (10 alpha if None)."""
    if negative_alpha is None:
        return 10.0 * alpha
    return float(negative_alpha)


def resolve_groups(prior, groups, n_components):
    """Group index of every atom as an int64 array (a dummy unless group_l1).

    ``groups`` is an int (consecutive atoms in groups of that size, the last
    one possibly smaller) or an array-like of ``n_components`` labels.
    """
    if prior != "group_l1":
        return np.zeros(n_components, dtype=np.int64)
    if groups is None:
        raise ValueError(
            "prior='group_l1' needs `groups`: a group size (int) or one group "
            "label per component."
        )
    if isinstance(groups, numbers.Integral):
        if groups < 1:
            raise ValueError(f"`groups` must be a positive group size, got {groups}.")
        return np.arange(n_components, dtype=np.int64) // int(groups)
    labels = np.asarray(groups)
    if labels.shape != (n_components,):
        raise ValueError(
            f"`groups` must have one label per component, shape ({n_components},);"
            f" got shape {labels.shape}."
        )
    _, codes = np.unique(labels, return_inverse=True)
    return codes.astype(np.int64)


def kernel_prior(prior, positive_code):
    """The prior's name in the kernels: ``"nonneg_l1"`` for the l1 prior with
    ``positive_code`` (and for its deprecated spelling ``prior="nonneg_l1"``).
    Raises a ValueError for ``positive_code`` with a prior it does not apply
    to."""
    if positive_code and prior not in POSITIVE_PRIORS:
        raise ValueError(
            f"positive_code=True is not available with prior={prior!r}; "
            "non-negative codes need prior='l1' (or 'simplex', non-negative "
            "already)."
        )
    if prior == "l1" and positive_code:
        return "nonneg_l1"
    return prior


def warn_deprecated_prior(prior, stacklevel=3):
    """FutureWarning for the deprecated spelling ``prior="nonneg_l1"``."""
    if prior == "nonneg_l1":
        warnings.warn(
            'prior="nonneg_l1" is deprecated and will be removed in a future '
            'version; use prior="l1", positive_code=True, which gives the '
            "same results.",
            FutureWarning,
            stacklevel=stacklevel + 1,
        )
