"""Simulated dictionaries, sparse-coded data and mixtures of dictionaries."""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ..metrics import _check_array_nd, _random_supports

# Decorrelation of incoherent dictionaries (see ``_decorrelate``).
_STEP = 0.1  # step size, relative to a bound on the curvature of the penalty
_MOMENTUM = 0.9  # heavy-ball momentum
_ACTIVE = 0.9  # penalise inner products above this fraction of the coherence
_MARGIN = 0.05  # aim this fraction below the target so that it is crossed
# Default target of ``coherence`` as a multiple of the lower bound, by
# redundancy (see the Notes of ``make_dictionary``).
_DEFAULT_FACTOR_LOW_REDUNDANCY = 1.5  # n_components <= 4 * n_features
_DEFAULT_FACTOR_HIGH_REDUNDANCY = 2.0


def _coherence_lower_bound(n_components, n_features):
    """Lower bound on the coherence of ``n_components`` unit vectors in R^m.

    Returns the bound and its name: the Welch bound, or the orthoplex (Rankin)
    bound ``1 / sqrt(m)`` when it is larger, which happens for more than
    ``m (m + 1) / 2`` atoms (beyond the Gerzon bound the Welch bound cannot be
    attained in the real case).
    """
    p, m = n_components, n_features
    if p <= m:
        return 0.0, "Welch bound"
    welch = np.sqrt((p - m) / (m * (p - 1)))
    if 2 * p > m * (m + 1) and 1.0 / np.sqrt(m) > welch:
        return float(1.0 / np.sqrt(m)), "orthoplex bound"
    return float(welch), "Welch bound"


def _default_coherence(n_components, n_features):
    bound, _ = _coherence_lower_bound(n_components, n_features)
    if n_components <= 4 * n_features:
        factor = _DEFAULT_FACTOR_LOW_REDUNDANCY
    else:
        factor = _DEFAULT_FACTOR_HIGH_REDUNDANCY
    return min(factor * bound, 1.0)


def _normalize_rows(D):
    """Scale each row to unit norm, in place; return ``D``."""
    D /= np.sqrt(np.einsum("ij,ij->i", D, D))[:, None]
    return D


def _gaussian_dictionary(n_components, n_features, rng):
    return _normalize_rows(rng.standard_normal((n_components, n_features)))


def _dct_dictionary(n_components, n_features):
    """Cosines at ``n_components`` frequencies on the DCT-II sampling grid."""
    frequencies = np.pi * np.arange(n_components) / n_components
    samples = np.arange(n_features) + 0.5
    return _normalize_rows(np.cos(np.outer(frequencies, samples)))


def _orthonormal_rows(n_components, n_features, rng):
    """Random ``n_components <= n_features`` orthonormal rows (coherence 0)."""
    q, _ = np.linalg.qr(rng.standard_normal((n_features, n_components)))
    return np.ascontiguousarray(q.T)


def _decorrelation_step(D, gram, velocity, threshold):
    """One heavy-ball step on sum_{i != j} (|g_ij| - threshold)_+^2 / 4.

    The gradient ``(G - clip(G)) D`` pulls the Gram matrix towards its entries
    clipped at ``threshold``, as the structural projection of Tropp et al. does;
    it is projected on the tangent space of the unit sphere of each atom.
    """
    excess = gram - np.clip(gram, -threshold, threshold)
    curvature = max(1.0, np.abs(excess).sum(axis=1).max())
    grad = excess @ D
    grad -= np.einsum("ij,ij->i", grad, D)[:, None] * D
    velocity = _MOMENTUM * velocity - (_STEP / curvature) * grad
    return _normalize_rows(D + velocity), velocity


