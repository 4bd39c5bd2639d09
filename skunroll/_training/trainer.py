"""The one minibatch trainer of every unrolled estimator.

``Trainer`` owns what every trained estimator repeats: epochs over shuffled
minibatches, the optimiser step split into *compute summed gradients on these
samples* (``model.gradients``, additive over samples, so shards can be summed
on several machines) and *apply the summed gradients* (``model.apply``),
recovery from a non-finite step, one convergence rule, the ``max_iter``
ConvergenceWarning, the ``callback``, ``verbose`` printing, scikit-learn's
callback API (one sub-task per epoch) and the periods of ``partial_fit``.

The estimator supplies a *model* (usually itself) with:

``n_units(data)``
    number of training units (samples or signal segments);
``prepare(state, idx)``
    optional: what every unit's gradient needs and only the parameters (and
    the minibatch's size) determine, stored on ``state`` (the encoder's step
    from a warm-started power iteration, whether atoms are due to be
    re-drawn); called once per step before ``gradients``;
``gradients(state, data, idx) -> Sums``
    summed objective and summed gradients of the units ``idx``. It must not
    modify ``state``, and ``apply`` must need nothing of the data but these
    sums: summed over shards of the minibatch (``combine_sums``), they give
    the step that the whole minibatch gives, which is how
    :mod:`skunroll.distributed` trains on several machines;
``combine_extra(extras)``
    optional: merge the ``Sums.extra`` of shards of one minibatch (needed
    when ``extra`` is not None);
``mean_gradients(state, sums) -> (objective, grads)``
    optional: the mean objective and gradients of a minibatch (default: the
    sums divided by ``sums.n``; add parameter-only terms here);
``apply(state, data, idx, grads, sums)``
    the optimiser step and projections, in place on ``state.params``;
``reset_optimizers(state)``, ``on_restore(state)``
    forget optimiser moments; recompute what depends on the restored
    parameters;
``end_epoch(state, data, objective, stats, n_seen)``
    what happens between epochs (gradient switch, kernel alignment,
    re-seeding), with ``stats`` the epoch's summed ``Sums.stats`` and
    ``n_seen`` the units of its applied steps;
``convergence_start(state)``
    first epoch the convergence rule looks at, or None while it may not stop;
``stop_early(state)``
    optional: True ends training after this epoch (early stopping on held-out
    data, which the model tracks in ``end_epoch``);
``callback_info(state)`` and ``fitted_attributes(state)``; optionally
``period(state)`` (samples per ``partial_fit`` period) and
``epoch_message(state, stats)``.

The training state lives in a ``TrainingState`` (estimator-specific fields
in a subclass); it is attached to the estimator only after success.
"""

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
from sklearn.exceptions import ConvergenceWarning

#: consecutive non-finite steps (learning rate halved each time) before giving up
MAX_HALVINGS = 10


@dataclass
class TrainingState:
    """What a fit updates. ``params`` maps names to the learned arrays
    (updated in place); the trainer snapshots them before every update so
    that a non-finite step can go back to them."""

    params: dict
    optimizers: dict
    rng: np.random.RandomState
    learning_rate: float
    n_steps: int = 0
    n_epochs: int = 0
    failures: int = 0
    objective_history: list = field(default_factory=list)
    previous: dict = None
    stopped: bool = False
    period_objective: float = 0.0
    period_samples: int = 0
    epoch_units: int = None  # units of an epoch, set by fit; None in partial_fit


@dataclass
class Sums:
    """Summed objective and gradients over ``n`` training units; ``stats``
    are summed per-unit quantities the model keeps (atom usage, cluster
    sizes); ``extra`` is what ``apply`` needs of this batch (codes)."""

    objective: float
    n: int
    grads: dict
    finite: bool = True
    stats: dict = field(default_factory=dict)
    extra: object = None


def combine_sums(parts, combine_extra=None):
    """The ``Sums`` of a minibatch from those of its shards (in shard order):
    objectives, counts, gradients and ``stats`` added, ``finite`` if every
    part is, ``extra`` merged by ``combine_extra`` (a model's method; None
    when no part has an ``extra``)."""
    parts = list(parts)
    if not parts:
        raise ValueError("combine_sums needs at least one part")
    grads = {}
    for k, first in parts[0].grads.items():
        grads[k] = first.copy()
        for p in parts[1:]:
            grads[k] += p.grads[k]
    stats = {}
    for p in parts:
        for key, value in p.stats.items():
            stats[key] = stats[key] + value if key in stats else value
    extras = [p.extra for p in parts]
    extra = None
    if any(e is not None for e in extras):
        if combine_extra is None:
            raise TypeError("these Sums carry extra but no combine_extra was given")
        extra = combine_extra(extras)
    return Sums(
        objective=sum(p.objective for p in parts),
        n=sum(p.n for p in parts),
        grads=grads,
        finite=all(p.finite for p in parts),
        stats=stats,
        extra=extra,
    )


def mean_gradients(sums):
    """The default mean objective and gradients of a minibatch."""
    return sums.objective / sums.n, {k: g / sums.n for k, g in sums.grads.items()}


