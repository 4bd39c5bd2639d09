"""The one minibatch trainer: its rules on a toy model, and the estimators
that use it (atomic fits, scikit-learn's callback API)."""

import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from skunroll import UnrolledDictionaryLearning
from skunroll._training import (
    MAX_HALVINGS,
    SGD,
    Sums,
    Trainer,
    TrainingState,
    atomic,
    converged,
)
from skunroll.datasets import make_dictionary, make_sparse_coded_data


class _LeastSquares:
    """Minimise mean 0.5 ||x_i - w||^2 over w: the mean of the data."""

    def __init__(self, fail_at=()):
        self.fail_at = set(fail_at)
        self.calls = 0
        self.epochs = []

    def n_units(self, X):
        return X.shape[0]

    def gradients(self, state, X, idx):
        self.calls += 1
        r = state.params["w"] - X[idx]
        obj = 0.5 * float(np.sum(r * r))
        if self.calls in self.fail_at:
            obj = np.nan
        return Sums(obj, idx.size, {"w": r.sum(axis=0)})

    def apply(self, state, X, idx, grads, sums):
        state.optimizers["w"].step(state.params["w"], grads["w"], state.learning_rate)

    def reset_optimizers(self, state):
        state.optimizers = {"w": SGD(None)}

    def end_epoch(self, state, X, objective, stats, n_seen):
        self.epochs.append(objective)

    def convergence_start(self, state):
        return 0

    def callback_info(self, state):
        return {"w": state.params["w"]}

    def fitted_attributes(self, state):
        return {"w_": state.params["w"].copy()}


def _state(dim=3, lr=0.5):
    return TrainingState(
        params={"w": np.zeros(dim)},
        optimizers={"w": SGD(None)},
        rng=np.random.RandomState(0),
        learning_rate=lr,
    )


def _trainer(model, **kw):
    kw = {"name": "toy", "max_iter": 50, "tol": 1e-8, "batch_size": 10, **kw}
    return Trainer(model, None, **kw)


def test_converged_rule_and_patience():
    assert not converged([1.0], 0.1)
    assert converged([1.0, 0.95], 0.1)
    assert not converged([1.0, 0.5], 0.1)
    assert not converged([1.0, 0.95], 0.0)  # tol=0 never stops
    assert not converged([2.0, 1.0, 0.99], 0.05, patience=2)
    assert converged([1.0, 0.99, 0.985], 0.05, patience=2)


def test_trainer_reaches_the_mean_and_stops_at_tol():
    X = np.random.default_rng(0).standard_normal((100, 3)) + 2.0
    model = _LeastSquares()
    trainer = _trainer(model, tol=1e-6, batch_size=100)  # full-batch descent
    state = trainer.fit(_state(), X)
    assert state.stopped and state.n_epochs < 50
    np.testing.assert_allclose(state.params["w"], X.mean(axis=0), atol=1e-2)
    assert len(state.objective_history) == state.n_epochs == len(model.epochs)
    assert state.n_steps == state.n_epochs


def test_max_iter_warns_only_when_not_converged():
    X = np.random.default_rng(0).standard_normal((100, 3))
    trainer = _trainer(_LeastSquares(), max_iter=2, tol=1e-12)
    state = trainer.fit(_state(lr=0.01), X)
    with pytest.warns(ConvergenceWarning, match="max_iter=2"):
        trainer.warn_if_not_converged(state)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _trainer(_LeastSquares(), max_iter=2, tol=0).warn_if_not_converged(state)