def _decorrelate(D, target, max_iter):
    """Lower the mutual coherence of unit-norm rows ``D`` down to ``target``.

    Returns the dictionary of lowest coherence seen and that coherence; stops
    as soon as the coherence is at most ``target`` or after ``max_iter`` steps.
    """
    velocity = np.zeros_like(D)
    best, best_coherence = D, np.inf
    floor = (1.0 - _MARGIN) * target
    for n_iter in range(max_iter + 1):
        gram = D @ D.T
        np.fill_diagonal(gram, 0.0)
        coherence = np.abs(gram).max()
        if coherence < best_coherence:
            best, best_coherence = D, coherence
        if coherence <= target or n_iter == max_iter:
            break
        threshold = max(floor, _ACTIVE * coherence)
        D, velocity = _decorrelation_step(D, gram, velocity, threshold)
    return best, float(best_coherence)


def _incoherent_dictionary(n_components, n_features, coherence, max_iter, rng):
    bound, bound_name = _coherence_lower_bound(n_components, n_features)
    if coherence is None:
        coherence = _default_coherence(n_components, n_features)
    elif coherence < bound:
        raise ValueError(
            f"coherence={coherence} is below the {bound_name} {bound:.6g} for a "
            f"dictionary of shape (n_components, n_features)=({n_components}, "
            f"{n_features}); no such dictionary exists. Ask for a coherence of "
            f"at least {bound:.6g} (in practice about 1.3 to 2 times it)."
        )
    if n_components <= n_features:
        return _orthonormal_rows(n_components, n_features, rng)
    D = _gaussian_dictionary(n_components, n_features, rng)
    D, reached = _decorrelate(D, coherence, max_iter)
    if reached > coherence:
        warnings.warn(
            f"make_dictionary did not reach coherence={coherence:.4g} within "
            f"max_iter={max_iter} iterations; returning the most incoherent "
            f"dictionary found, of coherence {reached:.4g} ({reached / bound:.2f} "
            f"times the {bound_name} {bound:.4g}). Increase max_iter or "
            "coherence.",
            ConvergenceWarning,
            stacklevel=4,
        )
    return D


