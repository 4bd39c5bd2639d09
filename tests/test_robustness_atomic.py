"""Atomic fits, driven by hypothesis: a failure at a random point of ``fit``
(on the same or wider data) or ``partial_fit`` leaves the estimator exactly as
it was. A fresh estimator stays unfitted; a fitted one keeps every attribute,
the same objects (``atomic`` restores the instance's ``__dict__``) holding the
same bits as a deep copy taken before (nothing was mutated in place).

The failure points: the ``callback`` raising at a drawn step (the trainers),
the ``max_iter`` ConvergenceWarning turned into an error (after the fitted
attributes were set), an EM iteration raising at a drawn iteration or the
fitted attributes' setter raising once they are set (SparseBayesianLearning,
which has no callback)."""

import copy
import dataclasses
import functools
import math
import warnings
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

from skunroll import (
    ConvolutionalDictionaryLearning,
    MixMateClustering,
    SparseBayesianLearning,
    UnrolledDictionaryLearning,
)


class Boom(Exception):
    """The injected failure."""


# ------------------------------------------------------------ comparisons


def assert_same(a, b, path="est"):
    """``a`` and ``b`` hold the same values: arrays bit for bit (dtype, shape,
    bytes), containers, dataclasses and objects recursively, random states by
    their state."""
    assert type(a) is type(b), path
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, path
        if a.dtype == object:
            for i, (x, y) in enumerate(zip(a.ravel(), b.ravel(), strict=True)):
                assert_same(x, y, f"{path}[{i}]")
        else:
            assert a.tobytes() == b.tobytes(), path
    elif isinstance(a, np.random.RandomState):
        assert_same(a.get_state(legacy=False), b.get_state(legacy=False), path)
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            assert_same(a[k], b[k], f"{path}[{k!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float | np.floating):
        assert a == b or (math.isnan(a) and math.isnan(b)), path
    elif dataclasses.is_dataclass(a) or hasattr(a, "__dict__") and not callable(a):
        assert_same(vars(a), vars(b), f"{path}.")
    else:
        assert a is b or a == b, path


def assert_unchanged(est, before, snapshot):
    """``est`` has the attributes of ``before`` (a shallow copy of its
    ``__dict__``), the same objects, with the contents of ``snapshot`` (a deep
    copy taken with it)."""
    after = vars(est)
    assert after.keys() == before.keys()
    for k, v in before.items():
        assert after[k] is v, k
    assert_same(dict(after), snapshot)


def assert_unfitted(est, params):
    with pytest.raises(NotFittedError):
        check_is_fitted(est)
    assert not hasattr(est, "n_features_in_")
    assert vars(est).keys() == params.keys()


def _raise_at(step):
    def callback(est, info):
        if info["n_steps"] >= step:
            raise Boom(f"step {info['n_steps']}")

    return callback


# ------------------------------------------------------------ the trainers

MAX_ITER = 2


@functools.cache
def _data(kind):
    """Training data, wider data (more features, or longer signals) and the
    estimator's parameters, every fit ``MAX_ITER`` epochs of a few steps."""
    rng = np.random.default_rng(0)
    if kind == "conv":
        X = rng.standard_normal((4, 60))
        wide = rng.standard_normal((4, 80))
        params = {"n_components": 2, "kernel_size": 6, "batch_size": 2}
    else:
        centres = 3.0 * rng.standard_normal((2, 8))
        X = centres[np.arange(24) % 2] + rng.standard_normal((24, 8))
        X, wide = X[:, :6], X
        params = {"n_components": 3, "batch_size": 8}
        if kind == "mixmate":
            params["n_clusters"] = 2
    # tol tiny: every fit runs its MAX_ITER epochs and warns that it did
    params |= {"max_iter": MAX_ITER, "tol": 1e-12, "random_state": 0}
    return X, wide, params


def _steps(kind):
    X, _, params = _data(kind)
    return MAX_ITER * math.ceil(X.shape[0] / params["batch_size"])


ESTIMATORS = {
    "dense": UnrolledDictionaryLearning,
    "mixmate": MixMateClustering,
    "conv": ConvolutionalDictionaryLearning,
}


@functools.cache
def _fitted(kind):
    X, _, params = _data(kind)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return ESTIMATORS[kind](**params).fit(X)


def _arm(est, failure):
    """Set up the injected ``failure``: a step (the callback raises there) or
    "end" (the ConvergenceWarning of a fit's last epoch, to raise); returns
    the exception to expect."""
    est.set_params(callback=None if failure == "end" else _raise_at(failure))
    return ConvergenceWarning if failure == "end" else Boom


def _call(est, call, X, expected):
    with warnings.catch_warnings():
        action = "error" if expected is ConvergenceWarning else "ignore"
        warnings.simplefilter(action, ConvergenceWarning)
        with pytest.raises(expected):
            getattr(est, call)(X)


def _failure(kind):
    return st.one_of(st.integers(1, _steps(kind)), st.just("end"))


@pytest.mark.parametrize("kind", list(ESTIMATORS))
@settings(max_examples=10, deadline=None)
@given(data=st.data())
def test_a_failed_fit_leaves_the_estimator_as_it_was(kind, data):
    X, wide, params = _data(kind)
    # a fresh estimator stays unfitted: fit, then a first partial_fit
    fresh = ESTIMATORS[kind](**params)
    _call(fresh, "fit", X, _arm(fresh, data.draw(_failure(kind), label="fit")))
    assert_unfitted(fresh, fresh.get_params())
    _call(fresh, "partial_fit", X, _arm(fresh, 1))
    assert_unfitted(fresh, fresh.get_params())

    # a fitted one keeps everything: a refit (on wider data, or the same)
    est = copy.deepcopy(_fitted(kind))
    codes = est.transform(X)
    refit_on = wide if data.draw(st.booleans(), label="wider") else X
    expected = _arm(est, data.draw(_failure(kind), label="refit"))
    before, snapshot = dict(vars(est)), copy.deepcopy(vars(est))
    _call(est, "fit", refit_on, expected)
    assert_unchanged(est, before, snapshot)
    np.testing.assert_array_equal(est.set_params(callback=None).transform(X), codes)

    # then a few successful partial_fit calls, and one that fails at its step
    for _ in range(data.draw(st.integers(0, 2), label="partial_fit calls")):
        est.partial_fit(X)
    expected = _arm(est, est.n_steps_ + 1)
    before, snapshot = dict(vars(est)), copy.deepcopy(vars(est))
    _call(est, "partial_fit", X, expected)
    assert_unchanged(est, before, snapshot)


# ------------------------------------------------- SparseBayesianLearning


@functools.cache
def _sbl_data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 9))
    y = 2.0 * X[:, 0] - X[:, 4] + 0.1 * rng.standard_normal(12)
    return X[:, :6], X, y


