"""Clustering by a mixture of sparse auto-encoders (MixMate).

``MixMateClustering`` gives every cluster a dictionary ``D_k`` and its own
unrolled FISTA encoder; a sample belongs to the cluster whose dictionary
explains it most sparsely. Three layers, as in ``_dict_learning``: the
validated estimator here; the dispatcher
``skunroll._autoencoder.forward_backward`` (chunks, threads, per-sample
weights and masks); the numba kernels of ``skunroll._kernels._unrolled``.
"""

import copy
import warnings
from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy import sparse
from scipy.special import softmax
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._parts.dictionaries import project_rows
from .._parts.encoders import encoder_step
from .._parts.priors import resolve_groups
from .._training import (
    CallbackSupportMixin,
    Sums,
    Trainer,
    TrainingState,
    atomic,
    with_callbacks,
)
from .._training.optim import Adam
from .._validation import FLOAT_DTYPES, N_JOBS
from ..metrics import clustering_accuracy
from ..utils import _lipschitz_from_gram, _smaller_gram, single_threaded_blas
from .network import Network, forward_backward

INITS = ("kmeans", "spectral", "ssc-omp")
SKIP_WEIGHT = 1e-6
"""Samples whose soft weight ``|c_k(x)|`` on a dictionary is below this are
left out of its backward pass (they would change its gradient by less than
``1e-6`` of a sample's)."""
SSC_MAX_SAMPLES = 2000
"""``init="ssc-omp"`` clusters a random subset of at most this many samples,
as the paper does (the affinity is dense in the number of samples)."""
SSC_NONZERO = 5
"""Atoms (other samples) per self-expression in ``init="ssc-omp"``."""
WEIGHT_FLOOR = 1e-3
"""Smallest mixing weight, as a fraction of the uniform weight
``1 / n_clusters``: no cluster's weight reaches 0 (its ``log`` stays finite
and the cluster can win samples back)."""
RESEED_WARN_EPOCHS = 3
"""Epochs with a re-seeded cluster from which ``fit`` warns that the
clusters keep collapsing."""


@dataclass
class _TrainingState(TrainingState):
    """The trainer's state plus what MixMate updates; ``params["D"]`` holds
    the dictionaries (n_clusters, n_components, n_features), and
    ``optimizers["D"]`` one Adam per cluster."""

    weights: np.ndarray = None
    power_vectors: np.ndarray = None
    steps: np.ndarray = None
    n_reseeded: int = 0
    reseed_epochs: int = 0

    @property
    def D(self):
        return self.params["D"]