def converged(history, tol, patience=1):
    """One convergence rule: the last ``patience`` epochs each changed the mean
    objective by at most ``tol`` relative to the epoch before."""
    if tol == 0 or len(history) < patience + 1:
        return False
    h = np.asarray(history[-(patience + 1) :], dtype=np.float64)
    changes = np.abs(np.diff(h))
    return bool(np.all(changes <= tol * np.maximum(np.abs(h[:-1]), 1e-12)))


class Trainer:
    """Minibatch training of ``model`` (see the module docstring).

    Parameters
    ----------
    model : object
        The estimator's training model.
    estimator : BaseEstimator
        The estimator (passed to ``callback`` and scikit-learn callbacks).
    name : str
        Name in messages.
    max_iter, tol, batch_size, verbose, callback
        The estimator's parameters of those names.
    patience : int, default=1
        Epochs in a row whose change must stay below ``tol``.
    what : str, default="parameters"
        What ``params`` are, in messages ("dictionary", "kernels").
    """

    def __init__(
        self,
        model,
        estimator,
        *,
        name,
        max_iter,
        tol,
        batch_size,
        verbose=0,
        callback=None,
        patience=1,
        what="parameters",
    ):
        self.model = model
        self.estimator = estimator
        self.name = name
        self.max_iter = max_iter
        self.tol = tol
        self.batch_size = batch_size
        self.verbose = verbose
        self.callback = callback
        self.patience = patience
        self.what = what

    @classmethod
    def for_estimator(cls, estimator, model=None, **options):
        """The trainer of ``estimator``: its ``max_iter``, ``tol``,
        ``batch_size``, ``verbose`` and ``callback``, its class name in
        messages, ``model`` the estimator itself unless given; ``options``
        override."""
        params = ("max_iter", "tol", "batch_size", "verbose", "callback")
        kwargs = {
            "name": type(estimator).__name__,
            **{name: getattr(estimator, name) for name in params},
            **options,
        }
        return cls(estimator if model is None else model, estimator, **kwargs)

    # ------------------------------------------------------------ one step

    def step(self, state, data, idx):
        """One minibatch update; the mean objective, or None when the step was
        non-finite and not applied (see ``recover``)."""
        model = self.model
        if hasattr(model, "prepare"):
            model.prepare(state, idx)
        sums = model.gradients(state, data, idx)
        mean_fn = getattr(model, "mean_gradients", None)
        objective, grads = mean_fn(state, sums) if mean_fn else mean_gradients(sums)
        finite = sums.finite and np.isfinite(objective)
        finite = finite and all(np.all(np.isfinite(g)) for g in grads.values())
        if not finite:
            self.recover(state)
            return None, sums
        state.failures = 0
        state.previous = {k: v.copy() for k, v in state.params.items()}
        model.apply(state, data, idx, grads, sums)
        state.n_steps += 1
        if self.verbose >= 2 and state.n_steps % 10 == 0:
            print(
                f"[{self.name}] step {state.n_steps:6d}  objective "
                f"{objective:.6g}  {time.perf_counter() - self._start:.2f} s",
                flush=True,
            )
        return objective, sums

    def recover(self, state):
        """A non-finite step: restore the parameters from before the previous
        update (which led here), forget the optimiser's moments, halve the
        learning rate; ``MAX_HALVINGS`` in a row raise FloatingPointError."""
        state.failures += 1
        if state.failures >= MAX_HALVINGS:
            raise FloatingPointError(
                f"the training objective was non-finite {MAX_HALVINGS} steps in a "
                f"row, each time with the previous {self.what} and half the "
                "learning rate; check the scale of X (and n_trials or the "
                "likelihood) and the initialisation. Nothing was fitted."
            )
        if state.previous is not None:
            for k, v in state.previous.items():
                state.params[k][...] = v
        self.model.reset_optimizers(state)
        if hasattr(self.model, "on_restore"):
            self.model.on_restore(state)
        state.learning_rate /= 2.0
        warnings.warn(
            f"non-finite training objective at step {state.n_steps + 1}; the "
            f"step was not applied, the previous {self.what} restored and "
            f"learning_rate halved to {state.learning_rate:.3g}.",
            RuntimeWarning,
            stacklevel=5,
        )

    def _user_callback(self, state, objective):
        if self.callback is None:
            return False
        info = {
            "n_iter": state.n_epochs,
            "n_steps": state.n_steps,
            "objective": objective,
            "learning_rate": state.learning_rate,
            "elapsed": time.perf_counter() - self._start,
        }
        for key, value in self.model.callback_info(state).items():
            view = np.asarray(value).view()
            view.flags.writeable = False
            info[key] = view
        return bool(self.callback(self.estimator, info))

    # ------------------------------------------------------------ fit

    def fit(self, state, data, X=None, y=None):
        """The epochs of ``fit`` from ``state``; returns it, trained. ``X``
        and ``y`` are what scikit-learn's callbacks see (``ScoringMonitor``
        scores only when ``y`` is given, as in scikit-learn)."""
        model = self.model
        n_units = model.n_units(data)
        state.epoch_units = n_units
        batch = min(self.batch_size, n_units)
        self._start = time.perf_counter()
        ctx = _callback_context(self.estimator, self.max_iter, X, y)
        for _ in range(self.max_iter):
            epoch_ctx = _begin_epoch(ctx, self.estimator, X, y)
            order = state.rng.permutation(n_units)
            total = seen = 0.0
            stats = {}
            stop = False
            for first in range(0, n_units, batch):
                idx = np.sort(order[first : first + batch])
                objective, sums = self.step(state, data, idx)
                if objective is None:
                    continue
                total += objective * idx.size
                seen += idx.size
                for key, value in sums.stats.items():
                    stats[key] = stats[key] + value if key in stats else value
                if self._user_callback(state, objective):
                    stop = True
                    break
            state.n_epochs += 1
            mean = total / seen if seen else np.nan
            state.objective_history.append(mean)
            model.end_epoch(state, data, mean, stats, seen)
            self._print_epoch(state, stats)
            if _end_epoch(epoch_ctx, self.estimator, X, y, model, state):
                stop = True
            if stop or self._converged(state) or self._stop_early(state):
                state.stopped = True
                break
        if ctx is not None:
            ctx.call_on_fit_task_end(estimator=self.estimator, X=X, y=y)
        self.check_some_step_applied(state)
        return state

    def _stop_early(self, state):
        stop_early = getattr(self.model, "stop_early", None)
        return bool(stop_early(state)) if stop_early is not None else False

    def _converged(self, state):
        start = self.model.convergence_start(state)
        if start is None:
            return False
        return converged(state.objective_history[start:], self.tol, self.patience)

    def warn_if_not_converged(self, state):
        """The ``max_iter`` ConvergenceWarning, once per fit."""
        if state.n_epochs >= self.max_iter and not state.stopped and self.tol > 0:
            warnings.warn(
                f"{self.name} stopped after max_iter={self.max_iter} epochs before "
                f"the objective settled (tol={self.tol}); increase max_iter or tol.",
                ConvergenceWarning,
                stacklevel=6,  # the caller of fit, under @atomic, @with_callbacks
            )  # and @_fit_context

    @staticmethod
    def check_some_step_applied(state):
        if state.n_steps == 0 and state.failures > 0:
            raise FloatingPointError(
                "the training objective was non-finite at every step; check the "
                "scale of X (and n_trials or the likelihood) and the "
                "initialisation. Nothing was fitted."
            )

    def _print_epoch(self, state, stats):
        if not self.verbose:
            return
        extra = ""
        if hasattr(self.model, "epoch_message"):
            extra = self.model.epoch_message(state, stats)
        print(
            f"[{self.name}] epoch {state.n_epochs:3d}/{self.max_iter}  objective "
            f"{state.objective_history[-1]:.6g}  steps {state.n_steps}{extra}  "
            f"{time.perf_counter() - self._start:.2f} s",
            flush=True,
        )

    # ------------------------------------------------------------ partial_fit

    def partial_fit(self, state, data):
        """One step on all of ``data``; every ``model.period(state)`` samples
        (None: never) the accumulated mean objective ends a period as an
        epoch ends in ``fit``."""
        self._start = time.perf_counter()
        state.epoch_units = None
        idx = np.arange(self.model.n_units(data))
        objective, sums = self.step(state, data, idx)
        state.n_epochs += 1
        if objective is None:  # not applied; the warning said so
            self.check_some_step_applied(state)
            state.objective_history.append(np.nan)
            return state
        self._user_callback(state, objective)
        state.objective_history.append(objective)
        period = self.model.period(state) if hasattr(self.model, "period") else None
        if period is not None:
            state.period_objective += objective * idx.size
            state.period_samples += idx.size
            if state.period_samples >= period:
                mean = state.period_objective / state.period_samples
                self.model.end_epoch(state, data, mean, sums.stats, idx.size)
                state.period_objective, state.period_samples = 0.0, 0
        return state


# ------------------------------------------------ scikit-learn's callback API


def _callback_context(estimator, max_iter, X, y):
    """The root context of scikit-learn's callbacks (>= 1.9), or None when
    the estimator has none (set on it or propagated by a meta-estimator):
    then training does no callback work at all."""
    if not hasattr(estimator, "_init_callback_context"):
        return None
    if not (
        getattr(estimator, "_skl_callbacks", None)
        or hasattr(estimator, "_parent_callback_ctx")
    ):
        return None
    ctx = estimator._init_callback_context(max_subtasks=max_iter)
    ctx.call_on_fit_task_begin(estimator=estimator, X=X, y=y)
    return ctx


def _begin_epoch(ctx, estimator, X, y):
    if ctx is None:
        return None
    sub = ctx.subcontext(task_name="epoch")
    sub.call_on_fit_task_begin(estimator=estimator, X=X, y=y)
    return sub


def _end_epoch(sub, estimator, X, y, model, state):
    """End the epoch's sub-task; True when a callback asks to stop."""
    if sub is None:
        return False
    return bool(
        sub.call_on_fit_task_end(
            estimator=estimator,
            X=X,
            y=y,
            reconstruction_attributes=lambda: model.fitted_attributes(state),
        )
    )
