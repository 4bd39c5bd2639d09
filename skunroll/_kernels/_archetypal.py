"""Kernels of the archetypal dictionary: row-wise simplex projection."""

from numba import njit

from ._priors import project_simplex


@njit(nogil=True, cache=True)
def project_simplex_rows(W):
    """Project every row of ``W`` onto the probability simplex, in place
    (the exact Euclidean projection of ``_priors.project_simplex``)."""
    for i in range(W.shape[0]):
        project_simplex(W[i], W[i])
    return W
