"""Scale equivariance as a hypothesis-driven property (the reliability issue):
fitting ``c X`` with the correspondingly scaled parameters (or scale-free
defaults) gives the same answer up to the scale, for ``c`` from ``1e-150`` to
``1e150``, or a clear error; never zeros, NaN or a silent freeze.

``c`` is drawn either as ``10**e`` (``e`` in [-150, 150]) or as ``2**k`` (``k``
in [-490, 490]); a power of two rescales every float exactly, so estimators
whose arithmetic is scale-free must then agree bit for bit. ``sparse_encode``
is covered the same way in coding/test_robustness_coding.py."""

import warnings

import numpy as np
import pytest
from conftest import planted_problem
from hypothesis import given, settings
from hypothesis import strategies as st

from skunroll import (
    ConvolutionalDictionaryLearning,
    MixMateClustering,
    SparseBayesianLearning,
    UnrolledDictionaryLearning,
    UnrolledSparseCoder,
)
from skunroll.datasets import make_dictionary_mixture, make_spike_recording

SCALES = st.one_of(
    st.integers(-150, 150).map(lambda e: 10.0**e),
    st.integers(-490, 490).map(lambda k: 2.0**k),
)
PROPERTY = settings(max_examples=8, deadline=None)


def _power_of_two(c):
    return np.frexp(c)[0] == 0.5


