"""``LearnedSparseCoder``: an unrolled lasso encoder whose layers are learned.

Three layers, as in the rest of the package: the validated estimator here
(the model the one ``Trainer`` drives), the dispatcher
``skunroll/_learned/network.py`` (chunks and threads) and the numba kernel
``skunroll/_kernels/_learned.py`` (forward pass and hand-written gradients).
The parametrisations are in ``skunroll/_learned/parametrizations.py``.
"""

from dataclasses import dataclass
from numbers import Integral, Real

import numpy as np
from sklearn.base import (
    BaseEstimator,
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    _fit_context,
)
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .._coding.sparse_coding import _proximal_step, _scale_exponent
from .._parallel import N_JOBS
from .._training import (
    CallbackSupportMixin,
    Sums,
    Trainer,
    TrainingState,
    atomic,
    with_callbacks,
)
from .._training.optim import Adam, LineSearch
from .._validation import FLOAT_DTYPES, check_dictionary
from .network import forward_backward
from .parametrizations import PARAMETRIZATIONS, Context

#: learning rates of ``learning_rate=None``
DEFAULT_LEARNING_RATES = {"step": 0.1, "alista": 0.1, "coupled": 1e-3, "lista": 1e-3}


@dataclass
class _TrainingState(TrainingState):
    """The trainer's state plus the coder's: the problem (``ctx``), the
    training and validation rows, the best parameters seen on the latter."""

    ctx: Context = None
    X: np.ndarray = None  # scaled training data (the units the trainer sees)
    X_val: np.ndarray = None
    scales: dict = None
    best: dict = None
    best_objective: float = np.inf
    val_history: list = None
    epochs_without_improvement: int = 0
    best_iter: int = 0
    phase: str = None  # the parametrisation trained now ("step" while pretraining)
    pretrain_epochs: int = 0
    exponents: tuple = (0, 0)  # X = 2**ex X_scaled, D = 2**ed D_scaled