@functools.cache
def _sbl_fitted(solver):
    X, _, y = _sbl_data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SparseBayesianLearning(solver=solver, random_state=0).fit(X, y)


def _sbl_fails(est, X, y, failure):
    """``fit`` failing at the M-step of EM iteration ``failure``, or ("end")
    in the setter of the fitted attributes, after it set them."""
    from skunroll._sbl import sbl as module

    if failure == "end":
        real = type(est)._set_fitted

        def failing(self, *args):
            real(self, *args)
            raise Boom("after the attributes were set")

        patch = mock.patch.object(type(est), "_set_fitted", failing)
    else:
        calls = []
        real_mstep = module._mstep

        def failing(*args):
            calls.append(1)
            if len(calls) >= failure:
                raise Boom(f"EM iteration {len(calls)}")
            return real_mstep(*args)

        patch = mock.patch.object(module, "_mstep", failing)
    with patch, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(Boom):
            est.fit(X, y)


@pytest.mark.parametrize("solver", ["em", "cofem"])
@settings(max_examples=10, deadline=None)
@given(
    fresh_failure=st.one_of(st.integers(1, 3), st.just("end")),
    refit_failure=st.one_of(st.integers(1, 3), st.just("end")),
    wider=st.booleans(),
)
def test_a_failed_sbl_fit_leaves_the_estimator_as_it_was(
    solver, fresh_failure, refit_failure, wider
):
    """(Was test_sbl_failed_fit_leaves_nothing, which failed ``_fit_sbl`` at
    its start only.)"""
    X, wide, y = _sbl_data()
    fresh = SparseBayesianLearning(solver=solver, random_state=0)
    _sbl_fails(fresh, X, y, fresh_failure)
    assert_unfitted(fresh, fresh.get_params())

    est = copy.deepcopy(_sbl_fitted(solver))
    pred = est.predict(X)
    before, snapshot = dict(vars(est)), copy.deepcopy(vars(est))
    _sbl_fails(est, wide if wider else X, y, refit_failure)
    assert_unchanged(est, before, snapshot)
    np.testing.assert_array_equal(est.predict(X), pred)