def test_non_finite_step_restores_halves_and_gives_up():
    X = np.random.default_rng(0).standard_normal((100, 3))
    model = _LeastSquares(fail_at={3})
    trainer = _trainer(model, max_iter=1, tol=0)
    with pytest.warns(RuntimeWarning, match="previous parameters restored"):
        state = trainer.fit(_state(), X)
    assert state.learning_rate == 0.25 and state.n_steps == 9
    model = _LeastSquares(fail_at=range(1, 100))
    with pytest.raises(FloatingPointError, match=f"{MAX_HALVINGS} steps in a row"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            _trainer(model, max_iter=5, tol=0).fit(_state(), X)


def test_callback_gets_read_only_info_and_stops():
    X = np.random.default_rng(0).standard_normal((100, 3))
    seen = []

    def callback(est, info):
        seen.append(info)
        with pytest.raises(ValueError):
            info["w"][0] = 1.0
        return info["n_steps"] == 4

    state = _trainer(_LeastSquares(), callback=callback).fit(_state(), X)
    assert state.n_steps == 4 and state.stopped and len(seen) == 4
    assert set(seen[0]) >= {"n_iter", "n_steps", "objective", "learning_rate", "w"}


def test_partial_fit_periods():
    X = np.random.default_rng(0).standard_normal((10, 3))
    model = _LeastSquares()
    model.period = lambda state: 25
    trainer = _trainer(model)
    state = _state()
    for _ in range(5):
        trainer.partial_fit(state, X)
    assert state.n_epochs == 5 and len(model.epochs) == 1  # 50 samples: 1 period
    assert state.period_samples == 20


def test_atomic_restores_every_attribute():
    class Est:
        @atomic
        def fit(self, fail):
            self.a_ = 1
            self.b = "changed"
            if fail:
                raise RuntimeError("boom")
            return self

    est = Est()
    est.b = "original"
    with pytest.raises(RuntimeError):
        est.fit(True)
    assert est.__dict__ == {"b": "original"}
    est.fit(False)
    assert est.a_ == 1


@pytest.fixture(scope="module")
def planted():
    D = make_dictionary(16, 8, random_state=0)
    X, _, _ = make_sparse_coded_data(600, D, n_nonzero_coefs=2, random_state=0)
    return X


def _raise_at_step(n):
    def callback(est, info):
        if info["n_steps"] >= n:
            raise RuntimeError("stop here")

    return callback


def test_failed_fit_leaves_dictionary_learning_as_it_was(planted):
    X = planted
    fresh = UnrolledDictionaryLearning(16, max_iter=3, callback=_raise_at_step(3))
    with pytest.raises(RuntimeError, match="stop here"):
        fresh.fit(X)
    with pytest.raises(NotFittedError):
        check_is_fitted(fresh)
    assert not hasattr(fresh, "n_features_in_")
    est = UnrolledDictionaryLearning(16, max_iter=2, tol=0, random_state=0).fit(X)
    before = {k: v for k, v in vars(est).items() if k.endswith("_")}
    codes = est.transform(X)
    wider = np.hstack([X, X[:, :3]])
    attempts = [
        (est.fit, wider, _raise_at_step(2)),  # a refit on wider data
        (est.partial_fit, X, _raise_at_step(est.n_steps_ + 1)),
        (est.partial_fit, wider, None),  # the wrong width: a clear error
    ]
    for call, data, callback in attempts:
        est.set_params(callback=callback)
        with pytest.raises((RuntimeError, ValueError)):
            call(data)
        after = {k: v for k, v in vars(est).items() if k.endswith("_")}
        assert after.keys() == before.keys()
        for k, v in before.items():
            assert after[k] is v
        np.testing.assert_array_equal(est.set_params(callback=None).transform(X), codes)


class _CountingCallback:
    """A scikit-learn FitCallback counting the tasks it sees."""

    def __init__(self):
        self.begun, self.ended, self.fitted = 0, 0, []

    def setup(self, estimator, context):
        pass

    def on_fit_task_begin(self, estimator, context):
        self.begun += 1

    def on_fit_task_end(self, estimator, context, *, fitted_estimator=None):
        self.ended += 1
        if fitted_estimator is not None:
            self.fitted.append(fitted_estimator)
        return False

    def teardown(self, estimator, context):
        pass


def test_sklearn_callbacks_see_one_task_per_epoch(planted):
    pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9")
    cb = _CountingCallback()
    est = UnrolledDictionaryLearning(16, max_iter=3, tol=0, random_state=0)
    est.set_callbacks(cb).fit(planted)
    assert est.n_iter_ == 3
    assert cb.begun == cb.ended == 3 + 1  # the fit and its epochs
    # the epoch's estimator is usable: it transforms with that epoch's atoms
    assert cb.fitted[-1].transform(planted[:5]).shape == (5, 16)
    # the same fit without callbacks: identical result
    plain = clone(est).set_callbacks().fit(planted)
    np.testing.assert_array_equal(plain.components_, est.components_)


def test_scoring_monitor_inside_a_pipeline(planted):
    callback = pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9")
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    monitor = callback.ScoringMonitor(
        scoring={"score": lambda est, X, y: est.score(X)}  # the estimator's score
    )
    dl = UnrolledDictionaryLearning(16, max_iter=3, tol=0, random_state=0)
    dl.set_callbacks(monitor)
    y = np.zeros(len(planted))  # ignored by fit; ScoringMonitor scores when given
    make_pipeline(StandardScaler(), dl).fit(planted, y)
    rows = [r for r in monitor.get_logs().data if r.get("task_name") == "epoch"]
    assert len(rows) == 3  # one score per epoch, by the estimator's score
    scores = [r["score"] for r in rows]
    assert np.all(np.isfinite(scores))
    assert scores[-1] >= scores[0]  # training improves the score


def _textbook_adam(grads, lr=0.01, b1=0.9, b2=0.999, eps=1e-8):
    p, m, v = np.zeros_like(grads[0]), 0.0, 0.0
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        p = p - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
    return p


@pytest.mark.parametrize("exponent", [-300, -150, -40, 0, 40, 150, 300])
def test_adam_is_textbook_with_eps_relative_to_the_gradients(exponent):
    """Textbook Adam with ``eps`` in units of the first gradient's power of
    two, at every scale (g**2 would overflow or underflow at the extremes)."""
    from skunroll._training import Adam

    grads = list(np.random.default_rng(0).standard_normal((20, 5)))
    unit = 2.0 ** round(np.log2(np.abs(grads[0]).max()))
    reference = _textbook_adam(grads, eps=1e-8 * unit)
    adam, p = Adam((5,)), np.zeros(5)
    for g in grads:
        adam.step(p, g * 10.0**exponent, 0.01)
    if exponent == 0:  # the textbook formula, up to the order of operations
        np.testing.assert_allclose(p, reference, rtol=1e-12)
        assert adam.scale == unit
    else:  # the same steps, where g**2 would overflow or underflow
        np.testing.assert_allclose(p, reference, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("k", [-40, -13, -7, 9, 60])
def test_adam_steps_are_the_same_for_gradients_scaled_by_a_power_of_two(k):
    """The step is exactly invariant to the gradients' scale: eps is relative
    (with textbook Adam's absolute eps, gradients of ~1e-6 trained otherwise)."""
    from skunroll._training import Adam

    grads = list(np.random.default_rng(1).standard_normal((30, 4)))
    ref, scaled = Adam((4,)), Adam((4,))
    p_ref, p_scaled = np.zeros(4), np.zeros(4)
    for g in grads:
        ref.step(p_ref, g, 0.01)
        scaled.step(p_scaled, g * 2.0**k, 0.01)
    np.testing.assert_array_equal(p_scaled, p_ref)


@pytest.mark.parametrize("exponent", [-150, -80, 80, 150])
def test_dictionary_learning_is_scale_equivariant(planted, exponent):
    """Fitting c X with c alpha gives the atoms of X and c times its codes
    (data x1e80 once froze the dictionary: Adam's second moment overflowed)."""
    X, c = planted[:200], 10.0**exponent
    kw = {"max_iter": 3, "tol": 0, "random_state": 0}
    ref = UnrolledDictionaryLearning(16, alpha=0.1, **kw).fit(X)
    dl = UnrolledDictionaryLearning(16, alpha=0.1 * c, **kw).fit(X * c)
    np.testing.assert_allclose(dl.components_, ref.components_, atol=1e-4)
    np.testing.assert_allclose(dl.transform(X * c) / c, ref.transform(X), atol=1e-4)


def _three_trained_estimators():
    from skunroll import ConvolutionalDictionaryLearning, MixMateClustering

    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 10))
    signals = rng.standard_normal((6, 300))
    kw = {"tol": 0, "random_state": 0}
    return [
        (UnrolledDictionaryLearning(8, **kw), X),
        (MixMateClustering(2, n_components=3, **kw), X),
        (ConvolutionalDictionaryLearning(2, kernel_size=10, **kw), signals),
    ]


