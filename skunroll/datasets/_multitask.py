"""Clustered multi-task compressed sensing: tasks that share a support within
a cluster, each seen through its own random part of one subsampled DCT."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ..utils import subsampled_dct


@validate_params(
    {
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_measurements": [Interval(Integral, 1, None, closed="left")],
        "n_tasks": [Interval(Integral, 1, None, closed="left")],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left")],
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "observed": [Interval(Real, 0, 1, closed="right")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "coef_distribution": [StrOptions({"gaussian", "signed_uniform"})],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_multitask_measurements(
    n_features,
    n_measurements,
    n_tasks,
    n_nonzero_coefs,
    *,
    n_clusters=2,
    observed=0.25,
    noise=0.05,
    coef_distribution="gaussian",
    random_state=None,
):
    """Clustered multi-task compressed sensing through a subsampled DCT.

    The tasks fall into ``n_clusters`` consecutive clusters of (nearly) equal
    size; the tasks of a cluster share one support of ``n_nonzero_coefs``
    features drawn at random, each with its own coefficients. Every task is
    measured by the same ``n_measurements`` random rows of the orthonormal DCT
    of size ``n_features`` (:func:`skunroll.utils.subsampled_dct`), of which
    it observes each with probability ``observed``, plus Gaussian noise of
    standard deviation ``noise``. This is the problem of
    :class:`~skunroll.ClusteredMultiTaskSBL`.

    Parameters
    ----------
    n_features : int
        Number of coefficients ``p`` per task.
    n_measurements : int
        Number of DCT rows ``n`` (at most ``n_features``).
    n_tasks : int
        Number of tasks ``T`` (at least ``n_clusters``).
    n_nonzero_coefs : int
        Size of every cluster's support (at most ``n_features``).
    n_clusters : int, default=2
        Number of clusters.
    observed : float in (0, 1], default=0.25
        Probability that a task observes a measurement.
    noise : float, default=0.05
        Standard deviation of the measurement noise.
    coef_distribution : {"gaussian", "signed_uniform"}, default="gaussian"
        Non-zero coefficients standard normal, or of random sign and
        magnitude uniform on [1, 2].
    random_state : int, RandomState instance or None, default=None
        Seed: an int seeds ``numpy.random.default_rng``; a RandomState or
        None draws that seed.

    Returns
    -------
    operator : scipy.sparse.linalg.LinearOperator of shape (n_measurements, n_features)
        The subsampled DCT.
    Y : ndarray of shape (n_measurements, n_tasks)
        Measurements, one column per task (unobserved entries included).
    mask : ndarray of shape (n_measurements, n_tasks), dtype bool
        Which measurements each task observes.
    coef : ndarray of shape (n_tasks, n_features)
        The true coefficients.
    labels : ndarray of shape (n_tasks,)
        The cluster of every task.
    rows : ndarray of shape (n_measurements,)
        The DCT rows of ``operator``, sorted (to build it again, e.g. in
        float32).

    Examples
    --------
    >>> from skunroll.datasets import make_multitask_measurements
    >>> op, Y, mask, coef, labels, rows = make_multitask_measurements(
    ...     256, 128, 8, 10, random_state=0
    ... )
    >>> op.shape, Y.shape, coef.shape, labels.tolist()
    ((128, 256), (128, 8), (8, 256), [0, 0, 0, 0, 1, 1, 1, 1])
    """
    p, n, T, k = n_features, n_measurements, n_tasks, n_nonzero_coefs
    if n > p:
        raise ValueError(
            f"n_measurements={n} exceeds n_features={p}: there are only {p} DCT rows."
        )
    if k > p:
        raise ValueError(f"n_nonzero_coefs={k} exceeds n_features={p}.")
    if n_clusters > T:
        raise ValueError(f"n_clusters={n_clusters} exceeds n_tasks={T}.")
    if isinstance(random_state, Integral):
        rng = np.random.default_rng(int(random_state))
    else:  # None or a RandomState: a Generator seeded from it
        seed = check_random_state(random_state).randint(np.iinfo(np.int32).max)
        rng = np.random.default_rng(seed)
    labels = np.arange(T) * n_clusters // T
    supports = [rng.choice(p, k, replace=False) for _ in range(n_clusters)]
    coef = np.zeros((T, p))
    for t in range(T):
        if coef_distribution == "gaussian":
            values = rng.standard_normal(k)
        else:
            values = rng.choice([-1, 1], k) * rng.uniform(1, 2, k)
        coef[t, supports[labels[t]]] = values
    rows = np.sort(rng.choice(p, n, replace=False))
    operator = subsampled_dct(rows, p)
    mask = rng.random((n, T)) < observed
    Y = operator.matmat(coef.T) + noise * rng.standard_normal((n, T))
    return operator, Y, mask, coef, labels, rows