class MixMateClustering(
    ClassNamePrefixFeaturesOutMixin,
    ClusterMixin,
    TransformerMixin,
    CallbackSupportMixin,
    BaseEstimator,
):
    r"""Clustering by a mixture of sparse auto-encoders (MixMate).

    Each of the ``n_clusters`` clusters has a dictionary ``D_k`` of
    ``n_components`` unit-norm atoms (rows) and an encoder of ``n_unroll``
    FISTA steps tied to it [1]_. For a sample ``x`` the encoder gives the
    code ``z_k`` and the energy

    .. math:: E_k(x) = \tfrac12 \|x - z_k D_k\|^2 + \alpha \|z_k\|_1,

    the lasso objective at the encoder's output. A sample belongs to the
    cluster of lowest energy, with responsibilities
    :math:`p_k(x) = \mathrm{softmax}_k(-E_k(x) / \tau + \log \pi_k)`, where
    the mixing weights :math:`\pi_k` are learned (the mean responsibility of
    every cluster over an epoch, as in EM). Training minimises the mean over
    the samples of :math:`\sum_k p_k(x) E'_k(x)`, with
    :math:`E'_k = E_k - \tau \log \pi_k`, by minibatch Adam, back-propagating
    through the softmax and the unrolled encoders (``assign="soft"``, the
    published method); ``assign="hard"`` minimises the mean of
    :math:`\min_k E_k(x)` instead, updating each dictionary on the samples
    assigned to it.

    Parameters
    ----------
    n_clusters : int, default=8
        Number of clusters.
    n_components : int, default=8
        Atoms per cluster dictionary.
    alpha : float, default=0.1
        Weight of the l1 penalty in the energy (per sample, on the scale of
        ``0.5 ||x - z D||^2``).
    n_unroll : int, default=15
        FISTA steps of every encoder (15 in the paper).
    assign : {"soft", "hard"}, default="soft"
        ``"soft"``: gradient of the responsibility-weighted energy through
        the softmax [1]_. ``"hard"``: gradient of the energy of the assigned
        cluster only, cheaper (each sample goes back through one encoder).
    temperature : float, default=0.1
        Temperature ``tau`` of the responsibilities (``"soft"`` and
        ``predict_proba``), on the scale of the energies; lower is closer to
        hard assignments. Much above the differences of energy between
        clusters, every dictionary learns every sample and the clusters
        collapse (see Notes).
    init : {"kmeans", "spectral", "ssc-omp"} or array-like, default="kmeans"
        First clustering, whose clusters fill the dictionaries: ``"kmeans"``
        (:class:`~sklearn.cluster.KMeans`, 10 starts), ``"spectral"``
        (:class:`~sklearn.cluster.SpectralClustering` on a nearest-neighbour
        graph), ``"ssc-omp"`` (sparse subspace clustering by orthogonal
        matching pursuit [2]_ on at most 2,000 samples, as in the paper), an
        array of shape (n_samples,) of labels in ``[0, n_clusters)``, or an
        array of shape (n_clusters, n_components, n_features) of initial
        dictionaries. Each dictionary is filled with random samples of its
        cluster, normalised (random unit atoms where a cluster has fewer
        samples than atoms).
    mixing : {"learn", "uniform"}, default="learn"
        ``"learn"``: mixing weights ``pi_k`` updated after every epoch (the
        mean responsibility of every cluster). ``"uniform"``: ``pi_k = 1 / K``
        throughout (the weights then drop out of every formula).
    n_init : int, default=1
        Number of fits, each from its own first clustering (and atoms drawn
        from it, and minibatch order), as ``KMeans`` runs several starts; the
        fit of best ``score`` on the training data (lowest mean smallest
        energy) is kept. With an array ``init`` the fits differ only in the
        atoms drawn and the minibatch order.
    missing : {"error", "mask"}, default="error"
        ``"mask"``: NaN entries of ``X`` are missing; they are left out of the
        encoders' residuals and of the energies (the masked residual of the
        paper's missing-data experiments). ``"error"``: NaN raises.
    max_iter : int, default=100
        Maximum number of epochs.
    batch_size : int, default=256
        Samples per minibatch.
    learning_rate : float, default=0.03
        Adam's step (per dictionary entry).
    tol : float, default=0.0
        Stop when the mean objective of an epoch changes by less than ``tol``
        relative to the previous epoch, two epochs in a row; the default 0
        runs all ``max_iter`` epochs (see Notes).
    random_state : int, RandomState instance or None, default=None
        Seed of the initial clusterings, the atoms drawn from them, the
        shuffling and the re-seeded clusters.
    n_jobs : int, default=None
        Threads over chunks of 128 samples (``None`` means 1, ``-1`` all
        cores, ``-2`` all but one; 0 is not allowed). Results do not depend
        on it.
    verbose : int, default=0
        1 prints a line per epoch (objective, cluster sizes, time), 2 also
        every 10th step.
    callback : callable, default=None
        ``callback(estimator, info)`` called after every step (of ``fit``
        and of ``partial_fit``), with ``info`` a
        dict of ``n_iter`` (epoch), ``n_steps``, ``objective`` (of the
        minibatch), ``learning_rate``, ``elapsed`` (s) and ``components``
        (the current dictionaries, read-only). Returning True stops training.

    Attributes
    ----------
    components_ : ndarray of shape (n_clusters, n_components, n_features)
        The dictionary of every cluster (unit-norm atoms as rows).
    labels_ : ndarray of shape (n_samples,)
        Cluster of every training sample (as ``predict``, final
        dictionaries).
    weights_ : ndarray of shape (n_clusters,)
        Mixing weights :math:`\pi_k` (sum to one, none below about
        ``1e-3 / n_clusters``): the mean responsibility of every cluster over
        the last epoch (``"soft"``), or the fraction of the samples it won
        (``"hard"``, where only ``predict_proba`` uses them).
    step_sizes_ : ndarray of shape (n_clusters,)
        Encoder step ``1 / ||D_k||_2^2`` of every cluster's fitted dictionary
        (``UnrolledDictionaryLearning``'s ``step_size_``, one per cluster;
        the likelihood is Gaussian, so ``c = 1``).
    objective_history_ : ndarray of shape (`n_iter_`,)
        Mean training objective of every epoch (``sum_k p_k E'_k`` with
        ``E'_k = E_k - temperature * log(weights_[k])`` for ``"soft"``,
        ``min_k E_k`` for ``"hard"``), with the dictionaries and weights of
        the time each minibatch was seen.
    n_iter_ : int
        Number of epochs run.
    n_steps_ : int
        Number of minibatch updates.
    n_reseeded_ : int
        Number of times a cluster left empty by an epoch was re-seeded (from
        the samples its rivals explain worst, its weight reset to
        ``1 / n_clusters``).
    learning_rate_ : float
        Learning rate at the end (lower than ``learning_rate`` if a
        non-finite objective forced it down).
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column
        names.

    See Also
    --------
    UnrolledDictionaryLearning : One dictionary, learned the same way.
    sklearn.cluster.KMeans : Clusters as centroids rather than dictionaries.

    Notes
    -----
    ``transform`` returns the energies, as ``KMeans.transform`` returns
    distances: small is close. ``predict`` returns the cluster of lowest
    :math:`E'_k = E_k - \tau \log \pi_k` for ``assign="soft"`` (the most
    responsible one, the argmax of ``predict_proba``) and of lowest
    :math:`E_k` for ``assign="hard"`` (the rule it was trained with; its
    ``predict_proba`` still includes the weights, so its argmax can differ).
    ``score`` is minus the mean of the smallest energy :math:`E_k` (higher is
    better); like the energies, it is comparable across models with the same
    ``alpha``. The model has ``n_clusters * n_components * n_features``
    learned dictionary entries and ``n_clusters - 1`` free weights.

    The soft objective's gradient with respect to ``D_k`` is
    :math:`\sum_x c_k(x) \nabla_{D_k} E_k(x)` with
    :math:`c_k = p_k (1 - (E'_k - \sum_j p_j E'_j) / \tau)`: the softmax only
    re-weights each sample's back-propagation through the encoder of every
    cluster (done by the weighted kernels of ``_kernels._unrolled``). The
    weights :math:`\pi_k` are held fixed within an epoch.

    ``fit`` warns (``ConvergenceWarning``) when every training sample ends
    in one cluster or clusters keep being re-seeded: typically ``alpha`` is
    too large for the scale of ``X``, so that every code is zero.

    Measurements behind the defaults (see the user guide and
    ``benchmarks/bench_clustering.py``): ``tol=0`` runs a fixed budget of
    epochs, as the paper does, because with Adam's minibatch noise the epoch
    objective can keep moving while the clusters still improve (on digits,
    ``tol=1e-3`` stopped some runs after 12 epochs, for a median accuracy of
    0.866 instead of 0.876, with uniform mixing weights). On digits scaled to
    [0, 1], whose energies differ by about 1 between clusters,
    ``temperature=1`` gave 0.34 accuracy and the default 0.1 gave 0.88.

    References
    ----------
    .. [1] Lin, Song & Ba, "Mixture model auto-encoders: deep clustering
       through dictionary learning", ICASSP 2022 (arXiv:2110.04683).
    .. [2] You, Robinson & Vidal, "Scalable sparse subspace clustering by
       orthogonal matching pursuit", CVPR 2016.
    .. [3] Tolooshams & Ba, "Stable and interpretable unrolled dictionary
       learning", Transactions on Machine Learning Research, 2022.

    Examples
    --------
    >>> from skunroll import MixMateClustering
    >>> from skunroll.datasets import make_dictionary_mixture
    >>> X, y, _, _ = make_dictionary_mixture(
    ...     600, 20, n_clusters=3, n_components=4, n_nonzero_coefs=2,
    ...     random_state=0)
    >>> mm = MixMateClustering(3, n_components=4, max_iter=5, tol=0,
    ...                        random_state=0).fit(X)
    >>> mm.components_.shape, mm.transform(X[:2]).shape
    ((3, 4, 20), (2, 3))
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left")],
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "n_unroll": [Interval(Integral, 1, None, closed="left")],
        "assign": [StrOptions({"soft", "hard"})],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "init": [StrOptions(set(INITS)), "array-like"],
        "mixing": [StrOptions({"learn", "uniform"})],
        "n_init": [Interval(Integral, 1, None, closed="left")],
        "missing": [StrOptions({"error", "mask"})],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
        "callback": [callable, None],
    }

    def __init__(
        self,
        n_clusters=8,
        *,
        n_components=8,
        alpha=0.1,
        n_unroll=15,
        assign="soft",
        temperature=0.1,
        init="kmeans",
        mixing="learn",
        n_init=1,
        missing="error",
        max_iter=100,
        batch_size=256,
        learning_rate=0.03,
        tol=0.0,
        random_state=None,
        n_jobs=None,
        verbose=0,
        callback=None,
    ):
        self.n_clusters = n_clusters
        self.n_components = n_components
        self.alpha = alpha
        self.n_unroll = n_unroll
        self.assign = assign
        self.temperature = temperature
        self.init = init
        self.mixing = mixing
        self.n_init = n_init
        self.missing = missing
        self.max_iter = max_iter
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.tol = tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.callback = callback

    # ------------------------------------------------------------ fitting

    @atomic
    @with_callbacks
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Cluster ``X``: a first clustering, then the dictionaries trained.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data (NaN for missing entries with ``missing="mask"``).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X, mask = self._validate_X(X, reset=True)
        if X.shape[0] < self.n_clusters:
            raise ValueError(
                f"n_samples={X.shape[0]} should be >= n_clusters={self.n_clusters}."
            )
        self._check_observed(mask)
        _check_scale(X)
        rng = check_random_state(self.random_state)
        trainer = self._trainer()
        best = None
        with single_threaded_blas():  # threads run over chunks; BLAS stays serial
            for _ in range(self.n_init):  # one random stream: n_init=1 as before
                state = self._initial_state(X, mask, rng)
                trainer.fit(state, (X, mask), X, y)
                energies = self._energies(X, mask, state.D, state.steps)
                score = -float(np.mean(energies.min(axis=1)))
                if best is None or score > best[0]:
                    best = (score, state, energies)
        _, state, energies = best
        self.__dict__.update(self.fitted_attributes(state))
        self.labels_ = self._labels(energies)
        self._warn_if_collapsed(X, mask, state)
        trainer.warn_if_not_converged(state)
        return self

    @atomic
    def partial_fit(self, X, y=None):
        """Update the dictionaries with one minibatch step on ``X``.

        The first call initialises the dictionaries from ``X`` (as ``fit``
        with ``n_init=1``: the first clustering, then atoms drawn from its
        clusters; an array ``init`` of labels must then label ``X``); later
        calls continue the same optimisers with the current parameters. With
        ``mixing="learn"`` the mixing weights are updated after every call
        from that call's responsibilities (every call is a period, as an epoch
        is in ``fit``); empty clusters are not re-seeded (a minibatch can
        leave a cluster empty by chance). ``labels_`` is that of the last
        minibatch.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            One minibatch (NaN for missing entries with ``missing="mask"``).
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The updated estimator.
        """
        first = not hasattr(self, "components_")
        self._validate_params()
        X, mask = self._validate_X(X, reset=first)
        self._check_observed(mask)
        _check_scale(X)
        if first:
            if X.shape[0] < self.n_clusters:
                raise ValueError(
                    f"the first partial_fit needs n_samples={X.shape[0]} >= "
                    f"n_clusters={self.n_clusters}."
                )
            with single_threaded_blas():
                state = self._initial_state(
                    X, mask, check_random_state(self.random_state)
                )
        else:
            state = copy.deepcopy(self._state)
            X = X.astype(state.D.dtype, copy=False)  # the dtype of the first call
            if mask is not None:
                mask = mask.astype(state.D.dtype, copy=False)
        with single_threaded_blas():
            self._trainer().partial_fit(state, (X, mask))
            energies = self._energies(X, mask, state.D, state.steps)
        self.__dict__.update(self.fitted_attributes(state))
        self.labels_ = self._labels(energies)
        return self

    def _trainer(self):
        return Trainer.for_estimator(
            self,
            patience=2,  # two epochs in a row: one alone happens by chance
            what="dictionaries",
        )

    def _initial_state(self, X, mask, rng):
        """Initial dictionaries (and their optimisers, encoder steps)."""
        D = self._initial_dictionaries(X, mask, rng)
        k = self.n_clusters
        state = _TrainingState(
            params={"D": D},
            optimizers={"D": [Adam(D[c].shape) for c in range(k)]},
            rng=rng,
            learning_rate=float(self.learning_rate),
            weights=np.full(k, 1.0 / k),
            power_vectors=rng.standard_normal((k, min(D.shape[1:]))),
        )
        state.steps = self._encoder_steps(state)
        return state

    def _check_observed(self, mask):
        if mask is not None and not mask.any():
            raise ValueError(
                "every entry of X is missing (NaN); MixMateClustering needs some "
                "observed entries."
            )

    # ------------------------------------------- the model of the trainer

    def n_units(self, data):
        return data[0].shape[0]

    def gradients(self, state, data, idx):
        """Summed objective and per-cluster gradients of the samples ``idx``
        (zero, and ``extra`` False, for a cluster no sample contributes to:
        its optimiser does not step)."""
        X, mask = data
        X_b = X[idx]
        mask_b = None if mask is None else mask[idx]
        objective, labels, grads, p = self._summed_objective_and_gradients(
            X_b, mask_b, state.D, state.steps, state.weights
        )
        contributes = [g is not None for g in grads]
        stacked = np.zeros_like(state.D)
        for c, g in enumerate(grads):
            if g is not None:
                stacked[c] = g
        return Sums(
            objective=objective,
            n=X_b.shape[0],
            grads={"D": stacked},
            stats={
                "sizes": np.bincount(labels, minlength=self.n_clusters),
                "responsibility": p.sum(axis=0),
            },
            extra=contributes,
        )

    def combine_extra(self, extras):
        """A cluster contributes to a minibatch if it does to one shard."""
        return [any(flags) for flags in zip(*extras, strict=True)]

    def apply(self, state, data, idx, grads, sums):
        """Adam's step of every contributing dictionary, its projection onto
        unit-norm atoms, then the encoder steps."""
        D = state.D
        for c, contributes in enumerate(sums.extra):
            if contributes:
                state.optimizers["D"][c].step(D[c], grads["D"][c], state.learning_rate)
                project_rows(D[c], False, state.rng)
        state.steps = self._encoder_steps(state)

    def reset_optimizers(self, state):
        state.optimizers = {"D": [Adam(d.shape) for d in state.D]}

    def on_restore(self, state):
        if state.previous is not None:
            state.steps = self._encoder_steps(state)

    def period(self, state):
        """``partial_fit``: every call ends a period (weights updated)."""
        return 1

    def end_epoch(self, state, data, objective, stats, n_seen):
        """The learned mixing weights, then (in ``fit``) the re-seeding of
        the clusters no sample chose."""
        if n_seen == 0:
            raise FloatingPointError(
                "the training objective was non-finite at every step of an "
                "epoch; check the scale of X. Nothing was fitted."
            )
        if self.mixing == "learn":
            state.weights = _floored_weights(stats["responsibility"] / n_seen)
        if state.epoch_units is not None:  # not in partial_fit
            X, mask = data
            self._reseed_empty(state, X, mask, stats["sizes"])

    def convergence_start(self, state):
        return 0

    def epoch_message(self, state, stats):
        sizes = stats.get("sizes", np.zeros(self.n_clusters, dtype=np.int64))
        return f"  sizes {sizes.tolist()}"

    def callback_info(self, state):
        return {"components": state.D}

    def fitted_attributes(self, state):
        return {
            "_state": state,
            "components_": state.D.copy(),
            "weights_": state.weights.copy(),
            "step_sizes_": state.steps.copy(),
            "objective_history_": np.asarray(state.objective_history),
            "n_iter_": state.n_epochs,
            "n_steps_": state.n_steps,
            "n_reseeded_": state.n_reseeded,
            "learning_rate_": state.learning_rate,
        }

    def _labels(self, energies, weights=None):
        """Cluster of every row of ``energies``: lowest ``E_k - tau log pi_k``
        for ``"soft"``, lowest ``E_k`` for ``"hard"``."""
        if self.assign == "hard":
            return np.argmin(energies, axis=1).astype(np.int64)
        weights = self.weights_ if weights is None else weights
        shifted = energies - self.temperature * np.log(weights)
        return np.argmin(shifted, axis=1).astype(np.int64)

    def _warn_if_collapsed(self, X, mask, state):
        """Warn when every training sample ended in one cluster, or clusters
        were re-seeded in many epochs: the sign of an ``alpha`` too large
        for the scale of ``X`` (every code zero, every energy equal)."""
        one_cluster = self.n_clusters > 1 and np.unique(self.labels_).size == 1
        repeated = state.reseed_epochs >= RESEED_WARN_EPOCHS
        if not (one_cluster or repeated):
            return
        observed = X if mask is None else X * mask
        scale = float(np.median(np.linalg.norm(observed, axis=1)))
        what = (
            "every training sample ended in one cluster"
            if one_cluster
            else f"empty clusters were re-seeded in {state.reseed_epochs} epochs"
        )
        warnings.warn(
            f"MixMateClustering: {what} ({self.n_reseeded_} re-seedings). "
            f"alpha={self.alpha:.3g} is absolute, on the scale of the energies "
            f"0.5 ||x - z D||^2, and the median norm of the samples of X is "
            f"{scale:.3g}: with alpha large against it every code is zero and "
            "every cluster explains every sample equally. Rescale X or lower "
            "alpha.",
            ConvergenceWarning,
            stacklevel=6,  # the caller of fit (through its three decorators)
        )

    def _validate_X(self, X, reset):
        """Validated ``X`` with missing entries set to 0, and the mask of
        observed entries (None when every entry is observed)."""
        if not reset:
            self._validate_params()  # set_params may have changed them
        allow_nan = self.missing == "mask"
        X = validate_data(
            self,
            X,
            dtype=FLOAT_DTYPES,
            order="C",
            ensure_all_finite="allow-nan" if allow_nan else True,
            reset=reset,
        )
        if not allow_nan:
            return X, None
        missing = np.isnan(X)
        if not missing.any():
            return X, None
        return np.where(missing, 0, X).astype(X.dtype), (~missing).astype(X.dtype)

    def _network(self):
        return Network(
            n_unroll=self.n_unroll,
            encoder="fista",
            prior="l1",
            alpha=float(self.alpha),
            negative_alpha=float(self.alpha),
            groups=resolve_groups("l1", None, self.n_components),
        )

    def _encoder_steps(self, state):
        D = state.D
        steps = np.empty(D.shape[0])
        for c in range(D.shape[0]):
            gram = _smaller_gram(D[c])
            steps[c] = encoder_step(
                _lipschitz_from_gram(gram, v=state.power_vectors[c])
            )
        return steps

    def _energies(self, X, mask, D, steps, return_codes=False):
        """Energies (n_samples, n_clusters), float64, of every sample under
        every cluster's encoder; with the codes if ``return_codes``."""
        net = self._network()
        energies = np.empty((X.shape[0], D.shape[0]))
        codes = []
        for c in range(D.shape[0]):
            Z = forward_backward(
                X, D[c], net, steps[c], "forward", self.n_jobs, mask=mask
            ).codes
            residual = X - Z @ D[c]
            if mask is not None:
                residual *= mask
            energies[:, c] = 0.5 * np.einsum("ij,ij->i", residual, residual)
            energies[:, c] += self.alpha * np.abs(Z).sum(axis=1)
            codes.append(Z)
        return (energies, codes) if return_codes else energies

    def _objective_and_gradients(
        self, X, mask, D, steps, mixing=None, skip=SKIP_WEIGHT
    ):
        """Mean objective over the rows of ``X``, their labels, its gradient
        with respect to every ``D[c]`` (None where no sample contributes) and
        the responsibilities: ``_summed_objective_and_gradients`` divided by
        the number of samples."""
        objective, labels, grads, p = self._summed_objective_and_gradients(
            X, mask, D, steps, mixing, skip
        )
        n = X.shape[0]
        grads = [None if g is None else g / n for g in grads]
        return objective / n, labels, grads, p

    def _summed_objective_and_gradients(
        self, X, mask, D, steps, mixing=None, skip=SKIP_WEIGHT
    ):
        """Summed objective over the rows of ``X``, their labels, its gradient
        with respect to every ``D[c]`` (None where no sample contributes),
        the encoder steps and the mixing weights (uniform if None) held
        fixed, and the responsibilities (one-hot labels for ``"hard"``).

        ``"soft"``: ``sum_x sum_k p_k E'_k`` with
        ``E'_k = E_k - tau log pi_k``, whose gradient is
        ``sum_x c_k(x) grad E_k(x)`` (``_soft_weights``), samples with
        ``|c_k| <= skip`` left out; ``"hard"``: ``sum_x min_k E_k``, each
        dictionary's gradient over the samples it wins.
        """
        n, k = X.shape[0], D.shape[0]
        if mixing is None:
            mixing = np.full(k, 1.0 / k)
        energies = self._energies(X, mask, D, steps)
        labels = self._labels(energies, mixing)
        if self.assign == "soft":
            shifted = energies - self.temperature * np.log(mixing)
            p, weights = _soft_weights(shifted, self.temperature)
            objective = float(np.sum(np.sum(p * shifted, axis=1)))
        else:
            objective = float(np.sum(energies[np.arange(n), labels]))
            p = np.zeros((n, k))
            p[np.arange(n), labels] = 1.0
        net = self._network()
        grads = []
        for c in range(D.shape[0]):
            if self.assign == "soft":
                rows = np.flatnonzero(np.abs(weights[:, c]) > skip)
                w = weights[rows, c]
            else:
                rows, w = np.flatnonzero(labels == c), None
            if rows.size == 0:
                grads.append(None)
                continue
            res = forward_backward(
                X[rows], D[c], net, steps[c], "ae-lasso", self.n_jobs,
                weights=w, mask=None if mask is None else mask[rows],
            )  # fmt: skip
            grads.append(res.grad)
        return objective, labels, grads, p

    def _reseed_empty(self, state, X, mask, sizes):
        """Re-fill the dictionary of every cluster that no sample chose in
        the epoch, from the samples the other clusters explain worst."""
        empty = np.flatnonzero(sizes == 0)
        if empty.size == 0:
            return
        state.reseed_epochs += 1
        rng = state.rng
        subset = rng.choice(X.shape[0], min(X.shape[0], 1024), replace=False)
        X_s = X[np.sort(subset)]
        mask_s = None if mask is None else mask[np.sort(subset)]
        energies = self._energies(X_s, mask_s, state.D, state.steps)
        worst = np.argsort(energies.min(axis=1))[::-1]
        p = self.n_components
        for i, c in enumerate(empty):
            picked = worst[i * p : (i + 1) * p]
            state.D[c] = _atoms_from_samples(
                _imputed(X_s[picked], None if mask_s is None else mask_s[picked]),
                p,
                rng,
            )
            state.optimizers["D"][c] = Adam(state.D[c].shape)
        if self.mixing == "learn":
            weights = state.weights.copy()
            weights[empty] = 1.0 / self.n_clusters  # a fair chance to win samples
            state.weights = _floored_weights(weights)
        state.steps = self._encoder_steps(state)
        state.n_reseeded += empty.size

    # ------------------------------------------------------ initialisation

    def _initial_dictionaries(self, X, mask, rng):
        k, p, m = self.n_clusters, self.n_components, X.shape[1]
        init = self.init
        if not isinstance(init, str):
            init = check_array(init, ensure_2d=False, allow_nd=True, input_name="init")
            if init.ndim == 3:
                return _check_init_dictionaries(init, (k, p, m), X.dtype, rng)
            if init.ndim != 1:
                raise ValueError(
                    "init must be a string, labels of shape (n_samples,) or "
                    "dictionaries of shape (n_clusters, n_components, "
                    f"n_features); got an array of shape {init.shape}."
                )
        X_full = _imputed(X, mask)
        if isinstance(init, str):
            seed = rng.randint(np.iinfo(np.int32).max)
            rows, labels = _first_clustering(X_full, k, init, seed)
        else:
            rows, labels = np.arange(X.shape[0]), _check_init_labels(init, X, k)
        D = np.empty((k, p, m), dtype=X.dtype)
        for c in range(k):
            members = X_full[rows[labels == c]]
            if members.shape[0] == 0:  # re-seeded from random samples
                members = X_full[rng.choice(X.shape[0], min(p, X.shape[0]), False)]
            D[c] = _atoms_from_samples(members, p, rng)
        return D

    # ------------------------------------------------------------ inference

    def transform(self, X):
        """Energy of every sample under every cluster's auto-encoder.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data (NaN for missing entries with ``missing="mask"``).

        Returns
        -------
        energies : ndarray of shape (n_samples, n_clusters)
            ``0.5 ||x - z_k D_k||^2 + alpha ||z_k||_1`` (over the observed
            entries), in the dtype of ``X``.
        """
        check_is_fitted(self)
        X, mask = self._validate_X(X, reset=False)
        return self._energies_of(X, mask).astype(X.dtype, copy=False)

    def _energies_of(self, X, mask):
        _check_scale(X)
        D = self.components_.astype(X.dtype, copy=False)
        with np.errstate(over="ignore", invalid="ignore"), single_threaded_blas():
            energies = self._energies(X, mask, D, self.step_sizes_)
        if not np.all(np.isfinite(energies)):
            raise ValueError(
                "the energies of some samples of X are not finite (overflow): "
                "X is far too large in scale for the dictionaries' encoders; "
                "rescale X (as for fit)."
            )
        return energies

    def predict(self, X):
        """Most responsible cluster of every sample.

        The lowest ``E_k - temperature * log(weights_[k])`` for
        ``assign="soft"`` (the argmax of ``predict_proba``), the lowest energy
        ``E_k`` for ``assign="hard"`` (the rule it was trained with).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster indices (int64).
        """
        return self._labels(self.transform(X))

    def fit_predict(self, X, y=None):
        """Fit, then return ``labels_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        labels : ndarray of shape (n_samples,)
            Cluster indices (int64).
        """
        return self.fit(X).labels_

    def predict_proba(self, X):
        """Responsibilities ``softmax_k(-E_k(x) / temperature + log pi_k)``.

        ``pi`` is ``weights_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_clusters)
            Rows sum to one.
        """
        check_is_fitted(self)
        X, mask = self._validate_X(X, reset=False)
        energies = self._energies_of(X, mask)
        with np.errstate(over="ignore"):
            logits = -energies / self.temperature + np.log(self.weights_)
        if not np.all(np.isfinite(logits)):
            raise ValueError(
                "the energies of some samples of X divided by temperature="
                f"{self.temperature:.3g} overflow; rescale X or raise temperature."
            )
        return softmax(logits, axis=1)

    def score(self, X, y=None):
        """Minus the mean smallest energy of the samples of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            ``-mean(min_k E_k(x))``; higher is better.
        """
        check_is_fitted(self)
        X, mask = self._validate_X(X, reset=False)
        return -float(np.mean(self._energies_of(X, mask).min(axis=1)))

    @property
    def _n_features_out(self):
        return self.n_clusters

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.input_tags.allow_nan = self.missing == "mask"
        tags.non_deterministic = False
        return tags