@pytest.mark.parametrize("index", [0, 1, 2], ids=["dense", "mixmate", "conv"])
def test_sklearn_callbacks_on_every_trained_estimator(index, capsys):
    """ProgressBar shows progress; ScoringMonitor logs one score per epoch of
    every fit, inside a Pipeline and inside GridSearchCV (clones included)."""
    callback = pytest.importorskip("sklearn.callback", reason="scikit-learn < 1.9")
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    est, X = _three_trained_estimators()[index]
    y = np.zeros(len(X))  # ignored by fit; ScoringMonitor scores when given
    clone(est).set_params(max_iter=2).set_callbacks(callback.ProgressBar()).fit(X)
    assert "100%" in capsys.readouterr().out

    def epochs(monitor):
        rows = monitor.get_logs().data
        assert all(np.isfinite(r["score"]) for r in rows)
        return sum(r["task_name"] == "epoch" for r in rows)

    score = {"score": lambda e, X, y: e.score(X)}
    monitor = callback.ScoringMonitor(scoring=score)
    make_pipeline(clone(est).set_params(max_iter=2).set_callbacks(monitor)).fit(X, y)
    assert epochs(monitor) == 2
    monitor = callback.ScoringMonitor(scoring=score)
    grid = GridSearchCV(
        clone(est).set_callbacks(monitor), {"max_iter": [1, 3]}, cv=2
    ).fit(X, y)
    # two folds of each candidate (1 + 3 epochs), then the refit of the best
    assert epochs(monitor) == 2 * (1 + 3) + grid.best_params_["max_iter"]