def assert_scaled(actual, expected, scale, c, rtol, exact=True):
    """``actual == scale * expected``: bit for bit when the drawn ``c`` is a
    power of two and ``exact``, else to ``rtol`` relative to the largest
    entry."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    assert np.all(np.isfinite(actual)), "non-finite output"
    assert np.any(expected != 0), "the reference itself is all zeros"
    if exact and _power_of_two(c):
        np.testing.assert_array_equal(actual / scale, expected)
    else:
        atol = rtol * np.max(np.abs(expected))
        np.testing.assert_allclose(actual / scale, expected, rtol=rtol, atol=atol)


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn()


X, D, _ = planted_problem(30, 8, 12, 2)


@pytest.mark.parametrize("algorithm", ["unrolled", "lasso", "fista", "ista", "omp"])
@PROPERTY
@given(c=SCALES)
def test_coder_codes_scale_with_the_data(algorithm, c):
    """Fixed dictionary: codes of ``c X`` with ``transform_alpha = c alpha``
    are ``c Z`` (OMP's ``n_nonzero_coefs`` is scale-free)."""
    if algorithm == "omp":
        ref_kw = new_kw = {"transform_n_nonzero_coefs": 2}
    else:
        ref_kw, new_kw = {"transform_alpha": 0.1}, {"transform_alpha": 0.1 * c}
    coder = UnrolledSparseCoder(D, transform_algorithm=algorithm, **ref_kw)
    ref = _quiet(lambda: coder.transform(X))
    coder = UnrolledSparseCoder(D, transform_algorithm=algorithm, **new_kw)
    assert_scaled(_quiet(lambda: coder.transform(c * X)), ref, c, c, rtol=1e-12)


@PROPERTY
@given(c=SCALES)
def test_dictionary_learning_is_scale_equivariant(c):
    """``c X`` with ``alpha = c alpha``: the same atoms, codes times ``c``;
    bit for bit under powers of two (Adam's eps is relative to the gradients),
    otherwise to a relative tolerance."""
    kw = {"max_iter": 2, "batch_size": 10, "random_state": 0}
    ref = _quiet(lambda: UnrolledDictionaryLearning(12, alpha=0.1, **kw).fit(X))
    est = _quiet(lambda: UnrolledDictionaryLearning(12, alpha=0.1 * c, **kw).fit(c * X))
    assert_scaled(est.components_, ref.components_, 1.0, c, rtol=5e-6)
    assert_scaled(est.transform(c * X), ref.transform(X), c, c, rtol=5e-6)


_MIXTURE = make_dictionary_mixture(
    60, n_clusters=2, n_components=3, n_features=6, random_state=0
)[0]


@PROPERTY
@given(e=st.integers(-150, 150))
def test_mixmate_labels_are_scale_invariant(e):
    """``c X`` with ``alpha = c alpha`` and ``temperature = c**2 T``: the same
    labels and atoms, or (data whose squares underflow) a clear ValueError."""
    c = 10.0**e
    kw = {"n_components": 3, "max_iter": 2, "random_state": 0}
    ref = _quiet(lambda: MixMateClustering(2, alpha=0.05, **kw).fit(_MIXTURE))
    est = MixMateClustering(2, alpha=0.05 * c, temperature=0.1 * c * c, **kw)
    try:
        _quiet(lambda: est.fit(c * _MIXTURE))
    except ValueError as exc:
        assert "underflows" in str(exc)
        return
    np.testing.assert_array_equal(est.labels_, ref.labels_)
    assert_scaled(est.components_, ref.components_, 1.0, c, rtol=1e-6, exact=False)
    np.testing.assert_array_equal(est.predict(c * _MIXTURE), ref.labels_)


_RECORDING = make_spike_recording(1, 600, random_state=0)[0]


@PROPERTY
@given(c=SCALES)
def test_convolutional_learning_is_scale_equivariant(c):
    """``c X`` with ``alpha = c alpha``: the same kernels, code maps times
    ``c``; bit for bit under powers of two."""
    kw = {"max_iter": 2, "tol": 0, "random_state": 0}
    ref = ConvolutionalDictionaryLearning(2, 20, alpha=0.3, **kw).fit(_RECORDING)
    est = ConvolutionalDictionaryLearning(2, 20, alpha=0.3 * c, **kw)
    est.fit(c * _RECORDING)
    assert_scaled(est.kernels_, ref.kernels_, 1.0, c, rtol=1e-12)
    assert_scaled(
        est.code_maps(c * _RECORDING), ref.code_maps(_RECORDING), c, c, rtol=1e-12
    )


_XS = X[:, :6]
_YS = _XS @ np.array([1.0, 0, 0, -2.0, 0, 0.5]) + 0.1 * X[:, 7]


def _sbl(Xs, ys, solver, **params):
    kw = {"solver": solver, "max_iter": 3, "tol": 0, "random_state": 0}
    return _quiet(lambda: SparseBayesianLearning(**kw, **params).fit(Xs, ys))


@pytest.mark.parametrize("solver", ["em", "cofem"])
@PROPERTY
@given(c=SCALES)
def test_sbl_with_scale_free_defaults_is_scale_equivariant(solver, c):
    """The default noise precision ``1 / var(y)`` and the relative
    ``threshold_lambda`` are scale-free: ``c X`` gives ``coef / c`` and the
    same predictions and std; ``c y`` gives ``c coef``, ``c intercept`` and
    ``c`` times the predictions and std."""
    ref = _sbl(_XS, _YS, solver)
    pred, std = ref.predict(_XS, return_std=True)
    cx = _sbl(c * _XS, _YS, solver)
    assert_scaled(ref.coef_, cx.coef_, c, c, rtol=1e-10)
    assert_scaled(cx.intercept_, ref.intercept_, 1.0, c, rtol=1e-10)
    for got, want in zip(
        cx.predict(c * _XS, return_std=True), (pred, std), strict=True
    ):
        assert_scaled(got, want, 1.0, c, rtol=1e-10)
    cy = _sbl(_XS, c * _YS, solver)
    assert_scaled(cy.coef_, ref.coef_, c, c, rtol=1e-10)
    assert_scaled(cy.intercept_, ref.intercept_, c, c, rtol=1e-10)
    for got, want in zip(cy.predict(_XS, return_std=True), (pred, std), strict=True):
        assert_scaled(got, want, c, c, rtol=1e-10)


@pytest.mark.parametrize("solver", ["em", "cofem"])
@PROPERTY
@given(c=SCALES)
def test_sbl_with_a_fixed_noise_precision_scales_it_by_one_over_c_squared(solver, c):
    """A known noise level ``sigma`` on ``c y`` is ``c sigma``: the precision
    ``4 / c**2`` on ``c y`` gives ``c coef``; on ``c X`` (same ``y``) the
    precision is unchanged and the coefficients are ``coef / c``."""
    kw = {"fit_noise": False}
    ref = _sbl(_XS, _YS, solver, noise_precision_init=4.0, **kw)
    cy = _sbl(_XS, c * _YS, solver, noise_precision_init=4.0 / c / c, **kw)
    assert_scaled(cy.coef_, ref.coef_, c, c, rtol=1e-10)
    cx = _sbl(c * _XS, _YS, solver, noise_precision_init=4.0, **kw)
    assert_scaled(ref.coef_, cx.coef_, c, c, rtol=1e-10)


def _fit_dl(c):
    kw = {"max_iter": 2, "batch_size": 10, "random_state": 0}
    return _quiet(
        lambda: UnrolledDictionaryLearning(12, alpha=0.1 * c, **kw).fit(c * X)
    )


def _fit_mixmate(c):
    kw = {"n_components": 3, "max_iter": 2, "random_state": 0}
    est = MixMateClustering(2, alpha=0.05 * c, temperature=0.1 * c * c, **kw)
    return _quiet(lambda: est.fit(c * _MIXTURE))


@pytest.mark.parametrize(
    "fit, c, attribute",
    [
        (_fit_dl, 1e-3, "components_"),  # were off by ~1 (2**-12..2**-6)
        (_fit_mixmate, 2.0**-13, "labels_"),  # differed (2**-14..2**-12)
        (_fit_mixmate, 1e-2, "components_"),  # were off by ~3e-4
    ],
)
def test_adam_eps_no_longer_breaks_equivariance(fit, c, attribute):
    """Regression: with textbook Adam's absolute eps=1e-8, data scaled by
    ~1e-4..0.1 (gradients ~c**2) fitted differently, silently."""
    ref, est = fit(1.0), fit(c)
    np.testing.assert_allclose(
        getattr(est, attribute), getattr(ref, attribute), rtol=1e-5, atol=1e-5
    )