# ----------------------------------------------------------------- helpers


def _soft_weights(energies, temperature):
    """Responsibilities ``p = softmax(-E / tau)`` and the weights
    ``c_k = p_k (1 - (E_k - sum_j p_j E_j) / tau)``, the derivative of
    ``sum_j p_j E_j`` with respect to ``E_k``. With mixing weights, ``E`` is
    ``E - tau log pi`` (``p = softmax(-E / tau + log pi)``)."""
    p = softmax(-energies / temperature, axis=1)
    mean = np.sum(p * energies, axis=1, keepdims=True)
    return p, p * (1.0 - (energies - mean) / temperature)


def _check_scale(X):
    """Energies are squared norms: where the squares of ``X`` underflow (its
    largest entry below about 1e-154 in float64, 1e-19 in float32) they would
    be rounded to zero and the clusters decided by rounding; a clear error
    instead. Above that, a fit of ``c X`` with ``alpha`` scaled by ``c`` and
    ``temperature`` by ``c**2`` is that of ``X``."""
    top = float(np.abs(X).max(initial=0.0))
    if 0 < top and top * top < np.finfo(X.dtype).tiny:
        raise ValueError(
            f"the largest entry of X is {top:.3g}, so small that its square "
            f"underflows in {X.dtype}: the energies 0.5 ||x - z D||^2 cannot be "
            "computed. Rescale X (and alpha with it, temperature with its "
            "square)."
        )


