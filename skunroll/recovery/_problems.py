"""Recovery problems whose difficulty is set by theory: coherence and sparsity.

:func:`make_coherent_dictionary` plants a dictionary of a prescribed mutual
coherence, reached by pairs of atoms; :func:`sparsity_bound` gives the sparsity
up to which theory guarantees recovery at a coherence; :func:`recovery_regime`
gathers the settings of a phase diagram in the incoherent regime of Arora, Ge
and Moitra or the noisy regime of Gribonval, Jenatton and Bach.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions, validate_params

from ..datasets import make_dictionary
from ..datasets._dense import (
    _coherence_lower_bound,
    _decorrelation_step,
    _default_coherence,
)

# Decorrelation of the atoms of different pairs (see ``_decorrelate_pairs``).
_ACTIVE = 0.9  # penalise inner products above this fraction of the largest
_MARGIN = 0.05  # aim this fraction below the target so that it is crossed


def _snap_pairs(D, coherence):
    """Set ``<d_{2k}, d_{2k+1}> = coherence`` by rotating each odd atom, in place.

    The odd atom keeps its direction orthogonal to its partner: it becomes
    ``c d_{2k} + sqrt(1 - c^2) w`` with ``w`` the unit component of the old odd
    atom orthogonal to ``d_{2k}``.
    """
    n_pairs = D.shape[0] // 2
    first, second = D[0 : 2 * n_pairs : 2], D[1 : 2 * n_pairs : 2]
    inner = np.einsum("ij,ij->i", first, second)
    ortho = second - inner[:, None] * first
    ortho /= np.sqrt(np.einsum("ij,ij->i", ortho, ortho))[:, None]
    D[1 : 2 * n_pairs : 2] = coherence * first + np.sqrt(1.0 - coherence**2) * ortho
    return D


def _other_pairs_mask(n_components):
    """True for the entries of the Gram matrix between atoms of different pairs."""
    mask = ~np.eye(n_components, dtype=bool)
    first = np.arange(0, n_components - 1, 2)
    mask[first, first + 1] = mask[first + 1, first] = False
    return mask


def _decorrelate_pairs(D, coherence, max_iter):
    """Lower the inner products between pairs to ``coherence``, pairs held at it.

    The heavy-ball steps of ``make_dictionary(kind="incoherent")`` on the
    entries of the Gram matrix between different pairs, each followed by
    :func:`_snap_pairs`. Returns the dictionary and the largest inner product
    between different pairs.
    """
    mask = _other_pairs_mask(D.shape[0])
    velocity = np.zeros_like(D)
    floor = (1.0 - _MARGIN) * coherence
    for n_iter in range(max_iter + 1):
        gram = (D @ D.T) * mask
        largest = float(np.abs(gram).max(initial=0.0))
        if largest <= coherence or n_iter == max_iter:
            break
        threshold = max(floor, _ACTIVE * largest)
        D, velocity = _decorrelation_step(D, gram, velocity, threshold)
        D = _snap_pairs(D, coherence)
    return D, largest


@validate_params(
    {
        "n_components": [Interval(Integral, 2, None, closed="left")],
        "n_features": [Interval(Integral, 2, None, closed="left")],
        "coherence": [Interval(Real, 0, 1, closed="neither")],
        "max_iter": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_coherent_dictionary(
    n_components, n_features, coherence, *, max_iter=1000, random_state=None
):
    r"""Generate unit-norm atoms whose mutual coherence is exactly ``coherence``.

    Atoms ``2k`` and ``2k + 1`` form a pair at inner product ``coherence``; the
    atoms of different pairs are pushed apart until no two correlate more than
    ``coherence``. So the mutual coherence :math:`\mu` is reached by every
    pair, not by one unlucky pair: telling the two atoms of a pair apart is
    the difficulty that :math:`\mu` measures, and every atom has it. With an
    odd ``n_components`` the last atom has no partner.

    The start is ``make_dictionary(kind="incoherent")`` at ``coherence`` or at
    its default target if that is lower; each odd atom is then rotated
    towards its partner, and the decorrelation steps of
    :func:`skunroll.datasets.make_dictionary` lower the inner products between
    pairs, restoring the pairs' inner product after every step.

    Parameters
    ----------
    n_components : int
        Number of atoms ``p``, at least 2.
    n_features : int
        Dimension ``m`` of each atom, at least 2.
    coherence : float in (0, 1)
        The mutual coherence :math:`\mu`. It may not be below the lower bound
        on the coherence of ``p`` unit vectors in dimension ``m`` (the Welch
        bound, see :func:`skunroll.datasets.make_dictionary`).
    max_iter : int, default=1000
        Maximum number of decorrelation steps.
    random_state : int, RandomState instance or None, default=None
        Seed of the random atoms.

    Returns
    -------
    dictionary : ndarray of shape (n_components, n_features)
        Atoms as unit-norm rows, float64.

    Raises
    ------
    ValueError
        If ``coherence`` is below the lower bound for this shape.

    Warns
    -----
    ConvergenceWarning
        If the atoms of different pairs still correlate more than
        ``coherence`` after ``max_iter`` steps (the mutual coherence is then
        above ``coherence``; the returned dictionary is the last one).

    See Also
    --------
    skunroll.datasets.make_dictionary : Gaussian, DCT and incoherent
        dictionaries (coherence at most a target).
    skunroll.metrics.mutual_coherence : The coherence of a dictionary.

    References
    ----------
    .. [1] Donoho & Huo, "Uncertainty principles and ideal atomic
       decomposition", IEEE Trans. Inf. Theory 47(7), 2001.
    .. [2] Tropp, Dhillon, Heath & Strohmer, "Designing structured tight frames
       via an alternating projection method", IEEE Trans. Inf. Theory 51(1),
       2005.

    Examples
    --------
    >>> from skunroll.metrics import mutual_coherence
    >>> from skunroll.recovery import make_coherent_dictionary
    >>> D = make_coherent_dictionary(48, 32, 0.3, random_state=0)
    >>> D.shape, round(mutual_coherence(D), 6)
    ((48, 32), 0.3)
    >>> round(float(D[0] @ D[1]), 6)
    0.3
    """
    bound, bound_name = _coherence_lower_bound(n_components, n_features)
    if coherence < bound:
        raise ValueError(
            f"coherence={coherence} is below the {bound_name} {bound:.6g} for a "
            f"dictionary of shape (n_components, n_features)=({n_components}, "
            f"{n_features}); no such dictionary exists. Ask for a coherence of "
            f"at least {bound:.6g} (in practice about 1.5 times it)."
        )
    rng = check_random_state(random_state)
    start = min(coherence, _default_coherence(n_components, n_features))
    with warnings.catch_warnings():
        # The start only needs to be incoherent, not at its target.
        warnings.simplefilter("ignore", ConvergenceWarning)
        D = make_dictionary(
            n_components,
            n_features,
            kind="incoherent",
            coherence=start,
            max_iter=max_iter,
            random_state=rng,
        )
    D = _snap_pairs(D, coherence)
    D, largest = _decorrelate_pairs(D, coherence, max_iter)
    if largest > coherence:
        warnings.warn(
            f"make_coherent_dictionary did not bring the atoms of different "
            f"pairs below coherence={coherence:.4g} within max_iter={max_iter} "
            f"steps; the mutual coherence is {largest:.4g}. Increase max_iter "
            "or coherence.",
            ConvergenceWarning,
            stacklevel=2,
        )
    return D


@validate_params(
    {
        "coherence": ["array-like", Interval(Real, 0, 1, closed="right")],
        "n_features": [Interval(Integral, 2, None, closed="left")],
        "rule": [StrOptions({"agm", "uniqueness"})],
    },
    prefer_skip_nested_validation=True,
)
def sparsity_bound(coherence, n_features, *, rule="agm"):
    r"""Sparsity up to which theory guarantees recovery at a mutual coherence.

    Parameters
    ----------
    coherence : float or array-like of float in (0, 1]
        Mutual coherence :math:`\mu` of the dictionary (unit-norm atoms).
    n_features : int
        Dimension :math:`n` of the atoms.
    rule : {"agm", "uniqueness"}, default="agm"
        - ``"agm"``: Arora, Ge & Moitra [1]_ learn a :math:`\mu'`-incoherent
          dictionary (inner products at most :math:`\mu' / \sqrt{n}`, so
          :math:`\mu' = \mu \sqrt{n}`) from codes with up to
          :math:`k \le c \sqrt{n} / (\mu' \log n)` non-zeros, that is
          :math:`k \le c / (\mu \log n)`. Returned with :math:`c = 1`: the
          constant is not given, so the line marks an order of magnitude, not
          a threshold. The alternating minimisation of Agarwal et al. [2]_ is
          guaranteed in the same incoherent regime, with sparsity conditions
          of the same kind (and stricter powers).
        - ``"uniqueness"``: :math:`(1 + 1/\mu) / 2`, below which a sparse code
          is the unique sparsest one and is found by OMP and basis pursuit
          when the dictionary is known [3]_; a dictionary learner cannot be
          expected to do better.

    Returns
    -------
    bound : float or ndarray
        The sparsity bound (not rounded), of the shape of ``coherence``.

    References
    ----------
    .. [1] Arora, Ge & Moitra, "New algorithms for learning incoherent and
       overcomplete dictionaries", COLT 2014 (PMLR 35:779-806).
    .. [2] Agarwal, Anandkumar, Jain, Netrapalli & Tandon, "Learning sparsely
       used overcomplete dictionaries", COLT 2014 (PMLR 35:123-137).
    .. [3] Donoho & Elad, "Optimally sparse representation in general
       (nonorthogonal) dictionaries via l1 minimization", PNAS 100(5), 2003.

    Examples
    --------
    >>> from skunroll.recovery import sparsity_bound
    >>> round(sparsity_bound(0.25, 32, rule="uniqueness"), 3)
    2.5
    >>> round(sparsity_bound(0.25, 32), 3)
    1.154
    """
    mu = np.asarray(coherence, dtype=np.float64)
    if np.any(~(mu > 0) | ~(mu <= 1)):
        raise ValueError(f"coherence must lie in (0, 1], got {coherence!r}.")
    if rule == "agm":
        bound = 1.0 / (mu * np.log(n_features))
    else:
        bound = 0.5 * (1.0 + 1.0 / mu)
    return float(bound) if bound.ndim == 0 else bound


_REGIMES = {
    "incoherent": {
        "noise": lambda n_features: 0.0,
        "reference": "Arora, Ge & Moitra 2014; Agarwal et al. 2014",
    },
    "noisy": {
        "noise": lambda n_features: 0.5 / np.sqrt(n_features),
        "reference": "Gribonval, Jenatton & Bach 2015",
    },
}


@validate_params(
    {
        "name": [StrOptions(set(_REGIMES))],
        "n_features": [Interval(Integral, 2, None, closed="left")],
        "n_components": [Interval(Integral, 2, None, closed="left")],
        "n_points": [Interval(Integral, 2, None, closed="left")],
    },
    prefer_skip_nested_validation=True,
)
def recovery_regime(name, *, n_features, n_components, n_points=6):
    r"""Settings of a phase diagram in a regime where theory predicts recovery.

    Both regimes use codes with random signs and magnitudes in ``[1, 2]``
    (bounded away from zero, as the guarantees assume) and sweep the
    coherence from about 1.5 times its lower bound (the Welch bound) to 0.9
    and the sparsity from 1 to :math:`1.5 \sqrt{n}`, beyond the bounds of
    :func:`sparsity_bound`, so that the diagram shows where recovery stops.

    Parameters
    ----------
    name : {"incoherent", "noisy"}
        - ``"incoherent"``: no noise, the setting of Arora, Ge & Moitra [1]_
          and Agarwal et al. [2]_: incoherent dictionaries are learned from
          codes of sparsity up to about :math:`1 / (\mu \log n)` (see
          :func:`sparsity_bound`).
        - ``"noisy"``: white noise of standard deviation
          :math:`0.5 / \sqrt{n}`, a noise vector of norm about 0.5, half the
          smallest non-zero code magnitude. Gribonval, Jenatton & Bach [3]_
          show that the lasso-based cost then still has a local minimum near
          the planted dictionary when the sparsity is of order :math:`1/\mu`
          and the penalty is of the order of the smallest code magnitude or
          below (within constants of their theorems), so a learner of the
          lasso cost can recover it; ``alpha=0.1`` in the methods is in that
          range for these codes.
    n_features : int
        Dimension :math:`n` of the atoms.
    n_components : int
        Number of atoms.
    n_points : int, default=6
        Number of coherences and (at most) of sparsities.

    Returns
    -------
    settings : dict
        Keyword arguments of :func:`recovery_phase_diagram`: ``sparsities``,
        ``coherences``, ``noise`` and ``code_distribution``.

    References
    ----------
    .. [1] Arora, Ge & Moitra, "New algorithms for learning incoherent and
       overcomplete dictionaries", COLT 2014.
    .. [2] Agarwal, Anandkumar, Jain, Netrapalli & Tandon, "Learning sparsely
       used overcomplete dictionaries", COLT 2014.
    .. [3] Gribonval, Jenatton & Bach, "Sparse and spurious: dictionary
       learning with noise and outliers", IEEE Trans. Inf. Theory 61(11),
       2015.

    Examples
    --------
    >>> from skunroll.recovery import recovery_regime
    >>> settings = recovery_regime("incoherent", n_features=32, n_components=48)
    >>> settings["sparsities"], settings["coherences"]
    ((1, 2, 4, 5, 7, 8), (0.15, 0.22, 0.31, 0.44, 0.63, 0.9))
    """
    bound, _ = _coherence_lower_bound(n_components, n_features)
    low = max(1.5 * bound, 0.05)
    coherences = np.unique(np.round(np.geomspace(low, 0.9, n_points), 2))
    top = min(1.5 * np.sqrt(n_features), n_components)
    sparsities = np.unique(np.round(np.linspace(1, top, n_points)).astype(int))
    return {
        "sparsities": tuple(int(s) for s in sparsities),
        "coherences": tuple(float(c) for c in coherences),
        "noise": float(_REGIMES[name]["noise"](n_features)),
        "code_distribution": "uniform",
    }
