"""Dictionary learning by an unrolled sparse auto-encoder.

``UnrolledDictionaryLearning`` is built in three layers: the validated
estimator here; the dispatcher
``skunroll._autoencoder.forward_backward`` (chunks and threads); the numba
kernels of ``skunroll._kernels._unrolled`` (forward pass and hand-written
gradients).
"""

import copy
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
import scipy.sparse as sp
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._coding.sparse_coding import _sparse_encode
from .._parallel import N_JOBS, single_threaded_blas
from .._parts import archetypal
from .._parts.dictionaries import project_rows
from .._parts.encoders import DENSE_ENCODERS, ENCODERS, encoder_step
from .._parts.likelihoods import LIKELIHOODS, check_counts, curvature, mean
from .._parts.priors import (
    LASSO_PRIORS,
    PRIORS,
    kernel_prior,
    resolve_groups,
    resolve_negative_alpha,
    warn_deprecated_prior,
)
from .._training import (
    CallbackSupportMixin,
    Sums,
    Trainer,
    TrainingState,
    atomic,
    with_callbacks,
)
from .._training.optim import OPTIMIZERS
from .._validation import FLOAT_DTYPES, check_dictionary, check_n_nonzero_coefs
from ..utils import _lipschitz_from_gram, _smaller_gram
from .network import Network, forward_backward

GRADIENTS = ("auto", "ae-ls", "ae-lasso", "dec")
SWITCH_TOL = 1e-2
"""``gradient="auto"`` moves from dec to ae-ls once the objective of a period
changes by less than this (relative)."""
PARTIAL_FIT_PERIOD = 100
"""``partial_fit`` judges the objective over periods of this many samples per
atom (an epoch in ``fit``): shorter ones are too noisy for the switch."""
SWITCH_LEARNING_RATE_FACTOR = 1 / 30
"""... and multiplies the learning rate by this: the ae-ls phase refines a
dictionary already near a solution, where Adam's noise floor (proportional to
the learning rate) would otherwise dominate the remaining bias."""
DUPLICATE_COHERENCE = 0.85
RARE_USAGE = 0.5
"""An atom is re-drawn as a duplicate when its ``|cos|`` with another exceeds
``DUPLICATE_COHERENCE`` and it is the less used of the two, used less than
``RARE_USAGE`` times the median atom (two copies of one atom split its
samples; two coherent true atoms are both used fully)."""
TRANSFORM_ALGORITHMS = ("unrolled", "lasso", "fista", "ista", "omp")
TRANSFORM_OUTPUTS = ("dense", "sparse")


@dataclass
class _TrainingState(TrainingState):
    """The trainer's state plus what the dictionary-learning model updates;
    ``params["D"]`` is the dictionary."""

    net: Network = None
    curvature: float = 1.0
    power_vector: np.ndarray = None
    usage: np.ndarray = None
    samples_since_check: int = 0
    n_redrawn: int = 0
    gradient: str = "dec"
    previous_period_objective: float = np.nan
    switched_at: int = 0
    step: float = None  # the encoder's step of the current minibatch
    redraw_due: bool = False  # dead atoms looked for after the current minibatch
    pending_redraw: tuple = None  # (dead atoms, worst residuals): before the next
    candidates: np.ndarray = None  # the archetypal dictionary's C; None: free

    @property
    def D(self):
        return self.params["D"]


