"""Small public utilities shared by the estimators."""

import numpy as np
import scipy.fft
from scipy.sparse.linalg import LinearOperator
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from ._kernels._power import power_iteration
from ._parallel import single_threaded_blas  # noqa: F401 (re-export)

__all__ = ["lipschitz_constant", "subsampled_dct"]


def lipschitz_constant(dictionary, *, max_iter=100, tol=1e-6, random_state=0):
    """Lipschitz constant ``||D||_2^2`` of the least-squares gradient.

    The gradient of ``0.5 ||x - z D||^2`` with respect to the code ``z`` is
    ``(z D - x) D^T``; it is Lipschitz with constant the largest eigenvalue of
    ``D D^T`` (equivalently of ``D^T D``), estimated here by power iteration on
    the smaller of the two Gram matrices. ISTA and FISTA take the step ``1 / L``.

    Power iteration approaches the eigenvalue from below; the estimate is
    inflated by ``10 * tol`` (relative) so that ``1 / L`` stays a safe step. If
    it has not converged after ``max_iter`` iterations, the smaller of the
    Gershgorin and Frobenius bounds on the Gram matrix is returned instead: an
    upper bound, so the step is always safe.

    Parameters
    ----------
    dictionary : array-like of shape (n_components, n_features)
        Atoms as rows.
    max_iter : int, default=100
        Maximum number of power iterations.
    tol : float, default=1e-6
        Relative change of the Rayleigh quotient at which to stop.
    random_state : int, RandomState instance or None, default=0
        Seed of the random starting vector.

    Returns
    -------
    L : float
        Estimate of ``||D||_2^2``.

    References
    ----------
    Beck & Teboulle, "A fast iterative shrinkage-thresholding algorithm for
    linear inverse problems", SIAM J. Imaging Sci. 2(1), 2009.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.utils import lipschitz_constant
    >>> D = np.diag([3.0, 1.0])
    >>> round(lipschitz_constant(D), 4)
    9.0001
    """
    D = check_array(dictionary, dtype=[np.float64, np.float32], input_name="dictionary")
    return _lipschitz_from_gram(_smaller_gram(D), max_iter, tol, random_state)


def _smaller_gram(D):
    """The smaller of ``D D^T`` and ``D^T D`` (same largest eigenvalue)."""
    return D @ D.T if D.shape[0] <= D.shape[1] else D.T @ D


def _lipschitz_from_gram(gram, max_iter=100, tol=1e-6, random_state=0, v=None):
    """Power iteration on a precomputed Gram matrix (no validation).

    ``v`` (float64, overwritten) warm-starts the iteration, e.g. from the
    previous call of a training loop; by default it is drawn from
    ``random_state``.
    """
    gram = np.ascontiguousarray(gram, dtype=np.float64)
    if v is None:
        v = check_random_state(random_state).standard_normal(gram.shape[0])
    lam, converged = power_iteration(gram, v, max_iter, tol)
    if not converged:
        return float(min(np.abs(gram).sum(1).max(), np.linalg.norm(gram)))
    return float(lam) * (1.0 + 10.0 * tol)


def subsampled_dct(rows, n_features, *, dtype=np.float64):
    """The rows ``rows`` of the orthonormal DCT-II as a ``LinearOperator``.

    A compressed-sensing design with fast products: ``Phi z`` is
    ``scipy.fft.dct(z, norm="ortho")[rows]`` and ``Phi^T u`` the inverse DCT
    of ``u`` placed at ``rows`` (zeros elsewhere), ``O(p log p)`` each instead
    of the ``O(n p)`` of the dense ``n x p`` matrix. It is the design of the
    covariance-free SBL paper (Lin et al., IEEE TSP 2022), for
    :class:`skunroll.SparseBayesianLearning`.

    Parameters
    ----------
    rows : array-like of int, shape (n_samples,)
        Indices of the DCT rows kept, in ``[0, n_features)``.
    n_features : int
        Length ``p`` of the transform.
    dtype : dtype, default=np.float64
        dtype of the products.

    Returns
    -------
    operator : scipy.sparse.linalg.LinearOperator of shape (n_samples, n_features)
        With ``matvec``, ``rmatvec``, ``matmat`` and ``rmatmat``.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.utils import subsampled_dct
    >>> op = subsampled_dct([0, 3, 5], 8)
    >>> op.shape
    (3, 8)
    >>> bool(np.allclose(op.matvec(op.rmatvec(np.ones(3))), np.ones(3)))
    True
    """
    rows = np.asarray(rows)
    if (
        rows.ndim != 1
        or rows.dtype.kind not in "iu"
        or np.any(rows < 0)
        or np.any(rows >= n_features)
    ):
        raise ValueError(
            f"rows must be a 1-D array of integers in [0, n_features={n_features}); "
            f"got {rows!r}."
        )
    p, n = int(n_features), len(rows)

    def matmat(Z):
        Z = np.asarray(Z, dtype=dtype).reshape(p, -1)
        return scipy.fft.dct(Z, norm="ortho", axis=0)[rows]

    def rmatmat(U):
        U = np.asarray(U, dtype=dtype).reshape(n, -1)
        full = np.zeros((p, U.shape[1]), dtype=dtype)
        full[rows] = U
        return scipy.fft.idct(full, norm="ortho", axis=0)

    return LinearOperator(
        (n, p),
        matvec=lambda z: matmat(z)[:, 0],
        rmatvec=lambda u: rmatmat(u)[:, 0],
        matmat=matmat,
        rmatmat=rmatmat,
        dtype=dtype,
    )