def _floored_weights(weights):
    """Mixing weights at least ``WEIGHT_FLOOR / n_clusters``, summing to
    one."""
    weights = np.maximum(weights, WEIGHT_FLOOR / weights.size)
    return weights / weights.sum()


def _matched_accuracy(y, labels, return_order=False):
    """Accuracy of the best one-to-one matching of clusters to classes (the
    Hungarian algorithm on the confusion matrix); with ``return_order``,
    also the cluster matched to each class (index into the sorted union of
    the values of ``y`` and ``labels``)."""
    return clustering_accuracy(y, labels, return_order=return_order)


def _imputed(X, mask):
    """``X`` with its missing entries (mask 0) set to the observed mean of
    their feature (0 for a feature never observed)."""
    if mask is None:
        return X
    counts = mask.sum(axis=0)
    means = np.divide(X.sum(axis=0), counts, out=np.zeros(X.shape[1]), where=counts > 0)
    return np.where(mask > 0, X, means.astype(X.dtype))


def _atoms_from_samples(samples, n_components, rng):
    """Random distinct samples, normalised; random unit atoms where there are
    too few (or all-zero) samples.

    The reference code of Lin, Song & Ba also subtracts each image's mean; that measured
    no better on the digits benchmark and collapses low-dimensional data (in
    two dimensions every centred sample is a multiple of ``(1, -1)``).
    """
    n_features = samples.shape[1]
    atoms = rng.standard_normal((n_components, n_features)).astype(samples.dtype)
    take = min(samples.shape[0], n_components)
    picked = samples[rng.choice(samples.shape[0], take, replace=False)]
    # relative to the data's scale only: an absolute floor would discard
    # every sample of data scaled below 1e-12 (then the fit was not scale
    # equivariant)
    usable = np.linalg.norm(picked, axis=1) > 1e-12 * float(
        np.abs(samples).max(initial=0.0)
    )
    atoms[:take][usable] = picked[usable]
    project_rows(atoms, False, rng)
    return atoms


