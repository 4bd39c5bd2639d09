"""Power iteration for the Lipschitz constant of the least-squares gradient."""

import numpy as np
from numba import njit


@njit(nogil=True, cache=True)
def power_iteration(gram, v, max_iter, tol):
    """Largest eigenvalue of the symmetric PSD matrix ``gram`` by power iteration.

    ``v`` is the (non-zero) starting vector; it is overwritten. Stops when the
    Rayleigh quotient changes by less than ``tol`` (relative) or after
    ``max_iter`` iterations. Returns ``(eigenvalue estimate, converged)``.
    """
    v /= np.sqrt(np.dot(v, v))
    lam = 0.0
    for _ in range(max_iter):
        w = np.dot(gram, v)
        lam_new = np.dot(v, w)
        norm = np.sqrt(np.dot(w, w))
        if norm == 0.0:
            return 0.0, True
        for i in range(v.shape[0]):
            v[i] = w[i] / norm
        if abs(lam_new - lam) <= tol * abs(lam_new):
            return lam_new, True
        lam = lam_new
    return lam, False
