"""Toy data of sparse autoencoders: a concept hierarchy and planted archetypes."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, validate_params

from ._dense import _check_code_range


def _orthonormal_columns(n_features, n_columns, rng):
    """``n_columns`` orthonormal vectors of R^n_features, as rows."""
    Q, R = np.linalg.qr(rng.standard_normal((n_features, n_columns)))
    return (Q * np.sign(np.diag(R))).T  # the sign fix makes Q uniform (Haar)


def _hierarchy_features(n_features, n_parents, n_children, coherence, rng):
    """Parents then children (grouped by parent), unit-norm rows."""
    n_needed = 1 + n_parents * (1 + n_children)
    basis = _orthonormal_columns(n_features, n_needed, rng)
    shared, own = basis[0], basis[1 : 1 + n_parents]
    child_own = basis[1 + n_parents :].reshape(n_parents, n_children, n_features)
    a, b = np.sqrt(coherence), np.sqrt(1.0 - coherence)
    parents = a * shared + b * own
    children = a * parents[:, None, :] + b * child_own
    return np.concatenate([parents, children.reshape(-1, n_features)])


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_parents": [Interval(Integral, 1, None, closed="left")],
        "n_children": [Interval(Integral, 1, None, closed="left")],
        "coherence": [Interval(Real, 0, 1, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_active_parents": [Interval(Integral, 1, None, closed="left")],
        "child_probability": [Interval(Real, 0, 1, closed="both")],
        "code_range": ["array-like"],
    },
    prefer_skip_nested_validation=True,
)
def make_sae_hierarchy(
    n_samples,
    n_features=64,
    n_parents=8,
    n_children=4,
    coherence=0.5,
    noise=0.0,
    random_state=None,
    *,
    n_active_parents=2,
    child_probability=0.75,
    code_range=(1.0, 2.0),
):
    r"""Toy data of hierarchical concepts: parents with mutually exclusive children.

    The synthetic benchmark of matching-pursuit sparse autoencoders [1]_:
    ``n_parents`` parent concepts, each with ``n_children`` child concepts
    that refine it. A sample activates ``n_active_parents`` distinct parents;
    each active parent activates at most one of its children (siblings are
    mutually exclusive), with probability ``child_probability``; a child is
    never active without its parent. Codes are non-negative, with magnitudes
    uniform in ``code_range``, and ``X = codes @ features + noise``.

    The features are built from an orthonormal family: a shared direction
    :math:`g`, one direction :math:`u_p` per parent and one :math:`v_{pc}`
    per child, with :math:`c` = ``coherence``,

    .. math::

        f_p = \sqrt{c}\, g + \sqrt{1 - c}\, u_p, \qquad
        f_{pc} = \sqrt{c}\, f_p + \sqrt{1 - c}\, v_{pc},

    so every feature has unit norm and the cosines are exact, not only in
    expectation: parent-parent and sibling-sibling :math:`c`, parent-own
    child :math:`\sqrt{c}`, child-other parent :math:`c^{3/2}`, children of
    different parents :math:`c^2`. ``coherence`` from about 0.1 to 0.8 runs
    from nearly orthogonal concepts to ones a one-layer encoder confuses.

    Parameters
    ----------
    n_samples : int
        Number of samples.
    n_features : int, default=64
        Dimension of the samples; at least ``1 + n_parents * (1 + n_children)``
        (the orthonormal family the features are built from).
    n_parents : int, default=8
        Number of parent concepts.
    n_children : int, default=4
        Number of children of every parent.
    coherence : float, default=0.5
        The cosine :math:`c` in ``[0, 1)`` between any two parents and
        between any two siblings (see above).
    noise : float, default=0.0
        Standard deviation of the additive white Gaussian noise.
    random_state : int, RandomState instance or None, default=None
        Seed of the features, the codes and the noise.
    n_active_parents : int, default=2
        Number of distinct parents active in every sample; at most
        ``n_parents``.
    child_probability : float, default=0.75
        Probability that an active parent has one (uniformly chosen) active
        child.
    code_range : tuple of float (low, high), default=(1.0, 2.0)
        Range of the (uniform) magnitudes of the active codes.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The samples, float64.
    features : ndarray of shape (n_parents * (1 + n_children), n_features)
        Unit-norm features as rows: the ``n_parents`` parents first, then the
        children grouped by parent (child ``j`` of parent ``p`` is row
        ``n_parents + p * n_children + j``).
    codes : ndarray of shape (n_samples, n_parents * (1 + n_children))
        The non-negative codes, in the order of ``features``.

    Raises
    ------
    ValueError
        If ``n_features`` is too small for the orthonormal family, if
        ``n_active_parents`` exceeds ``n_parents`` or if ``code_range`` is
        not a valid pair.

    See Also
    --------
    make_archetypal_data : Sparse convex mixtures of planted archetypes.

    References
    ----------
    .. [1] Costa, Fel, Lubana, Tolooshams & Ba, "From flat to hierarchical:
       extracting sparse representations with matching pursuit", NeurIPS 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.datasets import make_sae_hierarchy
    >>> X, features, codes = make_sae_hierarchy(100, coherence=0.8, random_state=0)
    >>> X.shape, features.shape, codes.shape
    ((100, 64), (40, 64), (100, 40))
    >>> round(float(features[0] @ features[1]), 6)  # two parents
    0.8
    >>> bool(np.all(np.count_nonzero(codes[:, :8], axis=1) == 2))
    True
    """
    n_needed = 1 + n_parents * (1 + n_children)
    if n_features < n_needed:
        raise ValueError(
            f"n_features={n_features} is too small for n_parents={n_parents} and "
            f"n_children={n_children}: the features are built from "
            f"1 + n_parents * (1 + n_children) = {n_needed} orthonormal directions."
        )
    if n_active_parents > n_parents:
        raise ValueError(
            f"n_active_parents={n_active_parents} is larger than n_parents={n_parents}."
        )
    low, high = _check_code_range(code_range)
    rng = check_random_state(random_state)
    features = _hierarchy_features(n_features, n_parents, n_children, coherence, rng)
    codes = np.zeros((n_samples, features.shape[0]))
    keys = rng.random((n_samples, n_parents))
    parents = np.argpartition(keys, n_active_parents - 1, axis=1)[:, :n_active_parents]
    rows = np.repeat(np.arange(n_samples), n_active_parents)
    parents = parents.ravel()
    codes[rows, parents] = rng.uniform(low, high, rows.size)
    has_child = rng.random(rows.size) < child_probability
    child = n_parents + parents * n_children + rng.randint(0, n_children, rows.size)
    codes[rows[has_child], child[has_child]] = rng.uniform(
        low, high, int(has_child.sum())
    )
    X = codes @ features
    if noise > 0:
        X += noise * rng.standard_normal(X.shape)
    return X, features, codes


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left")],
        "n_archetypes": [Interval(Integral, 1, None, closed="left")],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left")],
        "concentration": [Interval(Real, 0, None, closed="neither")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_archetypal_data(
    n_samples,
    n_features=32,
    n_archetypes=8,
    *,
    n_nonzero_coefs=3,
    concentration=1.0,
    noise=0.0,
    random_state=None,
):
    r"""Sparse convex mixtures of planted archetypes.

    The generative model of archetypal analysis [1]_ made sparse: every
    sample mixes ``k`` archetypes, ``k`` uniform in ``1, ..., n_nonzero_coefs``
    (so about ``1 / n_nonzero_coefs`` of the samples are pure archetypes),
    with weights drawn from a symmetric Dirichlet distribution of parameter
    ``concentration`` on those ``k``:

    .. math::

        x = w A + \varepsilon, \qquad w \ge 0, \quad \sum_j w_j = 1, \quad
        \|w\|_0 = k.

    The samples fill the convex hull of the archetypes, whose vertices the
    archetypes are; this is the setting of archetypal dictionaries [2]_,
    whose atoms are kept in the convex hull of the data.

    Parameters
    ----------
    n_samples : int
        Number of samples.
    n_features : int, default=32
        Dimension of the samples.
    n_archetypes : int, default=8
        Number of planted archetypes.
    n_nonzero_coefs : int, default=3
        Largest number of archetypes mixed in one sample; at most
        ``n_archetypes``.
    concentration : float, default=1.0
        Parameter of the symmetric Dirichlet distribution of the weights of
        the mixed archetypes (1: uniform on the simplex; small: close to its
        vertices; large: close to equal weights).
    noise : float, default=0.0
        Standard deviation of the additive white Gaussian noise.
    random_state : int, RandomState instance or None, default=None
        Seed of the archetypes, the weights and the noise.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The samples, float64.
    archetypes : ndarray of shape (n_archetypes, n_features)
        The planted archetypes: Gaussian directions scaled to unit norm.
    weights : ndarray of shape (n_samples, n_archetypes)
        The mixing weights: non-negative, sparse, every row summing to 1.

    Raises
    ------
    ValueError
        If ``n_nonzero_coefs`` exceeds ``n_archetypes``.

    See Also
    --------
    make_sae_hierarchy : Hierarchical concepts of a coherence knob.
    skunroll.UnrolledDictionaryLearning : ``dictionary="archetypal"``.

    References
    ----------
    .. [1] Cutler & Breiman, "Archetypal analysis", Technometrics 36(4), 1994.
    .. [2] Fel, Lubana, Prince, Kowal, Boutin, Papadimitriou, Wang, Wattenberg,
       Ba & Konkle, "Archetypal SAE: adaptive and stable dictionary learning
       for concept extraction in large vision models", ICML 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.datasets import make_archetypal_data
    >>> X, archetypes, weights = make_archetypal_data(200, random_state=0)
    >>> X.shape, archetypes.shape, weights.shape
    ((200, 32), (8, 32), (200, 8))
    >>> bool(np.allclose(weights.sum(axis=1), 1.0) and weights.min() >= 0)
    True
    """
    if n_nonzero_coefs > n_archetypes:
        raise ValueError(
            f"n_nonzero_coefs={n_nonzero_coefs} is larger than "
            f"n_archetypes={n_archetypes}."
        )
    rng = check_random_state(random_state)
    archetypes = rng.standard_normal((n_archetypes, n_features))
    archetypes /= np.linalg.norm(archetypes, axis=1, keepdims=True)
    k = rng.randint(1, n_nonzero_coefs + 1, n_samples)
    order = np.argsort(rng.random((n_samples, n_archetypes)), axis=1)
    gamma = rng.gamma(concentration, size=(n_samples, n_archetypes))
    gamma[np.arange(n_archetypes)[None, :] >= k[:, None]] = 0.0
    # a Dirichlet(concentration) draw on the first k of a random order; gamma
    # draws of a tiny concentration can all underflow: then a pure sample
    empty = ~(gamma.sum(axis=1) > 0)
    gamma[empty, 0] = 1.0
    weights = np.zeros((n_samples, n_archetypes))
    np.put_along_axis(weights, order, gamma / gamma.sum(axis=1, keepdims=True), 1)
    X = weights @ archetypes
    if noise > 0:
        X += noise * rng.standard_normal(X.shape)
    return X, archetypes, weights