@validate_params(
    {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "kind": [StrOptions({"gaussian", "dct", "incoherent"})],
        "coherence": [Interval(Real, 0, 1, closed="both"), None],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_dictionary(
    n_components,
    n_features,
    *,
    kind="gaussian",
    coherence=None,
    max_iter=1000,
    random_state=None,
):
    r"""Generate a dictionary of unit-norm atoms (rows).

    Parameters
    ----------
    n_components : int
        Number of atoms ``p``.
    n_features : int
        Dimension ``m`` of each atom.
    kind : {"gaussian", "dct", "incoherent"}, default="gaussian"
        How to build the atoms:

        - ``"gaussian"``: i.i.d. standard normal entries, rows normalised.
        - ``"dct"``: overcomplete discrete cosine transform, atom ``k`` being
          :math:`\cos(\pi k (j + 1/2) / p)` for :math:`j = 0, \dots, m - 1`,
          normalised. These are ``p`` frequencies evenly spaced in
          :math:`[0, \pi)`, as in the overcomplete DCT dictionary of K-SVD
          [1]_ but sampled at half-integers, so that ``p == m`` gives the
          orthonormal DCT-II basis. Deterministic (``random_state`` unused).
        - ``"incoherent"``: a Gaussian dictionary whose mutual coherence is
          lowered iteratively until it is at most ``coherence`` (see Notes).
          With ``p <= m`` the atoms are random orthonormal rows (coherence 0).
    coherence : float in [0, 1], default=None
        Target mutual coherence for ``kind="incoherent"``; only allowed with
        that kind. It may not be below the lower bound on the coherence of
        ``p`` unit vectors in dimension ``m``: the Welch bound
        :math:`\sqrt{(p - m) / (m (p - 1))}` (0 when ``p <= m``), or the
        orthoplex bound :math:`1 / \sqrt{m}` when :math:`p > m (m + 1) / 2`
        and it is larger. ``None`` targets 1.5 times that bound when
        ``p <= 4 m`` and twice it otherwise, capped at 1; these defaults are
        reached in every shape we tried (see Notes). The cap only applies for
        ``m <= 4`` with many atoms, where the Gaussian start is returned as is.
    max_iter : int, default=1000
        Maximum number of decorrelation steps for ``kind="incoherent"``.
    random_state : int, RandomState instance or None, default=None
        Seed of the random atoms.

    Returns
    -------
    dictionary : ndarray of shape (n_components, n_features)
        Atoms as unit-norm rows, float64.

    Raises
    ------
    ValueError
        If ``coherence`` is given with a kind other than ``"incoherent"``, or is
        below the lower bound on the coherence of ``p`` unit vectors in
        dimension ``m`` (no such dictionary exists).

    Warns
    -----
    ConvergenceWarning
        If ``kind="incoherent"`` does not reach ``coherence`` within
        ``max_iter`` steps; the most incoherent dictionary found is returned.

    See Also
    --------
    make_sparse_coded_data : Sparse codes and signals from a dictionary.
    skunroll.metrics.mutual_coherence : The coherence of a dictionary.

    Notes
    -----
    The incoherent dictionary is obtained by Riemannian gradient descent with
    heavy-ball momentum on the penalty
    :math:`\sum_{i \neq j} (|\langle d_i, d_j \rangle| - t)_+^2` over unit-norm
    atoms. Its gradient :math:`(G - \mathrm{clip}_t(G)) D` moves the Gram
    matrix :math:`G` towards its entries clipped at :math:`t`: this is a
    first-order version of the alternating projections of Tropp et al. [2]_
    and of the Gram shrinkage of Elad [3]_, without their eigendecomposition,
    so that a step costs two products of :math:`O(p^2 m)`. The threshold
    :math:`t` is the larger of 0.95 times the target and 0.9 times the current
    coherence, which concentrates the descent on the largest inner products.
    The iteration stops as soon as the coherence reaches the target, so the
    returned coherence is close to (and not above) ``coherence``, unless the
    Gaussian start is already below it.

    Reachable targets, as multiples of the lower bound, measured with the
    default ``max_iter`` over ``4 <= m <= 128``, ``p <= 1024`` and three seeds:

    - ``p <= 4 m``: 1.3 times in every case, in fewer than 200 steps (1.25
      times in almost every case); below that the descent stalls.
    - ``p = 8 m``: 1.5 times when ``m >= 8``; not 1.3 times.
    - ``p = 16 m``: twice; not 1.5 times.

    A step costs two ``p x p x m`` matrix products: on one CPU core about
    0.1 ms for ``64 x 16``, 0.7 ms for ``256 x 64`` and 25 ms for
    ``1024 x 128``. For instance ``256 x 64`` (Welch bound 0.1085, Gaussian
    start of coherence about 0.5) reaches 0.3 in about 20 steps, 0.163 (1.5
    times, the default) in about 80 steps (0.06 s) and 0.141 (1.3 times) in
    about 160 steps (0.12 s); ``1024 x 128`` reaches its default target
    (twice the Welch bound 0.0827) in about 50 steps (1.2 s) and 1.5 times the
    bound in about 140 steps. When a target is not reached, all ``max_iter``
    steps are spent before the warning.

    References
    ----------
    .. [1] Aharon, Elad & Bruckstein, "K-SVD: An algorithm for designing
       overcomplete dictionaries for sparse representation", IEEE Trans. Signal
       Process. 54(11), 2006.
    .. [2] Tropp, Dhillon, Heath & Strohmer, "Designing structured tight frames
       via an alternating projection method", IEEE Trans. Inf. Theory 51(1),
       2005.
    .. [3] Elad, "Optimized projections for compressed sensing", IEEE Trans.
       Signal Process. 55(12), 2007.
    .. [4] Welch, "Lower bounds on the maximum cross correlation of signals",
       IEEE Trans. Inf. Theory 20(3), 1974.
    .. [5] Conway, Hardin & Sloane, "Packing lines, planes, etc.: packings in
       Grassmannian spaces", Experiment. Math. 5(2), 1996 (orthoplex bound).

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.datasets import make_dictionary
    >>> from skunroll.metrics import mutual_coherence
    >>> D = make_dictionary(128, 32, kind="incoherent", coherence=0.25,
    ...                     random_state=0)
    >>> D.shape
    (128, 32)
    >>> bool(mutual_coherence(D) <= 0.25)
    True
    >>> D_dct = make_dictionary(8, 8, kind="dct")
    >>> bool(np.allclose(D_dct @ D_dct.T, np.eye(8)))
    True
    """
    if coherence is not None and kind != "incoherent":
        raise ValueError(
            f"coherence={coherence} is only used with kind='incoherent', got "
            f"kind={kind!r}; leave coherence=None."
        )
    rng = check_random_state(random_state)
    if kind == "gaussian":
        return _gaussian_dictionary(n_components, n_features, rng)
    if kind == "dct":
        return _dct_dictionary(n_components, n_features)
    return _incoherent_dictionary(n_components, n_features, coherence, max_iter, rng)


def _check_code_range(code_range):
    values = np.asarray(code_range, dtype=np.float64)
    low, high = (values.tolist() + [np.nan, np.nan])[:2]
    if values.shape != (2,) or not 0 < low <= high < np.inf:
        raise ValueError(
            "code_range must be a pair (low, high) of finite magnitudes with "
            f"0 < low <= high, got code_range={code_range!r}."
        )
    return low, high


def _code_values(rng, shape, code_distribution, code_range):
    """Non-zero values of codes with a fixed number of non-zeros."""
    if code_distribution == "gaussian":
        return rng.standard_normal(shape)
    signs = rng.choice(np.array([-1.0, 1.0]), size=shape)
    return signs * rng.uniform(*code_range, size=shape)


def _sparse_codes(
    rng, n_samples, n_components, n_nonzero_coefs, code_distribution, code_range
):
    codes = np.zeros((n_samples, n_components))
    if code_distribution == "bernoulli_gaussian":
        mask = rng.random((n_samples, n_components)) < n_nonzero_coefs / n_components
        codes[mask] = rng.standard_normal(np.count_nonzero(mask))
        return codes
    supports = _random_supports(rng, n_samples, n_components, n_nonzero_coefs)
    values = _code_values(rng, supports.shape, code_distribution, code_range)
    np.put_along_axis(codes, supports, values, axis=1)
    return codes


def _noise_std(signal, noise, snr_db):
    if snr_db is None:
        return noise
    power = np.mean(signal**2)
    if power == 0:
        raise ValueError(
            f"snr_db={snr_db} cannot be met: the noiseless signal is identically "
            "zero (is the dictionary zero?); use noise instead."
        )
    return float(np.sqrt(power / 10.0 ** (snr_db / 10.0)))


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "dictionary": ["array-like"],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left")],
        "code_distribution": [
            StrOptions({"gaussian", "uniform", "bernoulli_gaussian"})
        ],
        "code_range": ["array-like"],
        "positive": ["boolean"],
        "noise": [Interval(Real, 0, None, closed="left")],
        "snr_db": [Interval(Real, None, None, closed="neither"), None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_sparse_coded_data(
    n_samples,
    dictionary,
    *,
    n_nonzero_coefs=5,
    code_distribution="gaussian",
    code_range=(1.0, 2.0),
    positive=False,
    noise=0.0,
    snr_db=None,
    random_state=None,
):
    r"""Generate signals ``X = codes @ dictionary + noise`` with sparse codes.

    Parameters
    ----------
    n_samples : int
        Number of signals.
    dictionary : array-like of shape (n_components, n_features)
        Atoms as rows, for instance from :func:`make_dictionary`. It is not
        modified.
    n_nonzero_coefs : int, default=5
        Number ``k`` of non-zero coefficients per sample (exactly, or on
        average for ``"bernoulli_gaussian"``). At most ``n_components``.
    code_distribution : str, default="gaussian"
        Distribution of the codes, one of:

        - ``"gaussian"``: exactly ``k`` non-zeros per sample at uniformly
          random positions, with standard normal values.
        - ``"uniform"``: exactly ``k`` non-zeros per sample at uniformly random
          positions, each a random sign times a magnitude uniform in
          ``code_range`` (the :math:`\pm[1, 2]` codes of the PUDLE experiments
          with the default range).
        - ``"bernoulli_gaussian"``: each coefficient is non-zero independently
          with probability ``k / n_components``, with a standard normal value.
    code_range : tuple of float (low, high), default=(1.0, 2.0)
        Range of the magnitudes for ``"uniform"``, with ``0 < low <= high``.
        Ignored by the other distributions.
    positive : bool, default=False
        Whether to make every non-zero coefficient positive (absolute value).
    noise : float, default=0.0
        Standard deviation of the additive white Gaussian noise.
    snr_db : float, default=None
        Signal-to-noise ratio in decibels, an alternative to ``noise``: the
        noise standard deviation is set so that
        :math:`10 \log_{10}(P_{signal} / \sigma^2) = \mathrm{snr\_db}`, with
        :math:`P_{signal}` the mean of the squared noiseless signal entries.
        Cannot be combined with a non-zero ``noise``.
    random_state : int, RandomState instance or None, default=None
        Seed of the codes and of the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Noisy signals, float64.
    dictionary : ndarray of shape (n_components, n_features)
        A float64 copy of the input dictionary.
    codes : ndarray of shape (n_samples, n_components)
        The sparse codes, float64.

    Raises
    ------
    ValueError
        If ``dictionary`` is not 2-D or has NaN or infinite values, if
        ``n_nonzero_coefs`` exceeds ``n_components``, if ``code_range`` is not a
        valid pair, or if both ``noise`` and ``snr_db`` are given.

    See Also
    --------
    make_dictionary : Gaussian, DCT and incoherent dictionaries.

    References
    ----------
    .. [1] Agarwal, Anandkumar, Jain, Netrapalli & Tandon, "Learning sparsely
       used overcomplete dictionaries via alternating minimization", SIAM J.
       Optim. 26(4), 2016 (generative model for dictionary recovery).
    .. [2] Tolooshams & Ba, "PUDLE: Implicit acceleration of dictionary learning
       by backpropagation", arXiv:2106.00058, 2021 (codes :math:`\pm[1, 2]`).

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.datasets import make_dictionary, make_sparse_coded_data
    >>> D = make_dictionary(50, 20, random_state=0)
    >>> X, D, codes = make_sparse_coded_data(100, D, n_nonzero_coefs=3,
    ...                                      snr_db=20.0, random_state=0)
    >>> X.shape, codes.shape
    ((100, 20), (100, 50))
    >>> np.count_nonzero(codes, axis=1).tolist()[:5]
    [3, 3, 3, 3, 3]
    """
    dictionary = _check_array_nd(dictionary, "dictionary", ndims=(2,))
    dictionary = np.array(dictionary, dtype=np.float64, order="C", copy=True)
    n_components = dictionary.shape[0]
    if n_nonzero_coefs > n_components:
        raise ValueError(
            f"n_nonzero_coefs={n_nonzero_coefs} is larger than the number of "
            f"atoms n_components={n_components} of the dictionary (shape "
            f"{dictionary.shape})."
        )
    if snr_db is not None and noise != 0:
        raise ValueError(
            f"noise={noise} and snr_db={snr_db} both set the noise level; give "
            "only one of them."
        )
    code_range = _check_code_range(code_range)
    rng = check_random_state(random_state)
    codes = _sparse_codes(
        rng, n_samples, n_components, n_nonzero_coefs, code_distribution, code_range
    )
    if positive:
        np.abs(codes, out=codes)
    signal = codes @ dictionary
    std = _noise_std(signal, noise, snr_db)
    X = signal + std * rng.standard_normal(signal.shape) if std > 0 else signal
    return X, dictionary, codes


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left")],
        "code_distribution": [
            StrOptions({"gaussian", "uniform", "bernoulli_gaussian"})
        ],
        "code_range": ["array-like"],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_dictionary_mixture(
    n_samples,
    n_features,
    *,
    n_clusters=3,
    n_components=8,
    n_nonzero_coefs=3,
    code_distribution="uniform",
    code_range=(1.0, 2.0),
    noise=0.0,
    random_state=None,
):
    r"""Generate clusters, each sparsely coded on a dictionary of its own.

    Sample ``i`` of cluster ``y[i] = k`` is ``codes[i] @ dictionaries[k] +
    noise``: the union-of-dictionaries model of Mixture Model Auto-Encoders
    [1]_. The codes have random signs, so every cluster has mean zero: the
    clusters share their mean and differ only in the low-dimensional unions
    of subspaces their dictionaries span, which centroid-based clustering
    (k-means) cannot separate; a full-covariance Gaussian mixture can, with
    a covariance matrix per cluster.

    Parameters
    ----------
    n_samples : int
        Number of samples; the clusters are balanced (sizes differ by at most
        one) and the samples shuffled.
    n_features : int
        Dimension ``m`` of each sample.
    n_clusters : int, default=3
        Number of clusters (dictionaries).
    n_components : int, default=8
        Atoms per dictionary.
    n_nonzero_coefs : int, default=3
        Non-zero coefficients per sample (see ``code_distribution``); at most
        ``n_components``.
    code_distribution : str, default="uniform"
        Distribution of the codes, "uniform", "gaussian" or
        "bernoulli_gaussian", as in :func:`make_sparse_coded_data`; all three
        are symmetric about zero.
    code_range : tuple of float (low, high), default=(1.0, 2.0)
        Range of the magnitudes for ``"uniform"``.
    noise : float, default=0.0
        Standard deviation of the additive white Gaussian noise.
    random_state : int, RandomState instance or None, default=None
        Seed of the dictionaries, the codes, the labels and the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The samples, float64.
    y : ndarray of shape (n_samples,)
        The cluster of every sample (int64).
    dictionaries : ndarray of shape (n_clusters, n_components, n_features)
        The Gaussian unit-norm dictionaries (atoms as rows), one per cluster.
    codes : ndarray of shape (n_samples, n_components)
        The sparse code of every sample on its own cluster's dictionary.

    Raises
    ------
    ValueError
        If ``n_nonzero_coefs`` exceeds ``n_components`` or ``code_range`` is
        not a valid pair.

    See Also
    --------
    make_sparse_coded_data : Samples from a single dictionary.
    skunroll.MixMateClustering : Clustering by a mixture of sparse
        auto-encoders.

    References
    ----------
    .. [1] Lin, Song & Ba, "Mixture model auto-encoders: deep clustering
       through dictionary learning", ICASSP 2022.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.datasets import make_dictionary_mixture
    >>> X, y, dictionaries, codes = make_dictionary_mixture(
    ...     300, 20, n_clusters=3, n_components=6, random_state=0)
    >>> X.shape, dictionaries.shape, np.bincount(y).tolist()
    ((300, 20), (3, 6, 20), [100, 100, 100])
    """
    if n_nonzero_coefs > n_components:
        raise ValueError(
            f"n_nonzero_coefs={n_nonzero_coefs} is larger than the number of "
            f"atoms per dictionary n_components={n_components}."
        )
    code_range = _check_code_range(code_range)
    rng = check_random_state(random_state)
    dictionaries = np.stack(
        [_gaussian_dictionary(n_components, n_features, rng) for _ in range(n_clusters)]
    )
    y = rng.permutation(np.arange(n_samples) % n_clusters).astype(np.int64)
    codes = _sparse_codes(
        rng, n_samples, n_components, n_nonzero_coefs, code_distribution, code_range
    )
    X = np.einsum("ij,ijf->if", codes, dictionaries[y])
    if noise > 0:
        X += noise * rng.standard_normal(X.shape)
    return X, y, dictionaries, codes