class UnrolledDictionaryLearning(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    CallbackSupportMixin,
    BaseEstimator,
):
    """Dictionary learning with an unrolled sparse auto-encoder (CRsAE / PUDLE).

    The encoder is ``n_unroll`` ISTA or FISTA steps whose weights are tied to
    the dictionary ``D`` (atoms as rows)::

        z_0 = 0,   z_{t+1} = P(z_t + a (x - f(z_t D)) D^T),   a = 1 / (c ||D||_2^2)

    with ``P`` the proximal map of the prior (the activation function) and
    ``f`` the inverse link of the likelihood; the decoder is ``f(z_T D)``. The
    dictionary is learned by minibatch first-order optimisation (Adam or SGD)
    of the negative log-likelihood of the reconstruction, with the gradient
    through the unrolled steps written by hand (see ``gradient``). Atoms are
    renormalised to unit norm after every step; atoms left unused, and rarely
    used near-duplicates of other atoms, are re-drawn from the residuals of
    badly reconstructed samples.

    Parameters
    ----------
    n_components : int, default=None
        Number of atoms; ``None`` means the number of atoms of ``dict_init``
        if given, else ``n_features``.
    alpha : float, default=0.1
        Weight of the prior penalty (the lasso ``lambda`` for ``prior="l1"``),
        per sample: the l1 objective is ``0.5 ||x - z D||^2 + alpha ||z||_1``,
        the convention of SPAMS' ``lambda1`` and scikit-learn's ``alpha``.
    n_unroll : int, default=30
        Depth ``T`` of the encoder.
    encoder : {"fista", "ista", "mp", "topk", "relu"}, default="fista"
        Unrolled algorithm; FISTA adds the usual momentum (which does not depend
        on ``D``). The others are the sparse-autoencoder (SAE) encoders of
        Costa et al. [5]_, with the decoder ``z D + b`` (``b`` the pre-bias,
        see ``fit_intercept``) and atoms kept at unit norm:

        - ``"mp"``: matching pursuit unrolled for ``n_nonzero_coefs`` steps.
          From ``r = x - b``, each step takes the atom of largest ``|c_j|``
          (largest ``c_j`` with ``positive_code``) in ``c = r D^T``, sets
          ``z_j = c_j`` and ``r -= c_j d_j``; the correlations are updated
          with rows of the Gram matrix (``c -= c_j G_j``). A sample stops
          earlier when ``||r|| <= transform_tol ||x||``, when the chosen atom
          is already active or when no correlation is left. Trained on the
          reconstruction error alone, by the gradient through the steps with
          the selections held fixed.
        - ``"topk"``: ``z = TopK((x - b) D^T + b_enc)``, the
          ``n_nonzero_coefs`` largest ``|.|`` (largest positive values with
          ``positive_code``), with a learned encoder bias ``b_enc``; trained
          on the reconstruction error.
        - ``"relu"``: ``z = ReLU((x - b) D^T + b_enc)``, trained on the
          reconstruction error plus ``alpha ||z||_1``.

        The SAE encoders need the Gaussian likelihood and ``prior="l1"``;
        ``n_unroll`` and the encoder step play no part; ``gradient`` is
        ``"dec"`` (codes held fixed) or the gradient through the encoder
        (``"auto"``, ``"ae-ls"``: the reconstruction error; ``"ae-lasso"``:
        plus ``alpha ||z||_1``; ``"auto"`` means ``"ae-lasso"`` for ReLU).
        They accept scipy sparse ``X`` (densified 512 rows at a time) and
        return sparse codes with ``transform_output="sparse"``.
    n_nonzero_coefs : int, default=None
        Steps of ``encoder="mp"`` (at most as many atoms per code) and atoms
        kept by ``encoder="topk"``; ignored by the other encoders. ``None``
        means ``max(1, n_features // 10)`` (scikit-learn's OMP default),
        capped at ``n_components``. Larger than ``n_components`` is a
        ValueError.
    fit_intercept : bool, default=False
        Learn a pre-bias ``b`` (n_features,), subtracted before encoding and
        added by the decoder, initialised at the mean of ``X`` (of the first
        ``partial_fit`` call). SAE encoders only (a ValueError otherwise).
    transform_tol : float in [0, 1), default=0.0
        ``encoder="mp"`` stops a sample once its residual norm is at most
        ``transform_tol * ||x||``, in training and in ``transform`` (the
        network is the same).
    transform_output : {"dense", "sparse"}, default="dense"
        Type of the codes returned by ``transform``: a dense ndarray, or a
        scipy CSR matrix (every encoder; the SAE encoders build it chunk by
        chunk without a dense ``(n_samples, n_components)`` array). A
        parameter rather than ``set_output``, which scikit-learn keeps for
        the dense containers (pandas, polars); with
        ``set_output(transform="pandas")`` dense codes become a DataFrame
        and sparse ones raise scikit-learn's ValueError.
    gradient : {"auto", "ae-ls", "ae-lasso", "dec"}, default="auto"
        Gradient of the dictionary update [1]_. ``"ae-ls"``: the gradient of the
        data loss through all ``T`` encoder steps; ``"ae-lasso"``: the same
        with the prior penalty ``h(z_T)`` added to the loss; ``"dec"``: the codes
        held fixed (the classical alternating step), which inherits the bias of
        the forward pass. ``"auto"`` starts with ``"dec"``, robust far from a
        solution, and moves to ``"ae-ls"``, which removes the bias near one,
        once the mean objective of an epoch (of ``100 n_components`` samples in
        ``partial_fit``) changes by less than 1 % relative, dividing the
        learning rate by 30 for that refinement; with the count likelihoods
        ``"auto"`` stays with ``"dec"`` (see Notes).
    prior : {"l1", "ridge", "two_sided_gaussian", "group_l1", "simplex"}, \
            default="l1"
        Prior on the codes, i.e. the encoder's activation [2]_: soft-threshold
        (``ReLU(u - a alpha)`` with ``positive_code``), linear shrink, leaky
        ReLU with one slope per sign, group shrink over ``groups``, projection
        onto the probability simplex (``alpha`` is unused there).

        .. deprecated:: 0.1
           ``prior="nonneg_l1"`` is deprecated; use ``prior="l1",
           positive_code=True``, which gives the same results.
    positive_code : bool, default=False
        Constrain the codes to be non-negative (in training and in
        ``transform``); with ``prior="l1"`` this is the non-negative l1 prior.
        The simplex prior is non-negative already; the other priors raise a
        ValueError.
    likelihood : {"gaussian", "poisson", "binomial"}, default="gaussian"
        Exponential-family likelihood [2]_: squared loss; counts with inverse
        link ``exp``; counts out of ``n_trials`` with inverse link
        ``n_trials * sigmoid``. Count likelihoods need non-negative integer X.
    n_trials : int, default=1
        Number of trials of the binomial likelihood.
    groups : int or array-like of shape (n_components,), default=None
        Groups of ``prior="group_l1"``: a group size (consecutive atoms) or one
        label per atom. Required for that prior, ignored otherwise.
    negative_alpha : float, default=None
        Penalty of negative codes for ``prior="two_sided_gaussian"``
        (``alpha`` penalises positive ones); ``None`` means ``10 * alpha``.
    batch_size : int, default=256
        Samples per minibatch.
    max_iter : int, default=30
        Maximum number of passes (epochs) over the data in ``fit``; ``tol``
        usually stops it earlier (see Notes).
    learning_rate : float, default=0.03
        Step of the optimiser. Adam's is a step per dictionary entry, invariant
        to the scale of the gradient; SGD's multiplies the gradient of the mean
        loss of a minibatch.
    optimizer : {"adam", "sgd"}, default="adam"
        First-order optimiser of the dictionary.
    tol : float, default=1e-3
        ``fit`` stops when the mean training objective of an epoch changes by
        less than ``tol`` relative to the previous epoch.
    dict_init : ndarray of shape (n_components, n_features), default=None
        Initial dictionary (rows are renormalised to unit norm: atoms of
        any norm are accepted and only their direction is used; the array
        is not modified). ``None`` draws distinct samples of ``X`` (minus the
        pre-bias with ``fit_intercept``, unit-normalised), as SPAMS does.
    positive_dict : bool, default=False
        Keep the atoms non-negative.
    transform_algorithm : {"unrolled", "lasso", "fista", "ista", "omp"}, \
            default="unrolled"
        Encoder of ``transform``: the trained network, or an exact solver of
        :func:`skunroll.sparse_encode` (Gaussian likelihood with an l1 prior).
    transform_alpha : float, default=None
        Penalty of ``transform``; ``None`` means ``alpha``.
    transform_n_nonzero_coefs : int, default=None
        Sparsity of ``transform_algorithm="omp"``.
    transform_max_iter : int, default=1000
        Iteration budget of the exact solvers of ``transform`` (not of the
        unrolled network, whose depth is ``n_unroll``); a solver that does
        not converge within it warns.
    random_state : int, RandomState instance or None, default=None
        Seed of the initial dictionary, the shuffling and the re-drawn atoms.
    n_jobs : int, default=None
        Threads over chunks of 128 samples (``None`` means 1, ``-1`` all
        cores): a minibatch of at most 128 samples runs on one thread.
        Results do not depend on it.
    verbose : int, default=0
        1 prints a line per epoch (objective, elapsed time); 2 also every
        10 steps.
    callback : callable, default=None
        ``callback(estimator, info)`` called after every step (of ``fit``
        and of ``partial_fit``), with ``info`` a
        dict of ``n_iter`` (epoch), ``n_steps``, ``objective`` (of the
        minibatch), ``learning_rate``, ``elapsed`` (s) and ``components``
        (the current dictionary, read-only). Returning True stops training.
    dictionary : {"free", "archetypal"}, default="free"
        Parametrisation of the dictionary. ``"free"``: unit-norm atoms,
        anywhere on the sphere (non-negative with ``positive_dict``).
        ``"archetypal"`` (A-SAE / RA-SAE [4]_): ``D = normalise(W C + Lambda)``
        with ``C`` fixed candidate points of the data scaled to unit norm, ``W``
        row-stochastic (each atom a convex combination of candidates, kept on
        the simplex by an exact Euclidean projection) and ``Lambda`` a
        relaxation with ``||Lambda_i||_2 <= delta``; ``W`` and ``Lambda`` are
        trained from the ``D``-gradient of the encoder, whichever it is. Atoms
        are unit-norm as in ``"free"``: an atom is the direction of a point of
        the relaxed convex hull of the candidates, and ``delta`` is relative to
        unit norm. Each step costs ``O(n_components n_candidates n_features)``
        more than ``"free"``. It takes neither ``positive_dict`` nor
        ``dict_init``.
    n_candidates : int, default=None
        Number of candidates of ``dictionary="archetypal"`` (ignored
        otherwise, and when ``candidates`` is an array), drawn from ``X`` (the
        first batch in ``partial_fit``). ``None`` means ``4 n_components``,
        at most 4096 and at most the number of samples; a larger value than
        the number of samples is a ValueError. ``W`` is a dense ``(n_components,
        n_candidates)`` array, and Adam keeps two float64 moments of it.
    candidates : {"kmeans", "samples"} or array-like of shape \
            (n_candidates, n_features), default="kmeans"
        The candidate points ``C`` of ``dictionary="archetypal"``, scaled to
        unit norm: k-means centroids of a random subsample of at most
        ``20 n_candidates`` samples (at most 30 Lloyd iterations), distinct
        random samples (no clustering: the cheap choice at scale, where
        k-means of thousands of centroids takes minutes), or the given points
        (not modified).
    delta : float, default=0.0
        Radius of the relaxation of ``dictionary="archetypal"``: 0 keeps the
        atoms in the cone of the candidates (A-SAE), a positive value lets each
        move by at most ``delta`` off it before normalisation (RA-SAE).

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The learned atoms (unit-norm rows); with ``dictionary="archetypal"``
        the fused ``normalise(archetype_weights_ @ candidates_ +
        relaxation_)``.
    candidates_ : ndarray of shape (n_candidates, n_features)
        Only with ``dictionary="archetypal"``: the unit-norm candidate points.
    archetype_weights_ : ndarray of shape (n_components, n_candidates)
        Only with ``dictionary="archetypal"``: ``W``, rows on the simplex.
    relaxation_ : ndarray of shape (n_components, n_features)
        Only with ``dictionary="archetypal"``: ``Lambda``, rows of norm at most
        ``delta``.
    intercept_ : ndarray of shape (n_features,)
        The learned pre-bias ``b`` (zeros without ``fit_intercept``), added
        by ``inverse_transform``.
    encoder_bias_ : ndarray of shape (n_components,) or None
        The encoder bias ``b_enc`` of ``encoder="topk"`` and ``"relu"``
        (None for the others).
    n_components_ : int
        Number of atoms.
    step_size_ : float
        Encoder step ``1 / (c ||D||_2^2)`` of the fitted dictionary (NaN for
        the SAE encoders, which have none).
    objective_history_ : ndarray of shape (`n_iter_`,)
        Mean training objective per sample of every epoch (of every
        ``partial_fit`` call): the objective the gradient in use descends,
        data loss plus penalty for ``"dec"`` and ``"ae-lasso"``, the data loss
        alone for ``"ae-ls"`` (so it drops at the ``"auto"`` switch).
    n_iter_ : int
        Number of epochs run (``partial_fit`` calls count as one each).
    n_steps_ : int
        Number of minibatch updates.
    n_redrawn_ : int
        Number of atoms re-drawn because they fell out of use or duplicated
        another atom (SAE encoders: because no code used them for a whole
        epoch, see Notes).
    learning_rate_ : float
        Learning rate in use at the end (lower than ``learning_rate`` after
        the ``"auto"`` switch, or if a non-finite objective forced it down).
    gradient_ : str
        Gradient in use at the end (``"dec"`` or ``"ae-ls"`` for ``"auto"``).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column names.

    See Also
    --------
    UnrolledSparseCoder : Coding with a fixed dictionary.
    sklearn.decomposition.MiniBatchDictionaryLearning : The alternating
        (lasso, then dictionary) counterpart.

    Notes
    -----
    ``score`` is minus the mean objective (data loss plus penalty) of the
    fitted network on ``X`` (higher is better). It is comparable across
    dictionaries for one ``alpha``, not across values of ``alpha``: to choose
    ``alpha`` or ``n_components``, grid-search a downstream score (a
    ``Pipeline``). The ae-ls refinement trades penalty for reconstruction, so
    it can lower this score while it brings the atoms closer to planted ones.

    Measurements behind the defaults (see the user guide): started far from
    the solution, ``gradient="ae-ls"`` alone often settles on a spurious
    dictionary; started near it, it ends 5-10 times closer than ``"dec"``
    (see the gradient-bias example). With the count likelihoods the ae-ls
    refinement moved away from planted dictionaries, so ``"auto"`` stays with
    ``"dec"`` there. ``tol`` stopped ``fit`` after 7 epochs on the 128-atom
    benchmark and after 10 to 25 on small coherent problems.

    Dead atoms of the SAE encoders: an atom that no code of a whole epoch
    used (of the last ``20 n_components`` samples in ``partial_fit``) is
    re-drawn, at the end of that epoch, as the residual ``x - b - z D`` of
    one of the worst-reconstructed samples of the last minibatch (largest
    loss first; a random direction if there are more dead atoms than
    samples), with a zero encoder bias and fresh Adam moments. The
    near-duplicate rule of the proximal encoders is not applied: coherent
    atoms (a parent and its children) are what these encoders are for.

    Memory of the SAE encoders: the correlations of one chunk of 512 rows
    (``512 x n_components``), the Gram matrix ``D D^T`` for ``"mp"``
    (``n_components^2``, 64 MB in float32 for 4,096 atoms, 1 GB for 16,384),
    and the codes as ``n_nonzero_coefs`` (index, value) pairs per sample;
    never a dense ``(n_samples, n_components)`` array unless
    ``transform_output="dense"`` asks for one. ``partial_fit`` over chunks of
    a ``numpy.memmap`` streams activations that do not fit in memory.

    References
    ----------
    .. [1] Tolooshams & Ba, "Stable and interpretable unrolled dictionary
       learning", Transactions on Machine Learning Research, 2022.
    .. [2] Tolooshams, Dey & Ba, "Deep residual autoencoders for expectation
       maximization-inspired dictionary learning", IEEE TNNLS 32(6), 2020.
    .. [3] Kingma & Ba, "Adam: a method for stochastic optimization", ICLR 2015.
    .. [4] Fel, Lubana, Prince, Kowal, Boutin, Papadimitriou, Wang, Wattenberg,
       Ba & Konkle, "Archetypal SAE: adaptive and stable dictionary learning
       for concept extraction in large vision models", ICML 2025.
    .. [5] Costa, Fel, Lubana, Tolooshams & Ba, "From flat to hierarchical:
       extracting sparse representations with matching pursuit", NeurIPS
       2025.

    Examples
    --------
    >>> from skunroll import UnrolledDictionaryLearning
    >>> from skunroll.datasets import make_dictionary, make_sparse_coded_data
    >>> D = make_dictionary(20, 10, random_state=0)
    >>> X, _, _ = make_sparse_coded_data(500, D, n_nonzero_coefs=2, random_state=0)
    >>> dl = UnrolledDictionaryLearning(20, alpha=0.1, max_iter=5, tol=0,
    ...                                 random_state=0)
    >>> codes = dl.fit_transform(X)
    >>> codes.shape, dl.components_.shape
    ((500, 20), (20, 10))
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left"), None],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_unroll": [Interval(Integral, 1, None, closed="left")],
        "encoder": [StrOptions(set(DENSE_ENCODERS))],
        "n_nonzero_coefs": [Interval(Integral, 1, None, closed="left"), None],
        "fit_intercept": ["boolean"],
        "transform_tol": [Interval(Real, 0, 1, closed="left")],
        "transform_output": [StrOptions(set(TRANSFORM_OUTPUTS))],
        "gradient": [StrOptions(set(GRADIENTS))],
        "prior": [StrOptions(set(PRIORS), deprecated={"nonneg_l1"})],
        "positive_code": ["boolean"],
        "likelihood": [StrOptions(set(LIKELIHOODS))],
        "n_trials": [Interval(Integral, 1, None, closed="left")],
        "groups": [Interval(Integral, 1, None, closed="left"), "array-like", None],
        "negative_alpha": [Interval(Real, 0, None, closed="left"), None],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "tol": [Interval(Real, 0, None, closed="left")],
        "dict_init": ["array-like", None],
        "positive_dict": ["boolean"],
        "transform_algorithm": [StrOptions(set(TRANSFORM_ALGORITHMS))],
        "transform_alpha": [Interval(Real, 0, None, closed="left"), None],
        "transform_n_nonzero_coefs": [Interval(Integral, 1, None, closed="left"), None],
        "random_state": ["random_state"],
        "transform_max_iter": [Interval(Integral, 1, None, closed="left")],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
        "callback": [callable, None],
        "dictionary": [StrOptions({"free", "archetypal"})],
        "n_candidates": [Interval(Integral, 1, None, closed="left"), None],
        "candidates": [StrOptions({"kmeans", "samples"}), "array-like"],
        "delta": [Interval(Real, 0, None, closed="left")],
    }

    def __init__(
        self,
        n_components=None,
        *,
        alpha=0.1,
        n_unroll=30,
        encoder="fista",
        n_nonzero_coefs=None,
        fit_intercept=False,
        transform_tol=0.0,
        transform_output="dense",
        gradient="auto",
        prior="l1",
        positive_code=False,
        likelihood="gaussian",
        n_trials=1,
        groups=None,
        negative_alpha=None,
        batch_size=256,
        max_iter=30,
        learning_rate=0.03,
        optimizer="adam",
        tol=1e-3,
        dict_init=None,
        positive_dict=False,
        transform_algorithm="unrolled",
        transform_alpha=None,
        transform_n_nonzero_coefs=None,
        transform_max_iter=1000,
        random_state=None,
        n_jobs=None,
        verbose=0,
        callback=None,
        dictionary="free",
        n_candidates=None,
        candidates="kmeans",
        delta=0.0,
    ):
        self.n_components = n_components
        self.alpha = alpha
        self.n_unroll = n_unroll
        self.encoder = encoder
        self.n_nonzero_coefs = n_nonzero_coefs
        self.fit_intercept = fit_intercept
        self.transform_tol = transform_tol
        self.transform_output = transform_output
        self.gradient = gradient
        self.prior = prior
        self.positive_code = positive_code
        self.likelihood = likelihood
        self.n_trials = n_trials
        self.groups = groups
        self.negative_alpha = negative_alpha
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.optimizer = optimizer
        self.tol = tol
        self.dict_init = dict_init
        self.positive_dict = positive_dict
        self.transform_algorithm = transform_algorithm
        self.transform_alpha = transform_alpha
        self.transform_n_nonzero_coefs = transform_n_nonzero_coefs
        self.transform_max_iter = transform_max_iter
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.callback = callback
        self.dictionary = dictionary
        self.n_candidates = n_candidates
        self.candidates = candidates
        self.delta = delta

    # ------------------------------------------------------------ fitting

    @atomic
    @with_callbacks
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Learn the dictionary from ``X`` by minibatch training.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (non-negative integer counts for the count
            likelihoods).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        self._check_compatible()
        self._warn_deprecated_prior()
        X = self._validate_X(X, reset=True)
        trainer = self._trainer()
        with single_threaded_blas():  # threads run over chunks; BLAS stays serial
            state = self._initial_state(X)
            trainer.fit(state, X, X, y)
        self._set_fitted(state)
        trainer.warn_if_not_converged(state)
        return self

    @atomic
    def partial_fit(self, X, y=None):
        """Update the dictionary with one minibatch step on ``X``.

        The first call initialises the dictionary from ``X`` (or
        ``dict_init``) and the curvature of the likelihood; later calls
        continue the same optimiser, with the current parameters (``alpha``,
        ``n_unroll``, ... set since are used).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One minibatch.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first = not hasattr(self, "components_")
        self._validate_params()
        self._check_compatible()
        self._warn_deprecated_prior()
        X = self._validate_X(X, reset=first)
        if first:
            state = self._initial_state(X)
        else:
            state = copy.deepcopy(self._state)
            state.net = self._network(*state.D.shape)
        X = X.astype(state.D.dtype, copy=False)  # the dtype of the first call
        with single_threaded_blas():
            self._trainer().partial_fit(state, X)
        self._set_fitted(state)
        return self

    def _trainer(self):
        return Trainer.for_estimator(self, what="dictionary")

    def _validate_X(self, X, reset):
        X = validate_data(
            self, X, dtype=FLOAT_DTYPES, order="C", reset=reset,
            accept_sparse="csr" if self._autoencoder else False,
        )  # fmt: skip
        if not sp.issparse(X):
            check_counts(X, self.likelihood, self.n_trials)
        return X

    @property
    def _autoencoder(self):
        """A sparse-autoencoder encoder (``mp``, ``topk``, ``relu``)."""
        return ENCODERS[self.encoder].autoencoder

    @property
    def _penalised(self):
        """Whether the objective of a sparse-autoencoder encoder has the
        penalty ``alpha ||z||_1``: with ``gradient="ae-lasso"`` (and
        ``"dec"`` or ``"auto"`` for ReLU, whose sparsity comes from it)."""
        if self.encoder == "relu":
            return self.gradient != "ae-ls"
        return self.gradient == "ae-lasso"

    def _n_nonzero_coefs(self, n_components, n_features):
        """Steps of ``mp``, kept atoms of ``topk`` (0 for the others)."""
        if not ENCODERS[self.encoder].sparsity_steps:
            return 0
        if self.n_nonzero_coefs is None:
            return max(1, min(n_components, n_features // 10))
        return check_n_nonzero_coefs(self.n_nonzero_coefs, n_components)

    def _network(self, n_components, n_features=None, alpha=None):
        alpha = self.alpha if alpha is None else alpha
        if self._autoencoder:
            return Network(
                n_unroll=1,
                encoder=self.encoder,
                prior=self._kernel_prior,
                alpha=float(alpha) if self._penalised else 0.0,
                negative_alpha=0.0,
                groups=None,
                n_nonzero_coefs=self._n_nonzero_coefs(n_components, n_features),
                tol=float(self.transform_tol),
                positive=self._kernel_prior == "nonneg_l1",
            )
        return Network(
            n_unroll=self.n_unroll,
            encoder=self.encoder,
            prior=self._kernel_prior,
            alpha=float(alpha),
            negative_alpha=resolve_negative_alpha(
                self.prior, float(alpha), self.negative_alpha
            ),
            groups=resolve_groups(self.prior, self.groups, n_components),
            likelihood=self.likelihood,
            n_trials=float(self.n_trials),
        )

    def _initial_state(self, X):
        rng = check_random_state(self.random_state)
        n_components = self.n_components
        if n_components is None:
            n_components = X.shape[1] if self.dict_init is None else len(self.dict_init)
        net = self._network(n_components, n_features=X.shape[1])
        params = {}
        if self._autoencoder and self.fit_intercept:
            params["b"] = np.asarray(X.mean(axis=0), dtype=X.dtype).ravel()
        candidates = None
        if self.dictionary == "archetypal":
            arch, candidates = archetypal.initial_parameters(
                X, n_components, self.n_candidates, self._candidates(X), rng
            )
            params.update(arch)
            D = params["D"]
        elif self.dict_init is None:
            D = _dictionary_from_samples(X, n_components, rng, params.get("b"))
        else:
            D = check_dictionary(self.dict_init, dtype=X.dtype, n_features=X.shape[1])
            if D.shape[0] != n_components:
                raise ValueError(
                    f"dict_init has {D.shape[0]} atoms (shape {D.shape}) but "
                    f"n_components={n_components}."
                )
            D = D.copy()
        if candidates is None:
            project_rows(D, self.positive_dict, rng)
            params["D"] = D
        if ENCODERS[self.encoder].kind == "shallow":
            params["b_enc"] = np.zeros(n_components, dtype=X.dtype)
        gradient = self.gradient
        if gradient == "auto":
            gradient = "dec" if not self._autoencoder else "ae-ls"
            if self._autoencoder and self._penalised:
                gradient = "ae-lasso"
        return _TrainingState(
            params=params,
            optimizers=self._optimizers(params),
            rng=rng,
            learning_rate=float(self.learning_rate),
            curvature=curvature(self.likelihood, self.n_trials, X),
            power_vector=rng.standard_normal(min(D.shape)),
            usage=np.zeros(n_components, dtype=np.int64),
            gradient=gradient,
            net=net,
            candidates=candidates,
        )

    def _optimizers(self, params):
        """An optimiser per trained array: every one of ``params`` but, for
        the archetypal dictionary, ``D`` and ``norms``, fused from ``W`` and
        ``Lambda``."""
        derived = ("D", "norms") if "W" in params else ()
        return {
            name: OPTIMIZERS[self.optimizer](value.shape)
            for name, value in params.items()
            if name not in derived
        }

    def _candidates(self, X):
        """``candidates`` validated: "kmeans" or an array of X's width."""
        if isinstance(self.candidates, str):
            return self.candidates
        C = check_array(self.candidates, dtype=FLOAT_DTYPES, input_name="candidates")
        if C.shape[1] != X.shape[1]:
            raise ValueError(
                f"candidates has {C.shape[1]} features (shape {C.shape}); X has "
                f"{X.shape[1]}."
            )
        return C

    @property
    def _kernel_prior(self):
        """The prior's name in the kernels (``_parts.priors.kernel_prior``)."""
        return kernel_prior(self.prior, self.positive_code)

    def _warn_deprecated_prior(self):
        warn_deprecated_prior(self.prior, stacklevel=3)

    def _check_compatible(self):
        kernel_prior(self.prior, self.positive_code)  # raises if incompatible
        if self.dictionary == "archetypal" and (
            self.positive_dict or self.dict_init is not None
        ):
            raise ValueError(
                "dictionary='archetypal' keeps the atoms in the hull of its "
                "candidates; it takes neither positive_dict=True nor dict_init "
                "(pass candidates= to choose the hull)."
            )
        if self._autoencoder and (
            self.likelihood != "gaussian" or self._kernel_prior not in LASSO_PRIORS
        ):
            raise ValueError(
                f"encoder={self.encoder!r} is a sparse autoencoder with the "
                "Gaussian likelihood and no prior of its own; it needs "
                "likelihood='gaussian' and prior='l1' (positive_code chooses "
                f"the sign), got likelihood={self.likelihood!r}, "
                f"prior={self.prior!r}."
            )
        if self.fit_intercept and not self._autoencoder:
            raise ValueError(
                "fit_intercept=True (a learned pre-bias) needs one of the "
                f"encoders 'mp', 'topk', 'relu'; got encoder={self.encoder!r}."
            )
        exact = self.transform_algorithm != "unrolled"
        if exact and (
            self.likelihood != "gaussian" or self._kernel_prior not in LASSO_PRIORS
        ):
            raise ValueError(
                f"transform_algorithm={self.transform_algorithm!r} solves the "
                "Gaussian lasso; it needs likelihood='gaussian' and prior='l1' "
                f"(with or without positive_code), got likelihood="
                f"{self.likelihood!r}, prior={self.prior!r}. Use "
                "transform_algorithm='unrolled'."
            )
        if self.transform_algorithm == "omp" and self._kernel_prior == "nonneg_l1":
            raise ValueError(
                "transform_algorithm='omp' has no non-negative variant "
                "(positive_code=True)."
            )

    # ------------------------------------------- the model of the trainer

    def n_units(self, X):
        return X.shape[0]

    def prepare(self, state, idx):
        """The dead atoms found after the previous minibatch re-drawn (so that
        a re-drawn atom is always trained: none is left untrained at the end
        of ``fit``), the encoder's step (warm-started power iteration on
        ``D``) and whether dead atoms are looked for after this minibatch."""
        if state.pending_redraw is not None:
            self._redraw(state, *state.pending_redraw)
            state.pending_redraw = None
        autoencoder = state.net.autoencoder
        state.step = 1.0 if autoencoder else self._encoder_step(state)
        period = _redraw_period(state.D.shape[0], state.epoch_units, autoencoder)
        state.redraw_due = state.samples_since_check + idx.size >= period

    def gradients(self, state, X, idx):
        """Summed objective and ``D``-gradient of the minibatch ``X[idx]``:
        the objective the gradient descends (ae-ls ignores the penalty); the
        atoms' usage, and when atoms are due to be re-drawn, the residuals of
        the worst-reconstructed samples."""
        X_batch = X[idx]
        if state.net.autoencoder:
            return self._autoencoder_gradients(state, X_batch)
        res = forward_backward(
            X_batch, state.D, state.net, state.step, state.gradient, self.n_jobs
        )
        penalty = 0.0 if state.gradient == "ae-ls" else res.penalty
        worst = None
        if state.redraw_due:
            worst = _worst_residuals(X_batch, res.codes, state.D, state.net)
        return Sums(
            objective=res.data_loss + penalty,
            n=X_batch.shape[0],
            grads={"D": res.grad},
            finite=bool(np.isfinite(res.penalty)),
            stats={"usage": np.count_nonzero(res.codes, axis=0)},
            extra=worst,
        )

    def _autoencoder_gradients(self, state, X_batch):
        """``gradients`` of the sparse-autoencoder encoders: the dictionary,
        the pre-bias ``b`` and the encoder bias ``b_enc`` (shallow); the
        atoms' usage, and when atoms are due to be re-drawn, the residuals
        ``x - b - z D`` of the worst-reconstructed samples."""
        res = forward_backward(
            X_batch, state.D, state.net, 1.0, state.gradient, self.n_jobs,
            intercept=state.params.get("b"),
            encoder_bias=state.params.get("b_enc"),
        )  # fmt: skip
        grads = {"D": res.grad}
        if "b" in state.params:
            grads["b"] = res.grad_intercept
        if "b_enc" in state.params:
            grads["b_enc"] = res.grad_encoder_bias
        codes = res.codes
        if sp.issparse(codes):
            usage = np.bincount(codes.indices, minlength=state.D.shape[0])
        else:
            usage = np.count_nonzero(codes, axis=0)
        worst = None
        if state.redraw_due:

            def residuals(rows):
                x = X_batch[rows]
                x = x.toarray() if sp.issparse(x) else np.array(x)
                return x - codes[rows] @ state.D - state.params.get("b", 0.0)

            worst = _worst(residuals, res.row_loss, state.D.shape[0])
        return Sums(
            objective=res.data_loss + res.penalty,
            n=X_batch.shape[0],
            grads=grads,
            finite=bool(np.isfinite(res.penalty)),
            stats={"usage": usage},
            extra=worst,
        )

    def combine_extra(self, extras):
        """The worst residuals of a minibatch from those of its shards."""
        return _merge_worst([e for e in extras if e is not None])

    def apply(self, state, X, idx, grads, sums):
        """The optimiser's step, the projection onto unit-norm (non-negative)
        atoms and the search for dead atoms (re-drawn before the next step)."""
        if state.candidates is None:
            state.optimizers["D"].step(state.D, grads["D"], state.learning_rate)
            project_rows(state.D, self.positive_dict, state.rng)
        else:  # the D-gradient, whatever the encoder, pulled back to W, Lambda
            archetypal.step(
                state.params, state.candidates, grads["D"], state.optimizers,
                state.learning_rate, self.delta,
            )  # fmt: skip
        for name in ("b", "b_enc"):  # the SAE encoders' biases
            if name in grads:
                state.optimizers[name].step(
                    state.params[name], grads[name], state.learning_rate
                )
        state.usage += sums.stats["usage"]
        state.samples_since_check += sums.n
        if state.redraw_due:
            dead = self._dead_atoms(state)
            if dead.size:
                state.pending_redraw = (dead, sums.extra)

    def reset_optimizers(self, state):
        state.optimizers = self._optimizers(state.params)

    def callback_info(self, state):
        return {"components": state.D}

    def period(self, state):
        """``partial_fit`` judges the objective over periods of this many samples."""
        return PARTIAL_FIT_PERIOD * state.D.shape[0]

    def end_epoch(self, state, X, objective, stats, n_seen):
        self._end_period(state, objective)

    def convergence_start(self, state):
        """The epochs after the ``"auto"`` switch; none before it."""
        if self._auto_switches and state.gradient == "dec":
            return None
        return state.switched_at

    def fitted_attributes(self, state):
        b = state.params.get("b")
        b_enc = state.params.get("b_enc")
        return {
            "_state": state,
            "_net": state.net,
            "components_": state.D.copy(),
            "intercept_": np.zeros(state.D.shape[1], state.D.dtype)
            if b is None
            else b.copy(),
            "encoder_bias_": None if b_enc is None else b_enc.copy(),
            "n_components_": state.D.shape[0],
            "step_size_": self._encoder_step(state, state.power_vector.copy()),
            "objective_history_": np.asarray(state.objective_history),
            "n_iter_": state.n_epochs,
            "n_steps_": state.n_steps,
            "n_redrawn_": state.n_redrawn,
            "learning_rate_": state.learning_rate,
            "gradient_": state.gradient,
            **_archetypal_attributes(state),
        }

    def _set_fitted(self, state):
        attributes = self.fitted_attributes(state)
        # the step from the warm-started power iteration (which a later
        # partial_fit continues from); fitted_attributes leaves it untouched
        attributes["step_size_"] = self._encoder_step(state)
        for name in ARCHETYPAL_ATTRIBUTES:  # of an earlier archetypal fit
            self.__dict__.pop(name, None)
        self.__dict__.update(attributes)

    def _encoder_step(self, state, power_vector=None):
        if state.net.autoencoder:
            return np.nan  # no step
        v = state.power_vector if power_vector is None else power_vector
        lipschitz = _lipschitz_from_gram(_smaller_gram(state.D), v=v)
        return encoder_step(lipschitz, state.curvature)

    def _dead_atoms(self, state):
        """The atoms to re-draw; the usage counts start again.

        Dead: unused over the last ``20 n_components`` samples or an epoch,
        whichever is shorter (the SAE encoders: over a whole epoch, or
        ``20 n_components`` samples in ``partial_fit``); for the proximal
        encoders also the rarely used near-duplicates (coherent atoms, a
        parent and its children, are what the SAE encoders are for); for the
        archetypal dictionary also atoms snapped onto one vertex."""
        dead = np.flatnonzero(state.usage == 0)
        if not state.net.autoencoder:
            dead = np.union1d(dead, _duplicates(state.D, state.usage))
        if state.candidates is not None:  # atoms snapped onto one vertex
            dead = np.union1d(dead, archetypal.copies(state.D))
        state.usage[:] = 0
        state.samples_since_check = 0
        return dead

    def _redraw(self, state, dead, worst):
        """Re-draw the ``dead`` atoms from the residuals of the
        worst-reconstructed samples of the minibatch that found them
        (``worst``: their residuals and losses, worst first; random
        directions if there are more dead atoms than samples), with fresh
        optimiser moments. A re-drawn atom's encoder bias (ReLU, TopK) is the
        median of the live atoms' biases: a zero bias among negative ones
        would let the new atom fire on every sample until Adam moves it."""
        residual, losses, _ = worst
        take = residual[: dead.size][losses[: dead.size] > 0]
        state.D[dead[: take.shape[0]]] = take
        state.D[dead[take.shape[0] :]] = state.rng.standard_normal(
            (dead.size - take.shape[0], state.D.shape[1])
        )
        if "b_enc" in state.params:
            b_enc = state.params["b_enc"]
            live = np.ones(b_enc.size, bool)
            live[dead] = False
            b_enc[dead] = np.median(b_enc[live]) if live.any() else 0.0
        for name in ("D", "W", "Lambda", "b_enc"):  # the arrays with a row per atom
            if hasattr(state.optimizers.get(name), "reset_rows"):
                state.optimizers[name].reset_rows(dead)
        if state.candidates is None:
            project_rows(state.D, self.positive_dict, state.rng)
        else:  # onto the candidates closest to the residuals drawn above
            archetypal.redraw(state.params, state.candidates, dead, state.D[dead])
        state.n_redrawn += dead.size

    @property
    def _auto_switches(self):
        """``"auto"`` refines with ae-ls for the Gaussian likelihood only."""
        return (
            self.gradient == "auto"
            and self.likelihood == "gaussian"
            and not self._autoencoder
        )

    def _end_period(self, state, objective):
        """``gradient="auto"``: move from dec to ae-ls once the objective of
        a period (epoch) settles."""
        previous = state.previous_period_objective
        state.previous_period_objective = objective
        if not self._auto_switches or state.gradient != "dec":
            return
        if abs(previous - objective) <= SWITCH_TOL * abs(previous):
            state.gradient = "ae-ls"
            state.switched_at = state.n_epochs
            state.learning_rate *= SWITCH_LEARNING_RATE_FACTOR
            if self.verbose:
                print("[UnrolledDictionaryLearning] switching to the ae-ls gradient")

    # ------------------------------------------------------------ inference

    def transform(self, X):
        """Encode ``X`` with the fitted dictionary.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            Data to encode (sparse for the SAE encoders only).

        Returns
        -------
        codes : ndarray or scipy CSR matrix of shape (n_samples, n_components)
            Codes, in the dtype of ``X``; a CSR matrix with
            ``transform_output="sparse"``.
        """
        check_is_fitted(self)
        self._validate_params()  # set_params may have changed them
        self._check_compatible()
        X = self._validate_X(X, reset=False)
        D = self.components_.astype(X.dtype, copy=False)
        alpha = self.alpha if self.transform_alpha is None else self.transform_alpha
        net = self._network(*D.shape, alpha=alpha)
        if self.transform_algorithm == "unrolled" and self._autoencoder:
            res = forward_backward(
                X, D, net, 1.0, "forward", self.n_jobs,
                intercept=self.intercept_, encoder_bias=self.encoder_bias_,
            )  # fmt: skip
            if not np.isfinite(res.data_loss):
                raise ValueError(
                    f"X overflows {X.dtype} in the encoder (non-finite "
                    "correlations or reconstructions); scale X down or use "
                    "float64."
                )
            codes = res.codes
            return codes if self.transform_output == "sparse" else codes.toarray()
        if self.transform_algorithm == "unrolled":
            codes = forward_backward(
                X, D, net, self.step_size_, "forward", self.n_jobs
            ).codes
        else:
            codes = self._exact_codes(X, D, alpha)
        return sp.csr_matrix(codes) if self.transform_output == "sparse" else codes

    def _exact_codes(self, X, D, alpha):
        """The codes of an exact solver of ``sparse_encode`` (of ``X`` minus
        the pre-bias, densified)."""
        if sp.issparse(X):
            X = X.toarray()
        if self._autoencoder:
            X = X - self.intercept_.astype(X.dtype, copy=False)
        return _sparse_encode(
            X,
            D,
            algorithm=self.transform_algorithm,
            alpha=alpha,
            n_nonzero_coefs=self.transform_n_nonzero_coefs,
            n_unroll=self.n_unroll,
            positive=self._kernel_prior == "nonneg_l1",
            max_iter=self.transform_max_iter,
            tol=None,
            n_jobs=self.n_jobs,
        )

    def inverse_transform(self, X):
        """Decode codes into the mean of the likelihood, ``f(codes @ D)``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_components)
            Codes, as returned by ``transform`` (dense or CSR).

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstruction (the identity, ``exp`` or ``n_trials * sigmoid`` of
            ``codes @ components_ + intercept_``).
        """
        check_is_fitted(self)
        codes = check_array(
            X, dtype=FLOAT_DTYPES, input_name="X", accept_sparse=("csr", "csc")
        )
        if codes.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {codes.shape[1]} columns (shape {codes.shape}); expected "
                f"n_components_={self.n_components_} codes."
            )
        D = self.components_.astype(codes.dtype, copy=False)
        eta = np.asarray(codes @ D) + self.intercept_.astype(codes.dtype, copy=False)
        return mean(eta, self._net.likelihood, self._net.n_trials)

    def score(self, X, y=None):
        """Minus the mean objective of the fitted network on ``X``.

        The objective of a sample is the negative log-likelihood of its
        reconstruction by the unrolled encoder and decoder plus the prior
        penalty of its code; higher is better.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            ``-mean(loss(x) + h(z))``.
        """
        check_is_fitted(self)
        X = self._validate_X(X, reset=False)
        D = self.components_.astype(X.dtype, copy=False)
        res = forward_backward(
            X, D, self._net, self.step_size_, "forward", self.n_jobs,
            intercept=self.intercept_, encoder_bias=self.encoder_bias_,
        )  # fmt: skip
        return -(res.data_loss + res.penalty) / X.shape[0]

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = False
        tags.input_tags.sparse = self._autoencoder
        return tags


def _redraw_period(n_components, n_samples, autoencoder=False):
    """Samples between checks for dead atoms: ``20 n_components``, or an
    epoch (``n_samples``; None in ``partial_fit``) if shorter; for the SAE
    encoders an epoch (``20 n_components`` in ``partial_fit``)."""
    period = 20 * n_components
    if n_samples is None:
        return period
    return n_samples if autoencoder else min(period, n_samples)


def _worst(residuals, losses, n_components):
    """``(residuals(rows), losses[rows], n_components)`` of the (at most
    ``n_components``) rows of largest loss, worst first."""
    order = np.argsort(losses, kind="stable")[::-1][:n_components]
    return residuals(order), losses[order], n_components


def _worst_residuals(X_batch, codes, D, net):
    """Residuals and their norms of the (at most ``n_components``)
    worst-reconstructed samples, worst first, and ``n_components``."""
    residual = X_batch - mean(codes @ D, net.likelihood, net.n_trials)
    norms = np.linalg.norm(residual, axis=1)
    return _worst(lambda rows: residual[rows], norms, D.shape[0])


def _merge_worst(parts):
    """The worst ``n_components`` of several ``_worst_residuals``."""
    if len(parts) == 1:
        return parts[0]
    residual = np.concatenate([p[0] for p in parts])
    norms = np.concatenate([p[1] for p in parts])
    order = np.argsort(norms, kind="stable")[::-1][: parts[0][2]]
    return residual[order], norms[order], parts[0][2]


ARCHETYPAL_ATTRIBUTES = ("candidates_", "archetype_weights_", "relaxation_")


def _archetypal_attributes(state):
    if state.candidates is None:
        return {}
    values = (state.candidates, state.params["W"], state.params["Lambda"])
    return {
        name: v.copy() for name, v in zip(ARCHETYPAL_ATTRIBUTES, values, strict=True)
    }


def _duplicates(D, usage, threshold=DUPLICATE_COHERENCE):
    """The less used atom of every pair whose ``|cos|`` exceeds ``threshold``."""
    cos = np.abs(D @ D.T)
    np.fill_diagonal(cos, 0.0)
    first, second = np.nonzero(np.triu(cos > threshold))
    candidates = np.unique(np.where(usage[first] < usage[second], first, second))
    return candidates[usage[candidates] < RARE_USAGE * np.median(usage)]


def _dictionary_from_samples(X, n_components, rng, intercept=None):
    """Distinct random samples of ``X`` (minus ``intercept``) as atoms
    (Gaussian ones if too few)."""
    n_samples, n_features = X.shape
    D = rng.standard_normal((n_components, n_features)).astype(X.dtype)
    take = min(n_samples, n_components)
    rows = rng.choice(n_samples, size=take, replace=False)
    samples = X[rows].toarray() if sp.issparse(X) else X[rows]
    if intercept is not None:
        samples = samples - intercept
    nonzero = np.any(samples != 0, axis=1)
    D[:take][nonzero] = samples[nonzero]
    return D
