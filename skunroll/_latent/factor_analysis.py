"""``UnrolledFactorAnalysis``: factor analysis with missing data by
probabilistic unrolling (and exact gradient EM, its baseline).

Three layers, as in the rest of the package: the validated estimator here
(the model the one ``Trainer`` drives), the dispatcher
``skunroll/_latent/_network.py`` (chunks, threads, the gradients) and the
numba kernels ``skunroll/_kernels/_unrolled_cg.py`` (the unrolled conjugate
gradient, its hand-written reverse pass, the exact posterior).
"""

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from scipy.linalg import eigh
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data

from .._parallel import N_JOBS, single_threaded_blas
from .._training import (
    OPTIMIZERS,
    CallbackSupportMixin,
    Sums,
    Trainer,
    TrainingState,
    atomic,
    with_callbacks,
)
from .._validation import FLOAT_DTYPES
from ._network import exact_loglik, exact_sums, rademacher, unrolled_sums


@dataclass
class _TrainingState(TrainingState):
    """The trainer's state plus the floor of ``log_psi`` (internal units)."""

    log_floor: float = 0.0
    center: np.ndarray = None  # the columns' means and standard deviations
    scale: np.ndarray = None


class UnrolledFactorAnalysis(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    CallbackSupportMixin,
    BaseEstimator,
):
    """Factor analysis with missing data by probabilistic unrolling.

    The model of every sample ``x_i`` (n_features,) is

        ``x_i = W z_i + mu + eps_i,   z_i ~ N(0, I_q),   eps_i ~ N(0, Psi)``

    with ``W`` the loadings (n_features, n_components), ``Psi`` diagonal,
    and entries of ``X`` missing at random (NaN): each sample's likelihood is
    that of its observed entries, the missing ones marginalised. The
    parameters maximise the log-likelihood by minibatch gradient ascent (the
    package's one trainer, Adam or SGD), the gradient given by the Fisher
    identity ``grad log p(x) = E_{z|x}[grad log p(x, z)]``, which needs the
    posterior mean and covariance of every sample: the inverse of its own
    ``q x q`` precision ``A_i = W_o^T Psi_o^{-1} W_o + I`` (``o`` its
    observed rows).

    Probabilistic unrolling [1]_ (``solver="unrolled"``) never forms nor
    inverts ``A_i``: ``n_solver_steps`` conjugate-gradient steps solve
    ``A_i [mu_i, sigma_1, ..., sigma_K] = [b_i, s_1, ..., s_K]`` with
    ``b_i = W_o^T Psi_o^{-1} (x_o - mu_o)`` (the posterior mean's right-hand
    side) and ``K = n_probes`` Monte Carlo probes ``s_k = W_o^T
    Psi_o^{-1/2} a_k + e_k`` (``a_k``, ``e_k`` random signs), of covariance
    ``A_i``, whose solutions ``sigma_k = A_i^{-1} s_k`` have the posterior
    covariance ``A_i^{-1}`` (the gradients use only that second moment, so
    signs, far cheaper to draw than normal noise, do as well). Two
    gradients of [1]_:

    - ``gradient="output"``: the solver's outputs plugged into the Fisher
      identity (the posterior covariance estimated by ``mean_k sigma_k
      sigma_k^T``);
    - ``gradient="network"``: the gradient of the unrolled network's
      surrogate ``log p(x, mu_I) + mean_k (s_k^T sigma_k - sigma_k^T A
      sigma_k / 2)`` back-propagated through the solver's steps (written by
      hand in numba), the probes held fixed. It is the output gradient plus
      terms weighted by the solver's residuals, so its error is the product
      of two solver errors, not one: fewer steps reach the same accuracy.

    The output gradient's CG steps are preconditioned by default
    (``preconditioner``): the precisions of a chunk of samples differ only
    by their missing rows, so the inverse of their mean (one ``q x q``
    factorisation per chunk) is a close approximation of every ``A_i^{-1}``.

    ``solver="exact"`` is gradient EM, the baseline: the same model, trainer
    and minibatches, with the exact posterior of every sample by a Cholesky
    factorisation of ``A_i`` (formed from the fewer of its missing and
    observed rows).

    Parameters
    ----------
    n_components : int, default=2
        Dimension ``q`` of the latent factors; less than n_features.
    solver : {"unrolled", "exact"}, default="unrolled"
        Posterior moments by the unrolled CG solver, or exactly (gradient EM).
    gradient : {"network", "output"}, default="network"
        Gradient of the unrolled solver (ignored by ``solver="exact"``).
    n_probes : int, default=1
        Monte Carlo probes per sample (``K``). One is enough on minibatches of
        hundreds of samples: the covariance part of the gradient is averaged
        over the minibatch (``benchmarks/README.md``).
    n_solver_steps : int, default=5
        Conjugate-gradient steps of the unrolled solver (from zero).
    preconditioner : {"auto", "mean", "full"} or None, default="auto"
        Preconditioner of the output gradient's CG steps, one ``q x q``
        matrix per chunk of 128 samples: ``"mean"`` the inverse of the
        chunk's mean precision ``I + W^T diag(mean_i D_i) W``, ``"full"``
        that of the fully observed precision ``I + W^T Psi^{-1} W``, None
        plain CG. ``"auto"``: ``"mean"`` for ``gradient="output"``, None for
        ``gradient="network"``, whose reverse pass does not differentiate a
        preconditioner (so it takes only None or ``"auto"``). With it, 2
        steps give a more accurate output gradient than 5 plain steps, at
        about half their cost: ``gradient="output", n_solver_steps=2`` is
        the fast configuration (``benchmarks/README.md``). Converged, the
        probes' solutions still have covariance ``A_i^{-1}`` (their
        right-hand sides are unchanged); after few steps, as without a
        preconditioner, it is approximated.
    max_iter : int, default=50
        Maximum number of epochs.
    tol : float, default=1e-4
        Training stops when the mean training objective of an epoch changed
        by at most ``tol`` (relative) from the epoch before.
    batch_size : int, default=256
        Samples per minibatch.
    optimizer : {"adam", "sgd"}, default="adam"
        The optimiser of every parameter.
    learning_rate : float, default=0.02
        Step of the optimiser, in the units of the standardised data (the
        data are centred and scaled per column internally, which leaves the
        model unchanged up to the same scaling of ``W``, ``mu`` and ``Psi``).
    lr_decay_epochs : int or None, default=5
        The learning rate is halved every ``lr_decay_epochs`` epochs (None:
        constant). A fixed schedule, the same whatever the solver: with a
        constant rate, minibatch noise holds the fit away from the maximum
        (measured in ``benchmarks/README.md``).
    noise_floor : float, default=1e-3
        Lower bound of every noise variance relative to its column's
        variance: ``noise_variance_[j] >= noise_floor * var(X[:, j])`` (the
        observed entries'). The variances are parametrised by their
        logarithm and projected onto the bound after every step, which keeps
        ``A_i`` well conditioned and the likelihood bounded (a zero variance
        is a degenerate maximum of factor analysis).
    init : {"pca", "random"}, default="pca"
        Starting loadings: probabilistic PCA of the mean-imputed data, or
        small random ones (``Psi`` starts at the column variances).
    random_state : int, RandomState instance or None, default=None
        Seed of the initialisation, the shuffling and the probes.
    n_jobs : int, default=None
        Threads over chunks of 128 samples; results do not depend on it.
    verbose : int, default=0
        1 prints a line per epoch; 2 also every 10 steps.
    callback : callable, default=None
        ``callback(estimator, info)`` after every step, ``info`` a dict of
        ``n_iter``, ``n_steps``, ``objective``, ``learning_rate``,
        ``elapsed`` and the current ``components_``, ``noise_variance_`` and
        ``mean_`` (read-only); returning True stops training.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        The loadings ``W^T``.
    noise_variance_ : ndarray of shape (n_features,)
        The diagonal of ``Psi``.
    mean_ : ndarray of shape (n_features,)
        The mean ``mu``.
    objective_history_ : ndarray of shape (`n_iter_`,)
        Mean training objective of every epoch, in the standardised units:
        minus the log-likelihood for ``solver="exact"``, minus the unrolled
        network's surrogate otherwise (which differs from the log-likelihood
        by log-determinant terms; ``score`` gives the likelihood).
    n_iter_ : int
        Epochs run.
    n_steps_ : int
        Optimiser steps applied.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of features seen during ``fit``, when ``X`` has string column
        names.

    See Also
    --------
    sklearn.decomposition.FactorAnalysis : closed-form EM (SVD), no missing data.

    Notes
    -----
    ``score`` and ``score_samples`` are exact (a Cholesky factorisation per
    sample, ``O(q^3 + min(p_o, p - p_o) q^2)``), whatever the solver.
    float32 data are processed in float32 (parameters kept in float64).

    References
    ----------
    .. [1] Lin, Tolooshams, Atchade & Ba, "Probabilistic unrolling: scalable,
       inverse-free maximum likelihood estimation for latent Gaussian
       models", ICML 2023.

    Examples
    --------
    >>> import numpy as np
    >>> from skunroll import UnrolledFactorAnalysis
    >>> rng = np.random.default_rng(0)
    >>> X = rng.standard_normal((300, 2)) @ rng.standard_normal((2, 8))
    >>> X += 0.3 * rng.standard_normal(X.shape)
    >>> X[rng.random(X.shape) < 0.2] = np.nan
    >>> fa = UnrolledFactorAnalysis(n_components=2, max_iter=5, tol=0,
    ...                             random_state=0).fit(X)
    >>> fa.components_.shape
    (2, 8)
    >>> fa.transform(X).shape
    (300, 2)
    """

    _parameter_constraints: dict = {
        "n_components": [Interval(Integral, 1, None, closed="left")],
        "solver": [StrOptions({"unrolled", "exact"})],
        "gradient": [StrOptions({"network", "output"})],
        "n_probes": [Interval(Integral, 1, None, closed="left")],
        "n_solver_steps": [Interval(Integral, 1, None, closed="left")],
        "preconditioner": [StrOptions({"auto", "mean", "full"}), None],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions(set(OPTIMIZERS))],
        "learning_rate": [Interval(Real, 0, None, closed="neither")],
        "lr_decay_epochs": [Interval(Integral, 1, None, closed="left"), None],
        "noise_floor": [Interval(Real, 0, 1, closed="neither")],
        "init": [StrOptions({"pca", "random"})],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
        "callback": [callable, None],
    }

    def __init__(
        self,
        n_components=2,
        *,
        solver="unrolled",
        gradient="network",
        n_probes=1,
        n_solver_steps=5,
        preconditioner="auto",
        max_iter=50,
        tol=1e-4,
        batch_size=256,
        optimizer="adam",
        learning_rate=0.02,
        lr_decay_epochs=5,
        noise_floor=1e-3,
        init="pca",
        random_state=None,
        n_jobs=None,
        verbose=0,
        callback=None,
    ):
        self.n_components = n_components
        self.solver = solver
        self.gradient = gradient
        self.n_probes = n_probes
        self.n_solver_steps = n_solver_steps
        self.preconditioner = preconditioner
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.lr_decay_epochs = lr_decay_epochs
        self.noise_floor = noise_floor
        self.init = init
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.verbose = verbose
        self.callback = callback

    # ------------------------------------------------------------ fit

    @atomic
    @with_callbacks
    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Fit the model to ``X`` (NaN entries are missing).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data; NaN marks a missing entry. Every row and every
            column needs at least one observed entry.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X = validate_data(
            self, X, dtype=FLOAT_DTYPES, order="C", ensure_all_finite="allow-nan"
        )
        observed = _check_missing(X)
        n, p = X.shape
        if (
            self.solver == "unrolled"
            and self.gradient == "network"
            and self.preconditioner not in ("auto", None)
        ):
            raise ValueError(
                f"preconditioner={self.preconditioner!r} needs gradient='output' "
                "(the network gradient's reverse pass does not differentiate a "
                "preconditioner); use preconditioner=None or 'auto'."
            )
        if self.n_components >= p:
            raise ValueError(
                f"n_components={self.n_components} must be less than the number "
                f"of features n_features={p} of X."
            )
        rng = check_random_state(self.random_state)
        center, scale = _column_moments(X, observed)
        Xs, M = _standardise(X, observed, center, scale)
        params = self._initial_params(Xs, M, rng)
        state = _TrainingState(
            params=params,
            optimizers=self._optimizers(params),
            rng=rng,
            learning_rate=float(self.learning_rate),
            log_floor=float(np.log(self.noise_floor)),
            center=center,
            scale=scale,
        )
        self._project(state)
        trainer = Trainer.for_estimator(self, what="parameters")
        # the minibatches' products run on the package's threads with BLAS on
        # one thread (map_in_order); limiting BLAS once for the whole
        # training instead of once per minibatch saves the limit's cost
        # (about 0.15 ms a switch, 15 % of an epoch of the preconditioned
        # solver on the benchmark)
        with single_threaded_blas():
            trainer.fit(state, (Xs, M), X, y)
        self.__dict__.update(self.fitted_attributes(state))
        trainer.warn_if_not_converged(state)
        return self

    def _initial_params(self, Xs, M, rng):
        """Loadings, mean and log noise variances in the standardised units."""
        n, p = Xs.shape
        q = self.n_components
        if self.init == "random":
            W = 0.1 * rng.standard_normal((p, q))
            log_psi = np.zeros(p)
        else:  # probabilistic PCA of the mean-imputed data
            Xf = Xs.astype(np.float64)
            var = np.sum(Xf * Xf, axis=0) / np.maximum(M.sum(axis=0), 1)
            cov = Xf.T @ Xf / n
            evals, evecs = eigh(cov, subset_by_index=[p - q, p - 1])
            evals, evecs = evals[::-1], evecs[:, ::-1]
            rest = max(float(np.trace(cov) - evals.sum()) / (p - q), 0.0)
            W = evecs * np.sqrt(np.maximum(evals - rest, 1e-3 * max(rest, 1e-12)))
            log_psi = np.log(np.maximum(var - np.sum(W * W, axis=1), 0.1))
        return {"W": W, "m": np.zeros(p), "log_psi": log_psi}

    # ------------------------------------------- the model of the trainer

    def n_units(self, data):
        return data[0].shape[0]

    def gradients(self, state, data, idx):
        Xs, M = data
        Xb, Mb = Xs[idx], M[idx]
        W, m, log_psi = (state.params[k] for k in ("W", "m", "log_psi"))
        Xt = ((Xb - m.astype(Xb.dtype)) * Mb).astype(Xb.dtype, copy=False)
        if self.solver == "exact":
            value, grads = exact_sums(Xt, Mb, W, log_psi, self.n_jobs)
        else:
            n, p = Xb.shape
            K, q = self.n_probes, self.n_components
            dt = Xb.dtype
            a = rademacher(state.rng, (n, K, p), dt)
            e = rademacher(state.rng, (n, K, q), dt)
            value, grads = unrolled_sums(
                Xt,
                Mb,
                W,
                log_psi,
                (a, e),
                self.n_solver_steps,
                self.gradient == "network",
                self.n_jobs,
                self._precondition(),
            )
        finite = bool(np.isfinite(value))
        return Sums(
            objective=-value,
            n=idx.size,
            grads={k: -g for k, g in grads.items()},
            finite=finite,
        )

    def _precondition(self):
        if self.gradient == "network" or self.preconditioner is None:
            return None
        return "mean" if self.preconditioner == "auto" else self.preconditioner

    def apply(self, state, data, idx, grads, sums):
        for name, param in state.params.items():
            state.optimizers[name].step(param, grads[name], state.learning_rate)
        self._project(state)

    @staticmethod
    def _project(state):
        """Noise variances stay above the floor."""
        np.maximum(
            state.params["log_psi"], state.log_floor, out=state.params["log_psi"]
        )

    def _optimizers(self, params):
        cls = OPTIMIZERS[self.optimizer]
        return {name: cls(p.shape) for name, p in params.items()}

    def reset_optimizers(self, state):
        state.optimizers = self._optimizers(state.params)

    def end_epoch(self, state, data, objective, stats, n_seen):
        """Halve the learning rate every ``lr_decay_epochs`` epochs."""
        every = self.lr_decay_epochs
        if every is not None and state.n_epochs % every == 0:
            state.learning_rate /= 2.0

    def convergence_start(self, state):
        return 0

    def callback_info(self, state):
        """The current parameters, in the units of ``X``."""
        attrs = self.fitted_attributes(state)
        return {k: attrs[k] for k in ("components_", "noise_variance_", "mean_")}

    def fitted_attributes(self, state):
        center, scale = state.center, state.scale
        W, m, log_psi = (state.params[k].copy() for k in ("W", "m", "log_psi"))
        return {
            "_W": W,
            "_log_psi": log_psi,
            "_m": m,
            "_center": center,
            "_scale": scale,
            "components_": (W * scale[:, None]).T,
            "noise_variance_": np.exp(log_psi) * scale**2,
            "mean_": center + scale * m,
            "objective_history_": np.asarray(state.objective_history),
            "n_iter_": state.n_epochs,
            "n_steps_": state.n_steps,
        }

    # ------------------------------------------------------------ use

    def _posterior(self, X):
        """Exact log-likelihoods (original units) and posterior means."""
        check_is_fitted(self)
        X = validate_data(
            self,
            X,
            dtype=FLOAT_DTYPES,
            order="C",
            ensure_all_finite="allow-nan",
            reset=False,
        )
        if np.isinf(X).any():
            raise ValueError("X contains infinity; only NaN (missing) is allowed.")
        observed = ~np.isnan(X)
        Xs, M = _standardise(X, observed, self._center, self._scale)
        Xt = ((Xs - self._m.astype(X.dtype)) * M).astype(X.dtype, copy=False)
        loglik, mu = exact_loglik(Xt, M, self._W, self._log_psi, self.n_jobs)
        loglik = loglik - M.astype(np.float64) @ np.log(self._scale)
        return loglik, mu.astype(X.dtype, copy=False)

    def transform(self, X):
        """Posterior means of the factors, ``E[z | x_observed]``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data; NaN marks a missing entry.

        Returns
        -------
        Z : ndarray of shape (n_samples, n_components)
            Posterior means, in the dtype of ``X``.
        """
        return self._posterior(X)[1]

    def score_samples(self, X):
        """Exact log-likelihood of every sample's observed entries.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data; NaN marks a missing entry (marginalised).

        Returns
        -------
        loglik : ndarray of shape (n_samples,)
            ``log p(x_observed)`` under the fitted model.
        """
        return self._posterior(X)[0]

    def score(self, X, y=None):
        """Mean exact log-likelihood of the samples' observed entries.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data; NaN marks a missing entry.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            Mean of ``score_samples(X)``.
        """
        return float(np.mean(self.score_samples(X)))

    def get_covariance(self):
        """The model's covariance ``W W^T + Psi`` (n_features, n_features)."""
        check_is_fitted(self)
        cov = self.components_.T @ self.components_
        cov.flat[:: cov.shape[0] + 1] += self.noise_variance_
        return cov

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = False
        return tags