def _first_clustering(X, n_clusters, init, seed):
    """Rows clustered and their labels by the named method."""
    # sklearn.cluster is imported here, not at import time (0.1-0.6 s)
    from sklearn.cluster import KMeans, SpectralClustering

    n_samples = X.shape[0]
    if init == "kmeans":
        km = KMeans(n_clusters, n_init=10, random_state=seed)
        return np.arange(n_samples), km.fit_predict(X)
    if init == "spectral":
        sc = SpectralClustering(
            n_clusters,
            affinity="nearest_neighbors",
            n_neighbors=min(10, n_samples - 1),
            random_state=seed,
        )
        return np.arange(n_samples), sc.fit_predict(X)
    rng = np.random.RandomState(seed)
    rows = np.arange(n_samples)
    if n_samples > SSC_MAX_SAMPLES:
        rows = np.sort(rng.choice(n_samples, SSC_MAX_SAMPLES, replace=False))
    return rows, ssc_omp(X[rows], n_clusters, SSC_NONZERO, seed)


def ssc_omp(X, n_clusters, n_nonzero=5, random_state=None, tol=1e-6):
    """Sparse subspace clustering by orthogonal matching pursuit (SSC-OMP).

    Every sample (mean-centred, normalised) is coded by OMP on the other
    samples with at most ``n_nonzero`` atoms; the codes, normalised, give the
    affinity ``|C| + |C|^T`` of a spectral clustering. Batched over samples:
    the correlations of a block of residuals with all samples are one matrix
    product, and the least-squares fits one batched solve.

    References
    ----------
    You, Robinson & Vidal, "Scalable sparse subspace clustering by orthogonal
    matching pursuit", CVPR 2016.
    """
    n = X.shape[0]
    Xn = X - X.mean(axis=1, keepdims=True) if X.shape[1] > 1 else X.copy()
    Xn = Xn.astype(np.float64)
    norms = np.linalg.norm(Xn, axis=1, keepdims=True)
    Xn /= np.where(norms > 0, norms, 1.0)
    n_nonzero = min(n_nonzero, n - 1, X.shape[1])
    rows, cols, vals = [], [], []
    for first in range(0, n, 256):
        block = np.arange(first, min(first + 256, n))
        support, coef = _omp_block(Xn, block, n_nonzero, tol)
        coef /= np.maximum(np.linalg.norm(coef, axis=1, keepdims=True), 1e-300)
        rows.append(np.repeat(block, support.shape[1]))
        cols.append(support.ravel())
        vals.append(coef.ravel())
    C = sparse.csr_matrix(
        (np.abs(np.concatenate(vals)), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n, n),
    )
    affinity = C + C.T
    from sklearn.cluster import spectral_clustering

    return spectral_clustering(
        affinity, n_clusters=n_clusters, random_state=random_state
    ).astype(np.int64)


