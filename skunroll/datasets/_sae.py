"""Toy data of sparse autoencoders: a concept hierarchy and planted archetypes."""

from numbers import Integral, Real

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ._dense import _check_code_range


def _orthonormal_columns(n_features, n_columns, rng):
    """``n_columns`` orthonormal vectors of R^n_features, as rows."""
    Q, R = np.linalg.qr(rng.standard_normal((n_features, n_columns)))
    return (Q * np.sign(np.diag(R))).T  # the sign fix makes Q uniform (Haar)


def _equiangular(basis, coherence):
    """Unit vectors in the span of orthonormal rows, pairwise cosine ``coherence``.

    ``v_i = sqrt(1 - c) q_i + t sum_j q_j`` with ``t = (sqrt(1 + (m - 1) c) -
    sqrt(1 - c)) / m``: the rows of the symmetric square root of the Gram
    matrix ``(1 - c) I + c 1 1^T`` applied to the basis.
    """
    m = basis.shape[0]
    s = np.sqrt(1.0 - coherence)
    t = (np.sqrt(1.0 + (m - 1) * coherence) - s) / m
    return s * basis + t * basis.sum(axis=0)


def _hierarchy_features(
    n_features, n_parents, n_children, n_singletons, coherence, geometry, rng
):
    """Parents, children (grouped by parent), then singletons; unit-norm rows."""
    n_top = n_parents + n_singletons
    n_kids = n_parents * n_children
    if geometry == "equiangular":
        basis = _orthonormal_columns(n_features, n_top + n_kids, rng)
        top = _equiangular(basis[:n_top], coherence)
        kids = basis[n_top:].reshape(n_parents, n_children, n_features)
        children = np.concatenate([_equiangular(g, coherence) for g in kids])
    else:  # "nested"
        basis = _orthonormal_columns(n_features, 1 + n_top + n_kids, rng)
        shared, own = basis[0], basis[1 : 1 + n_top]
        child_own = basis[1 + n_top :].reshape(n_parents, n_children, n_features)
        a, b = np.sqrt(coherence), np.sqrt(1.0 - coherence)
        top = a * shared + b * own
        children = a * top[:n_parents, None, :] + b * child_own
        children = children.reshape(-1, n_features)
    return np.concatenate([top[:n_parents], children, top[n_parents:]])