def _check_missing(X):
    """The observed mask; infinities, all-missing rows or columns are errors."""
    if np.isinf(X).any():
        raise ValueError("X contains infinity; only NaN (missing) is allowed.")
    observed = ~np.isnan(X)
    rows = np.flatnonzero(~observed.any(axis=1))
    if rows.size:
        raise ValueError(
            f"X has rows with every entry missing (NaN) at {rows.tolist()[:10]}; "
            "every row needs at least one observed entry."
        )
    cols = np.flatnonzero(~observed.any(axis=0))
    if cols.size:
        raise ValueError(
            f"X has columns with every entry missing (NaN) at {cols.tolist()[:10]}; "
            "every column needs at least one observed entry."
        )
    return observed


def _column_moments(X, observed):
    """Mean and standard deviation of every column's observed entries (the
    standard deviation 1 where it is zero)."""
    counts = observed.sum(axis=0)
    Xf = np.where(observed, X, 0.0).astype(np.float64)
    center = Xf.sum(axis=0) / counts
    dev = np.where(observed, Xf - center, 0.0)
    scale = np.sqrt((dev * dev).sum(axis=0) / counts)
    scale[~(scale > 0)] = 1.0
    return center, scale


def _standardise(X, observed, center, scale):
    """``(X - center) / scale`` with zeros where missing, in X's dtype, and
    the mask as 0/1 of that dtype."""
    Xs = np.where(observed, (X - center) / scale, 0.0).astype(X.dtype)
    return np.ascontiguousarray(Xs), observed.astype(X.dtype)