def _omp_block(Xn, block, n_nonzero, tol):
    """OMP of the samples ``block`` on all others; supports and coefficients
    (a sample already fitted to ``tol`` keeps repeating its last atom with a
    zero coefficient)."""
    b = block.size
    targets = Xn[block]
    residual = targets.copy()
    support = np.zeros((b, n_nonzero), dtype=np.int64)
    coef = np.zeros((b, n_nonzero))
    active = np.ones(b, dtype=bool)
    for t in range(n_nonzero):
        corr = np.abs(residual @ Xn.T)
        corr[np.arange(b), block] = -1.0  # never the sample itself
        if t > 0:
            np.put_along_axis(corr, support[:, :t], -1.0, axis=1)
        support[:, t] = np.where(active, np.argmax(corr, axis=1), support[:, t - 1])
        atoms = Xn[support[:, : t + 1]]  # (b, t + 1, n_features)
        gram = atoms @ np.swapaxes(atoms, 1, 2) + 1e-10 * np.eye(t + 1)
        rhs = np.einsum("btf,bf->bt", atoms, targets)
        new = np.linalg.solve(gram, rhs[..., None])[..., 0]
        new[~active, t] = 0.0
        new[~active, :t] = coef[~active, :t]
        coef[:, : t + 1] = new
        residual = targets - np.einsum("bt,btf->bf", new, atoms)
        active &= np.einsum("bf,bf->b", residual, residual) > tol
    return support, coef


def _check_init_labels(labels, X, n_clusters):
    if labels.shape != (X.shape[0],):
        raise ValueError(
            f"init labels must have shape (n_samples,) = ({X.shape[0]},); got "
            f"shape {labels.shape}."
        )
    if not np.all(np.isfinite(labels)) or np.any(labels != np.round(labels)):
        raise ValueError("init labels must be integers in [0, n_clusters).")
    labels = labels.astype(np.int64)
    if labels.min() < 0 or labels.max() >= n_clusters:
        raise ValueError(
            f"init labels must be in [0, n_clusters={n_clusters}); got values in "
            f"[{labels.min()}, {labels.max()}]."
        )
    return labels


def _check_init_dictionaries(init, shape, dtype, rng):
    if init.shape != shape:
        raise ValueError(
            f"init dictionaries must have shape (n_clusters, n_components, "
            f"n_features) = {shape}; got shape {init.shape}."
        )
    if not np.all(np.isfinite(init)):
        raise ValueError("init dictionaries must be finite (no NaN or inf).")
    D = np.array(init, dtype=dtype, order="C", copy=True)
    for c in range(shape[0]):
        project_rows(D[c], False, rng)
    return D