@validate_params(
    {
        "n_samples": [Interval(Integral, 1, None, closed="left")],
        "n_features": [Interval(Integral, 1, None, closed="left"), None],
        "n_parents": [Interval(Integral, 1, None, closed="left")],
        "n_children": [Interval(Integral, 1, None, closed="left")],
        "coherence": [Interval(Real, 0, 1, closed="left")],
        "noise": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_singletons": [Interval(Integral, 0, None, closed="left")],
        "n_active_parents": [Interval(Integral, 1, None, closed="left")],
        "child_probability": [Interval(Real, 0, 1, closed="both")],
        "singleton_weight": [Interval(Real, 0, None, closed="neither")],
        "code_range": ["array-like", None],
        "geometry": [StrOptions({"equiangular", "nested"})],
    },
    prefer_skip_nested_validation=True,
)
def make_sae_hierarchy(
    n_samples,
    n_features=None,
    n_parents=3,
    n_children=3,
    coherence=0.5,
    noise=0.0,
    random_state=None,
    *,
    n_singletons=8,
    n_active_parents=1,
    child_probability=0.6,
    singleton_weight=0.25,
    code_range=None,
    geometry="equiangular",
):
    r"""Toy data of hierarchical concepts: parents with mutually exclusive children.

    The synthetic benchmark of matching-pursuit sparse autoencoders [1]_ (its
    two-level tree, which extends the toy of Matryoshka SAEs [2]_), with the
    defaults of its code: ``n_parents`` parent concepts, each with
    ``n_children`` child concepts that refine it, and ``n_singletons``
    top-level concepts without children. A sample activates
    ``n_active_parents`` distinct top-level concepts (parents or singletons),
    drawn with probabilities proportional to 1 for a parent and
    ``singleton_weight`` for a singleton (without replacement); each active
    parent activates one (uniformly chosen) of its children with probability
    ``child_probability`` (siblings are mutually exclusive, and a child is
    never active without its parent). The paper's tree: 3 parents of 3
    children and 8 singletons, one top-level concept per sample (each parent
    with probability 0.2, each singleton 0.05), a child for 60 % of the
    parents, so 1.36 active concepts per sample on average and at most 2.
    Codes are non-negative: magnitudes :math:`|1.5 + 0.25\,\epsilon|`,
    :math:`\epsilon \sim N(0, 1)` (the paper's scale), or uniform in
    ``code_range``; ``X = codes @ features + noise``.

    The features are unit vectors built from an orthonormal family, with
    :math:`c` = ``coherence``:

    - ``geometry="equiangular"`` (the paper's): the top-level concepts
      (parents and singletons) form one group and the children of each parent
      another; within a group every pair has cosine :math:`c` (the group's
      vectors are :math:`\sqrt{1 - c}\, q_i + t \sum_j q_j` for orthonormal
      :math:`q` and the :math:`t` that makes them unit-norm; the paper mixes
      its basis vectors the same way, with mixing weights tuned to these
      cosines); vectors of different groups, a parent and its own children
      included, are orthogonal. ``n_features`` is at least the number of
      concepts (the paper: equal, 20).
    - ``geometry="nested"``: a shared direction :math:`g`, one direction
      :math:`u_p` per top-level concept and :math:`v_{pc}` per child,
      :math:`f_p = \sqrt{c}\, g + \sqrt{1 - c}\, u_p` and
      :math:`f_{pc} = \sqrt{c}\, f_p + \sqrt{1 - c}\, v_{pc}`: top-level and
      sibling cosines :math:`c` as well, but each child has cosine
      :math:`\sqrt{c}` with its parent, :math:`c^{3/2}` with the other
      top-level concepts and :math:`c^2` with the children of other parents.
      A harder toy than the paper's: at :math:`c = 0.8` a child is at cosine
      0.89 of its parent. ``n_features`` is at least the number of concepts
      plus one.

    The cosines are exact, not only in expectation. ``coherence`` from
    about 0.1 to 0.8 runs from nearly orthogonal concepts to ones a
    one-layer encoder confuses (the paper's range).

    Parameters
    ----------
    n_samples : int
        Number of samples.
    n_features : int, default=None
        Dimension of the samples; ``None`` means the smallest the geometry
        allows: the number of concepts ``n_parents * (1 + n_children) +
        n_singletons`` for ``"equiangular"`` (20 with the defaults, as in the
        paper), one more for ``"nested"``.
    n_parents : int, default=3
        Number of parent concepts (those with children).
    n_children : int, default=3
        Number of children of every parent.
    coherence : float, default=0.5
        The cosine :math:`c` in ``[0, 1)`` between any two top-level
        concepts and between any two siblings (see above).
    noise : float, default=0.0
        Standard deviation of the additive white Gaussian noise.
    random_state : int, RandomState instance or None, default=None
        Seed of the features, the codes and the noise.
    n_singletons : int, default=8
        Number of top-level concepts without children.
    n_active_parents : int, default=1
        Number of distinct top-level concepts (parents or singletons) active
        in every sample; at most ``n_parents + n_singletons``.
    child_probability : float, default=0.6
        Probability that an active parent has one (uniformly chosen) active
        child.
    singleton_weight : float, default=0.25
        Weight of a singleton against a parent's 1 in the draw of the active
        top-level concepts (the paper's 0.05 against 0.2).
    code_range : tuple of float (low, high) or None, default=None
        ``None``: magnitudes :math:`|1.5 + 0.25\,\epsilon|` (the paper's);
        a pair: uniform magnitudes in that range.
    geometry : {"equiangular", "nested"}, default="equiangular"
        How the features are built (see above).

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        The samples, float64.
    features : ndarray of shape (n_parents * (1 + n_children) + n_singletons, \
            n_features)
        Unit-norm features as rows: the ``n_parents`` parents first, then the
        children grouped by parent (child ``j`` of parent ``p`` is row
        ``n_parents + p * n_children + j``), then the singletons.
    codes : ndarray of shape (n_samples, n_parents * (1 + n_children) + \
            n_singletons)
        The non-negative codes, in the order of ``features``.

    Raises
    ------
    ValueError
        If ``n_features`` is too small for the orthonormal family, if
        ``n_active_parents`` exceeds the number of top-level concepts or if
        ``code_range`` is not a valid pair.

    See Also
    --------
    make_archetypal_data : Sparse convex mixtures of planted archetypes.

    Notes
    -----
    The first version of this function drew the ``"nested"`` toy with 8
    parents of 4 children, no singletons, 64 features, two active parents
    per sample, ``child_probability=0.75`` and ``code_range=(1.0, 2.0)``:
    ``make_sae_hierarchy(n, 64, 8, 4, coherence, noise, seed,
    n_singletons=0, n_active_parents=2, child_probability=0.75,
    code_range=(1.0, 2.0), geometry="nested")`` gives the same arrays again.

    References
    ----------
    .. [1] Costa, Fel, Lubana, Tolooshams & Ba, "From flat to hierarchical:
       extracting sparse representations with matching pursuit", NeurIPS 2025
       (code: github.com/mpsae/MP-SAE).
    .. [2] Bussmann, Nabeshima, Karvonen & Nanda, "Learning multi-level
       features with Matryoshka sparse autoencoders", arXiv:2503.17547, 2025.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll.datasets import make_sae_hierarchy
    >>> X, features, codes = make_sae_hierarchy(100, coherence=0.8, random_state=0)
    >>> X.shape, features.shape, codes.shape
    ((100, 20), (20, 20), (100, 20))
    >>> round(float(features[0] @ features[1]), 6)  # two parents
    0.8
    >>> round(float(features[0] @ features[3]), 6)  # a parent and its child
    0.0
    >>> bool(np.all(np.count_nonzero(codes, axis=1) <= 2))
    True
    """
    n_top = n_parents + n_singletons
    n_concepts = n_top + n_parents * n_children
    n_needed = n_concepts + (geometry == "nested")
    if n_features is None:
        n_features = n_needed
    if n_features < n_needed:
        what = (
            "n_parents * (1 + n_children) + n_singletons"
            if geometry == "equiangular"
            else "1 + n_parents * (1 + n_children) + n_singletons"
        )
        raise ValueError(
            f"n_features={n_features} is too small for n_parents={n_parents}, "
            f"n_children={n_children} and n_singletons={n_singletons}: the "
            f'"{geometry}" features are built from {what} = {n_needed} '
            "orthonormal directions."
        )
    if n_active_parents > n_top:
        raise ValueError(
            f"n_active_parents={n_active_parents} is larger than the number of "
            f"top-level concepts n_parents + n_singletons = {n_top}."
        )
    if code_range is not None:
        low, high = _check_code_range(code_range)
    rng = check_random_state(random_state)
    features = _hierarchy_features(
        n_features, n_parents, n_children, n_singletons, coherence, geometry, rng
    )
    codes = np.zeros((n_samples, n_concepts))
    # weighted draw without replacement: the smallest exponential clocks
    # -log(1 - u) / w (with equal weights, the smallest u)
    weights = np.r_[np.ones(n_parents), np.full(n_singletons, singleton_weight)]
    keys = -np.log1p(-rng.random((n_samples, n_top))) / weights
    top = np.argpartition(keys, n_active_parents - 1, axis=1)[:, :n_active_parents]
    rows = np.repeat(np.arange(n_samples), n_active_parents)
    top = top.ravel()
    is_parent = top < n_parents
    column = np.where(is_parent, top, top + n_parents * n_children)

    def magnitudes(size):
        if code_range is None:
            return np.abs(1.5 + 0.25 * rng.standard_normal(size))
        return rng.uniform(low, high, size)

    codes[rows, column] = magnitudes(rows.size)
    has_child = (rng.random(rows.size) < child_probability) & is_parent
    child = n_parents + top * n_children + rng.randint(0, n_children, rows.size)
    codes[rows[has_child], child[has_child]] = magnitudes(int(has_child.sum()))
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