class LearnedSparseCoder(
    ClassNamePrefixFeaturesOutMixin,
    TransformerMixin,
    CallbackSupportMixin,
    BaseEstimator,
):
    """Lasso sparse coding by an unrolled network whose layers are learned.

    A fixed-depth network of ``n_layers`` soft-thresholding layers,

        ``u_t = x Wx_t + z_t Wz_t,   z_{t+1} = ST(u_t, theta_t),   z_0 = 0``,

    initialised at ISTA on the fixed dictionary ``D`` (``Wx_t = D^T / L``,
    ``Wz_t = I - D D^T / L``, ``theta_t = alpha / L``) and trained on
    unlabelled data to minimise the mean lasso objective of its output,
    ``0.5 ||x - z D||^2 + alpha ||z||_1`` (the objective of
    :func:`skunroll.sparse_encode`), so that a few layers get closer to the
    lasso solution than as many ISTA or FISTA iterations [1]_ [2]_. The
    gradients through the layers are written by hand in numba.

    Parameters
    ----------
    dictionary : array-like of shape (n_components, n_features)
        Atoms as rows; fixed (not learned, not modified).
    n_layers : int, default=10
        Depth of the network.
    parametrization : {"step", "alista", "coupled", "lista"}, default="step"
        What is learned per layer:

        - ``"step"``: one step size ``rho_t`` (SLISTA [1]_); the threshold
          is ``alpha rho_t``. Untrained, the network is ISTA.
        - ``"alista"``: a step and a threshold, with the analytic weight
          matrix ``W`` of ALISTA [3]_ computed once from ``D`` in place of
          ``D`` in the back-projection of the residual (untrained it is
          ISTA with ``W``, step ``1 / ||D W^T||_2``, not ISTA itself);
          ALISTA's support selection is not implemented. Its threshold is
          ``alpha gamma / mean_i ||d_i||^2``, in the units of the codes.
        - ``"coupled"``: a weight matrix ``W_t`` (n_components, n_features)
          and a threshold per layer, ``Wz_t = I - D W_t^T`` (LISTA-CP [4]_).
          Untrained, ISTA.
        - ``"lista"``: ``Wx_t``, ``Wz_t`` and a threshold per atom, free
          (Gregor & LeCun [2]_, weights not shared across layers; ``k^2 + k
          n_features + k`` parameters a layer). Untrained, ISTA.
    alpha : float, default=0.1
        Weight of the l1 penalty of the objective (and of the thresholds).
        With ``relative_alpha=True``, a fraction of ``lambda_max``.
    relative_alpha : bool, default=False
        Read ``alpha`` relative to ``lambda_max = max_i ||x_i D^T||_inf`` of
        the training data (the smallest penalty for which every code of the
        training data is zero), as in [1]_. The absolute value used is
        ``alpha_``, fixed at ``fit``.
    max_iter : int, default=20
        Maximum number of epochs.
    tol : float, default=0.0
        Training stops when the objective (on the validation rows, or on the
        training data without them) has not improved by more than ``tol``
        relative for ``n_iter_no_change`` epochs. The default counts any
        improvement: the gap to the lasso optimum that learning closes is
        often far below 1e-4 of the objective.
    batch_size : int, default=256
        Samples per minibatch.
    optimizer : {"line-search", "adam"}, default="line-search"
        ``"line-search"``: gradient descent with a backtracking (Armijo) line
        search on each minibatch's objective (``skunroll._training.optim.
        LineSearch``; full-batch, the training of [1]_), which needs no
        learning rate and moves each layer by its own gradient. ``"adam"``:
        Adam with ``learning_rate``; its per-coordinate normalisation moves
        the steps of all layers alike (their gradients are nearly
        proportional), so the learned steps stay equal across layers.
    learning_rate : float, default=None
        Adam's step, in units of each parameter's initial size (the
        parameters are held relative to ISTA's: 1 for steps and thresholds,
        the root mean square of their initial entries for matrices).
        ``None`` means 0.1 for ``"step"`` and ``"alista"`` and 1e-3 for
        ``"coupled"`` and ``"lista"``. Unused by the line search.
    validation_fraction : float, default=0.1
        Fraction of the training rows held out to choose the best epoch and
        stop early: the fitted parameters are those of the epoch with the
        lowest validation objective (``"lista"`` has enough weights to
        overfit a few thousand samples). 0 uses the training objective.
    n_iter_no_change : int, default=5
        Epochs without improvement before stopping.
    pretrain : {"auto", "steps"} or None, default="auto"
        ``"steps"`` (for ``"coupled"`` and ``"lista"``): the first epochs
        learn only a step per layer (the ``"step"`` network, a special case
        of both) until its validation objective has not improved for
        ``n_iter_no_change`` epochs; the layers are then expanded to the full
        parametrisation, which training continues from there (within
        ``max_iter`` in all; ``pretrain_iter_`` says how many epochs the step
        phase took, ``max_iter`` if it never stalled, and then the fitted
        layers are the learned steps). Trained from ISTA, the many weights
        take many epochs to reach what the steps alone reach in a few, and
        continuing the steps beat switching early (measured, see the user
        guide).
        ``"auto"`` is ``"steps"`` for ``"coupled"`` and ``"lista"`` started
        from ISTA and None otherwise. The untrained network is ISTA either
        way.
    init : "ista" or dict, default="ista"
        Starting point of the layers: ISTA's, or the ``weights_`` of a coder
        fitted on the same dictionary with the same ``n_layers`` (a dict of
        ``"input"``, ``"code"`` and ``"threshold"`` arrays; ``"lista"``
        starts from any, ``"coupled"`` from those of a ``"step"`` or
        ``"coupled"`` coder; ``"step"`` and ``"alista"`` from ISTA only).
        Training ``"lista"`` from a trained ``"step"`` network starts it
        where step learning already got (ahead of ISTA and FISTA at high
        ``alpha``), which its many weights then refine.
    random_state : int, RandomState instance or None, default=None
        Seed of the validation split and of the shuffling.
    n_jobs : int, default=None
        Threads over chunks of 128 samples; results do not depend on it.
    verbose : int, default=0
        1 prints a line per epoch; 2 also every 10 steps.
    callback : callable, default=None
        ``callback(estimator, info)`` after every step, ``info`` a dict of
        ``n_iter``, ``n_steps``, ``objective``, ``learning_rate``,
        ``elapsed`` and the current ``steps`` and ``thresholds``
        (read-only); returning True stops training.

    Attributes
    ----------
    components_ : ndarray of shape (n_components, n_features)
        A copy of the dictionary at ``fit``.
    n_components_ : int
        Number of atoms.
    alpha_ : float
        The penalty used (``alpha``, or ``alpha * lambda_max``).
    lipschitz_ : float
        ``L = ||D||_2^2``, ISTA's step being ``1 / L``.
    steps_ : ndarray of shape (n_layers,) or None
        The step of every layer (``"step"``, ``"alista"``); None for the
        parametrisations whose steps are inside their matrices.
    thresholds_ : ndarray of shape (n_layers,) or (n_layers, n_components)
        The threshold of every layer (per atom for ``"lista"``).
    weights_ : dict of ndarray
        The general form of every layer: ``"input"`` (n_layers, n_features,
        n_components), ``"code"`` (n_layers, n_components, n_components),
        ``"threshold"`` (n_layers, n_components).
    alista_weight_ : ndarray of shape (n_components, n_features)
        ALISTA's analytic ``W`` (``"alista"`` only).
    objective_history_ : ndarray of shape (`n_iter_`,)
        Mean training objective of every epoch.
    validation_history_ : ndarray of shape (`n_iter_`,)
        Mean objective of the validation rows after every epoch (empty
        without validation).
    best_iter_ : int
        Epoch whose parameters were kept (0: the untrained network).
    pretrain_iter_ : int
        Epochs of the learned-step phase (``pretrain``); 0 without it.
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
    UnrolledSparseCoder : The same network with ISTA/FISTA's fixed weights.
    sparse_encode : The exact lasso, the objective's reference.

    Notes
    -----
    The data and the dictionary are rescaled internally by powers of two
    (exactly), so that a fit on ``c X`` with ``c alpha`` learns the same
    network and returns ``c`` times the codes. ``X`` given to ``transform``
    is rescaled by the exponent found at ``fit``. float32 input is coded in
    float32; the parameters are kept in float64.

    References
    ----------
    .. [1] Ablin, Moreau, Massias & Gramfort, "Learning step sizes for
       unfolded sparse coding", NeurIPS 2019.
    .. [2] Gregor & LeCun, "Learning fast approximations of sparse coding",
       ICML 2010.
    .. [3] Liu, Chen, Wang & Yin, "ALISTA: analytic weights are as good as
       learned weights in LISTA", ICLR 2019.
    .. [4] Chen, Liu, Wang & Yin, "Theoretical linear convergence of unfolded
       ISTA and its practical weights and thresholds", NeurIPS 2018.

    Examples
    --------
    >>> from skunroll import LearnedSparseCoder
    >>> from skunroll.datasets import make_dictionary, make_sparse_coded_data
    >>> D = make_dictionary(32, 16, random_state=0)
    >>> X, _, _ = make_sparse_coded_data(500, D, n_nonzero_coefs=3, random_state=0)
    >>> coder = LearnedSparseCoder(D, n_layers=5, alpha=0.05, max_iter=5,
    ...                            random_state=0).fit(X)
    >>> coder.transform(X).shape
    (500, 32)
    >>> coder.steps_.shape
    (5,)
    """

    _parameter_constraints: dict = {
        "dictionary": ["array-like"],
        "n_layers": [Interval(Integral, 1, None, closed="left")],
        "parametrization": [StrOptions(set(PARAMETRIZATIONS))],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "relative_alpha": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "optimizer": [StrOptions({"line-search", "adam"})],
        "learning_rate": [Interval(Real, 0, None, closed="neither"), None],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left")],
        "pretrain": [StrOptions({"auto", "steps"}), None],
        "init": [StrOptions({"ista"}), dict],
        "random_state": ["random_state"],
        "n_jobs": N_JOBS,
        "verbose": ["verbose"],
        "callback": [callable, None],
    }

    def __init__(
        self,
        dictionary,
        *,
        n_layers=10,
        parametrization="step",
        alpha=0.1,
        relative_alpha=False,
        max_iter=20,
        tol=0.0,
        batch_size=256,
        optimizer="line-search",
        learning_rate=None,
        validation_fraction=0.1,
        n_iter_no_change=5,
        pretrain="auto",
        init="ista",
        random_state=None,
        n_jobs=None,
        verbose=0,
        callback=None,
    ):
        self.dictionary = dictionary
        self.n_layers = n_layers
        self.parametrization = parametrization
        self.alpha = alpha
        self.relative_alpha = relative_alpha
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.pretrain = pretrain
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
        """Learn the layers on ``X`` (no labels: the lasso objective).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Training data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        self : object
            The fitted estimator.
        """
        X = validate_data(self, X, dtype=FLOAT_DTYPES, order="C")
        D = check_dictionary(self.dictionary, dtype=np.float64, n_features=X.shape[1])
        state = self._initial_state(X, D)
        trainer = Trainer.for_estimator(
            self, patience=self.n_iter_no_change, what="layers"
        )
        trainer.fit(state, state.X, X, y)
        self._set_fitted(state)
        trainer.warn_if_not_converged(state)
        return self

    def _initial_state(self, X, D):
        rng = check_random_state(self.random_state)
        ex, ed = _scale_exponent(X), _scale_exponent(D)
        Xs = np.ldexp(X, -ex).astype(X.dtype, copy=False)
        Ds = np.ldexp(D, -ed)
        alpha = float(self.alpha)
        if self.relative_alpha:
            lambda_max = float(np.max(np.abs(Xs @ Ds.T.astype(X.dtype))))
            if not lambda_max > 0:
                raise ValueError(
                    "relative_alpha=True reads alpha relative to lambda_max = "
                    "max |X D^T|, which is 0 for this X: every code is zero."
                )
            alpha_s = alpha * lambda_max
        else:
            alpha_s = float(np.ldexp(alpha, -ex - ed))
        ctx = Context(Ds, _proximal_step(Ds, Ds @ Ds.T), alpha_s)
        phase = "step" if self._pretrains() else self.parametrization
        if isinstance(self.init, dict):
            params = self._params_from(self.init, ctx, ex, ed)
        else:
            params = PARAMETRIZATIONS[phase].init(ctx, self.n_layers)
        n_val = int(np.floor(self.validation_fraction * X.shape[0]))
        if n_val >= 1 and X.shape[0] - n_val >= 1:
            order = rng.permutation(X.shape[0])
            X_val, X_train = Xs[np.sort(order[:n_val])], Xs[np.sort(order[n_val:])]
        else:
            X_val, X_train = None, Xs
        state = _TrainingState(
            params=params,
            optimizers=self._optimizers(params),
            rng=rng,
            learning_rate=self._learning_rate(phase),
            ctx=ctx,
            X=X_train,
            X_val=X_val,
            scales={name: _size(p) for name, p in params.items()},
            val_history=[],
            exponents=(ex, ed),
            phase=phase,
        )
        state.best = {k: v.copy() for k, v in params.items()}
        if X_val is not None:
            state.best_objective = self._objective(state, X_val)
        return state

    def _pretrains(self):
        """Whether training starts with a phase of learned steps."""
        expandable = self.parametrization in ("coupled", "lista")
        if self.pretrain == "steps" and not (
            expandable and not isinstance(self.init, dict)
        ):
            raise ValueError(
                "pretrain='steps' is for parametrization 'coupled' or 'lista' "
                f"started from ISTA; got parametrization={self.parametrization!r}"
                + (" with init=<weights>" if isinstance(self.init, dict) else "")
                + ". Use pretrain=None."
            )
        if self.pretrain == "auto":
            return expandable and not isinstance(self.init, dict)
        return self.pretrain == "steps"

    def _learning_rate(self, phase):
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return DEFAULT_LEARNING_RATES[phase]

    def _expanded(self, params, ctx):
        """The learned-step parameters ``params`` as the full parametrisation."""
        Wx, Wz, theta = PARAMETRIZATIONS["step"].weights(params, ctx)
        return PARAMETRIZATIONS[self.parametrization].from_weights(ctx, Wx, Wz, theta)

    def _expand(self, state):
        """End of the step phase: continue from its best layers, expanded."""
        state.params = self._expanded(state.best, state.ctx)
        state.best = {k: v.copy() for k, v in state.params.items()}
        state.phase = self.parametrization
        state.scales = {name: _size(p) for name, p in state.params.items()}
        state.learning_rate = self._learning_rate(state.phase)
        state.pretrain_epochs = state.n_epochs
        state.epochs_without_improvement = 0
        state.previous = None  # the trainer's snapshot held the step phase's keys
        self.reset_optimizers(state)

    def _params_from(self, weights, ctx, ex, ed):
        """The parameters of the layers ``init`` (a fitted coder's
        ``weights_``), in this fit's scaled units."""
        from_weights = getattr(
            PARAMETRIZATIONS[self.parametrization], "from_weights", None
        )
        if from_weights is None:
            raise ValueError(
                f"parametrization={self.parametrization!r} starts from ISTA only; "
                "init=<weights_ of a fitted coder> is for 'coupled' and 'lista'."
            )
        shapes = {
            "input": (self.n_layers, ctx.m, ctx.k),
            "code": (self.n_layers, ctx.k, ctx.k),
            "threshold": (self.n_layers, ctx.k),
        }
        arrays = {}
        for key, shape in shapes.items():
            value = weights.get(key)
            arr = None if value is None else np.asarray(value, dtype=np.float64)
            if arr is None or arr.shape != shape or not np.all(np.isfinite(arr)):
                raise ValueError(
                    f"init must hold the weights_ of a coder with n_layers="
                    f"{self.n_layers} on this dictionary: init[{key!r}] must be a "
                    f"finite array of shape {shape}, got "
                    f"{None if arr is None else arr.shape}."
                )
            arrays[key] = arr
        return from_weights(
            ctx,
            np.ldexp(arrays["input"], ed),
            arrays["code"].copy(),
            np.ldexp(arrays["threshold"], ed - ex),
        )

    def _objective(self, state, X, params=None):
        """Mean objective of the current network on ``X`` (scaled units)."""
        params = state.params if params is None else params
        res = self._forward_backward(params, state.ctx, X, False, state.phase)
        return (res.data_loss + res.penalty) / X.shape[0]

    def _forward_backward(self, params, ctx, X, backward, phase=None):
        parametrization = PARAMETRIZATIONS[phase or self.parametrization]
        Wx, Wz, theta = parametrization.weights(params, ctx)
        return forward_backward(
            X, ctx.D, Wx, Wz, theta, ctx.alpha, backward, self.n_jobs
        )

    # ------------------------------------------- the model of the trainer

    def n_units(self, X):
        return X.shape[0]

    def gradients(self, state, X, idx):
        res = self._forward_backward(state.params, state.ctx, X[idx], True, state.phase)
        grads = PARAMETRIZATIONS[state.phase].pullback(
            state.params, state.ctx, res.gWx, res.gWz, res.gtheta
        )
        return Sums(objective=res.data_loss + res.penalty, n=idx.size, grads=grads)

    def apply(self, state, X, idx, grads, sums):
        """One step of the optimiser; steps and thresholds stay non-negative.
        Adam moves each parameter in units of its initial size."""
        if self.optimizer == "line-search":
            X_batch = X[idx]

            def evaluate(candidate):
                return self._objective(state, X_batch, candidate)

            state.optimizers["all"].step(
                state.params, grads, sums.objective / sums.n, evaluate, self._project
            )
            return
        for name, param in state.params.items():
            lr = state.learning_rate * state.scales[name]
            state.optimizers[name].step(param, grads[name], lr)
        self._project(state.params)

    def reset_optimizers(self, state):
        state.optimizers = self._optimizers(state.params)

    def _optimizers(self, params):
        if self.optimizer == "line-search":
            # the step doubles after every accepted step (measured on the
            # setup of bench_learned_coders.py, 10 layers, 10 epochs, lambda
            # = 0.8: held-out gap 9e-9 against 2e-6 with Vaswani et al.'s
            # 2 ** (batch / n), and about the same at lambda = 0.1)
            return {"all": LineSearch(growth=2.0)}
        return {name: Adam(p.shape) for name, p in params.items()}

    @staticmethod
    def _project(params):
        """Steps and thresholds stay non-negative."""
        for name in ("step", "threshold"):
            if name in params:
                np.maximum(params[name], 0.0, out=params[name])

    def end_epoch(self, state, X, objective, stats, n_seen):
        """The validation objective; the best parameters so far are kept."""
        if state.X_val is None:
            current = objective
        else:
            current = self._objective(state, state.X_val)
            state.val_history.append(current)
        if current < state.best_objective - self.tol * abs(state.best_objective):
            state.best_objective = current
            state.best = {k: v.copy() for k, v in state.params.items()}
            state.best_iter = state.n_epochs
            state.epochs_without_improvement = 0
        else:
            state.epochs_without_improvement += 1
        if (
            state.phase != self.parametrization
            and state.epochs_without_improvement >= self.n_iter_no_change
        ):
            self._expand(state)

    def stop_early(self, state):
        return (
            state.phase == self.parametrization
            and state.epochs_without_improvement >= self.n_iter_no_change
        )

    def convergence_start(self, state):
        return None  # stop_early decides

    def callback_info(self, state):
        parametrization = PARAMETRIZATIONS[state.phase]
        ex, ed = state.exponents
        steps = parametrization.steps(state.params, state.ctx)
        return {
            "steps": np.empty(0)
            if steps is None
            else np.ldexp(steps, parametrization.step_exponent * ed),
            "thresholds": np.ldexp(
                parametrization.thresholds(state.params, state.ctx), ex - ed
            ),
        }

    def fitted_attributes(self, state):
        params = state.best
        ctx = state.ctx
        if state.phase != self.parametrization:  # stopped while pretraining
            params = self._expanded(params, ctx)
        parametrization = PARAMETRIZATIONS[self.parametrization]
        ex, ed = state.exponents
        Wx, Wz, theta = parametrization.weights(params, ctx)
        steps = parametrization.steps(params, ctx)
        attributes = {
            "_ctx": ctx,
            "_params": {k: v.copy() for k, v in params.items()},
            "_exponents": (ex, ed),
            "components_": np.ldexp(ctx.D, ed),
            "n_components_": ctx.k,
            "alpha_": float(np.ldexp(ctx.alpha, ex + ed)),
            "lipschitz_": float(np.ldexp(1.0 / ctx.rho, 2 * ed)),
            "steps_": None
            if steps is None
            else np.ldexp(steps, parametrization.step_exponent * ed),
            "thresholds_": np.ldexp(parametrization.thresholds(params, ctx), ex - ed),
            "weights_": {
                "input": np.ldexp(Wx, -ed),
                "code": Wz,
                "threshold": np.ldexp(theta, ex - ed),
            },
            "objective_history_": np.ldexp(np.asarray(state.objective_history), 2 * ex),
            "validation_history_": np.ldexp(np.asarray(state.val_history), 2 * ex),
            "best_iter_": state.best_iter,
            "pretrain_iter_": (
                state.pretrain_epochs
                if state.phase == self.parametrization
                else state.n_epochs
            ),
            "n_iter_": state.n_epochs,
            "n_steps_": state.n_steps,
        }
        if self.parametrization == "alista":
            attributes["alista_weight_"] = np.ldexp(ctx.W, -ed)
        return attributes

    def _set_fitted(self, state):
        self.__dict__.update(self.fitted_attributes(state))

    # ------------------------------------------------------------ use

    def _encode(self, X):
        """Codes and summed objective terms of ``X`` (original units)."""
        check_is_fitted(self)
        X = validate_data(self, X, dtype=FLOAT_DTYPES, order="C", reset=False)
        ex, ed = self._exponents
        Xs = np.ldexp(X, -ex).astype(X.dtype, copy=False)
        res = self._forward_backward(self._params, self._ctx, Xs, backward=False)
        codes = np.ldexp(res.codes, ex - ed).astype(X.dtype, copy=False)
        return codes, np.ldexp(res.data_loss + res.penalty, 2 * ex), X.shape[0]

    def transform(self, X):
        """Encode ``X`` with the learned network.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data to encode.

        Returns
        -------
        codes : ndarray of shape (n_samples, n_components)
            Codes, in the dtype of ``X``.
        """
        return self._encode(X)[0]

    def inverse_transform(self, X):
        """Reconstruct data from codes: ``codes @ components_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_components)
            Codes, as returned by ``transform``.

        Returns
        -------
        X_original : ndarray of shape (n_samples, n_features)
            Reconstruction.
        """
        check_is_fitted(self)
        codes = check_array(X, dtype=FLOAT_DTYPES, input_name="X")
        if codes.shape[1] != self.n_components_:
            raise ValueError(
                f"X has {codes.shape[1]} columns (shape {codes.shape}); expected "
                f"n_components_={self.n_components_} codes."
            )
        return codes @ self.components_.astype(codes.dtype, copy=False)

    def score(self, X, y=None):
        """Minus the mean lasso objective of the network's codes of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Data.
        y : Ignored
            Not used, present for API consistency by convention.

        Returns
        -------
        score : float
            ``-mean(0.5 ||x - z D||^2 + alpha_ ||z||_1)``; higher is better.
        """
        _, total, n = self._encode(X)
        return -float(total) / n

    @property
    def _n_features_out(self):
        return self.components_.shape[0]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        tags.non_deterministic = False
        return tags


def _size(param):
    """A parameter's initial size: the root mean square of its entries."""
    rms = float(np.sqrt(np.mean(np.square(param))))
    return rms if rms > 0 else 1.0
