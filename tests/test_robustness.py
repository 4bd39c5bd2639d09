"""Reproducers of the reliability issue as regression tests (the sparse-coding
and metrics ones are in coding/test_robustness_coding.py and
metrics/test_robustness_metrics.py, the trainer's in training/test_training.py;
atomic fits in test_robustness_atomic.py, bounded time in
test_robustness_budget.py)."""

import warnings

import numpy as np
import pytest

from skunroll import SparseBayesianLearning, UnrolledDictionaryLearning


@pytest.fixture
def sbl(data):
    X, _ = data
    y = 2.0 * X[:, 0] + 0.1 * np.random.default_rng(1).standard_normal(len(X))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SparseBayesianLearning().fit(X, y), X, y


@pytest.mark.parametrize("scale", [1e100, 1e150, 1e200])
def test_sbl_predictive_std_is_finite_and_scales(sbl, scale):
    model, X, _ = sbl
    pred, std = model.predict(X * scale, return_std=True)
    assert np.all(np.isfinite(pred)) and np.all(np.isfinite(std))
    _, std_ref = model.predict(X * 1e50, return_std=True)
    # far from the noise floor, the std is linear in the scale of x
    np.testing.assert_allclose(std / scale, std_ref / 1e50, rtol=1e-6)


def test_sbl_predictions_that_overflow_raise(sbl):
    model, X, _ = sbl
    with pytest.raises(ValueError, match="not finite"):
        model.predict(X * (1e308 / np.abs(X).max()))  # finite X, x @ coef is not


def test_sbl_keeps_float32(sbl):
    _, X, y = sbl
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        m = SparseBayesianLearning().fit(X.astype(np.float32), y.astype(np.float32))
    pred, std = m.predict(X.astype(np.float32), return_std=True)
    assert pred.dtype == np.float32 and std.dtype == np.float32


@pytest.mark.parametrize("noise", [1e200, 1e-200])
def test_cofem_solves_systems_of_any_scale(sbl, noise):
    """CoFEM's CG on ``(beta X^T X + diag lambda) x = beta X^T y`` squared
    ``||b||`` (inf for ``beta = 1e200``: every residual passed at once and the
    coefficients stayed zero); it now runs on the system brought to order one
    and agrees with exact EM."""
    _, X, y = sbl
    kw = {"noise_precision_init": noise, "fit_noise": False, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        em = SparseBayesianLearning(solver="em", **kw).fit(X, y)
        cofem = SparseBayesianLearning(solver="cofem", **kw).fit(X, y)
    assert np.all(np.isfinite(cofem.coef_))
    np.testing.assert_allclose(cofem.coef_, em.coef_, atol=1e-2)
    if noise > 1:
        assert abs(cofem.coef_[0]) > 1


@pytest.mark.parametrize("solver", ["em", "cofem"])
def test_sbl_noise_precision_that_overflows_is_a_clear_error(sbl, solver):
    _, X, y = sbl
    est = SparseBayesianLearning(solver=solver, noise_precision_init=1e300)
    with pytest.raises(ValueError, match="noise_precision_init"):
        est.fit(X * 1e150, y)


def test_dictionary_learning_revalidates_after_set_params(data):
    X, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dl = UnrolledDictionaryLearning(4, max_iter=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="alpha"):
        dl.set_params(alpha=-1.0).transform(X)
    with pytest.raises(ValueError, match="transform_algorithm"):
        dl.set_params(alpha=0.1, transform_algorithm="bogus").transform(X)
    dl.set_params(transform_algorithm="unrolled")
    # a later partial_fit uses the alpha set since
    dl.partial_fit(X)
    dl.set_params(alpha=5.0).partial_fit(X)
    assert dl._state.net.alpha == 5.0


def test_n_jobs_zero_is_a_clear_error(data):
    X, _ = data
    with pytest.raises(ValueError, match="n_jobs"):
        UnrolledDictionaryLearning(4, n_jobs=0).fit(X)


def test_exact_transform_budget_is_a_parameter(data):
    X, _ = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dl = UnrolledDictionaryLearning(
            4, max_iter=2, random_state=0, transform_algorithm="lasso"
        ).fit(X)
    a = dl.transform(X)
    b = dl.set_params(transform_max_iter=5000).transform(X)
    np.testing.assert_allclose(a, b, atol=1e-8)
    with pytest.raises(ValueError, match="transform_max_iter"):
        dl.set_params(transform_max_iter=0).transform(X)


@pytest.mark.parametrize("exponent", [-150, -80, 80, 150])
def test_convolutional_learning_is_scale_equivariant(exponent):
    from skunroll import ConvolutionalDictionaryLearning
    from skunroll.datasets import make_spike_recording

    X, _, _ = make_spike_recording(2, 3000, random_state=0)
    c = 10.0**exponent
    kw = {"max_iter": 3, "tol": 0, "random_state": 0}
    ref = ConvolutionalDictionaryLearning(3, 45, alpha=0.3, **kw).fit(X)
    est = ConvolutionalDictionaryLearning(3, 45, alpha=0.3 * c, **kw).fit(X * c)
    np.testing.assert_allclose(est.kernels_, ref.kernels_, atol=1e-10)
    np.testing.assert_allclose(est.transform(X * c) / c, ref.transform(X), atol=1e-10)


def _mixture():
    from skunroll.datasets import make_dictionary_mixture

    return make_dictionary_mixture(
        300, n_clusters=2, n_components=4, n_features=10, random_state=0
    )[0]


@pytest.mark.parametrize("exponent", [-150, -80, -20, -10, 10, 80, 150])
def test_mixmate_is_scale_equivariant_with_its_temperature(exponent):
    """Energies scale with c**2, so the temperature does too. Below 1e-12 the
    initial atoms used to be random (an absolute floor on the samples' norm)."""
    from skunroll import MixMateClustering

    X = _mixture()
    c = 10.0**exponent
    kw = {"n_components": 4, "max_iter": 3, "random_state": 0}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = MixMateClustering(2, alpha=0.05, **kw).fit(X)
        est = MixMateClustering(2, alpha=0.05 * c, temperature=0.1 * c * c, **kw).fit(
            X * c
        )
    np.testing.assert_array_equal(est.labels_, ref.labels_)
    np.testing.assert_allclose(est.components_, ref.components_, atol=1e-4)


@pytest.mark.parametrize("dtype, scale", [(np.float64, 1e-160), (np.float32, 1e-21)])
def test_mixmate_data_whose_squares_underflow_is_a_clear_error(dtype, scale):
    from skunroll import MixMateClustering

    X = (_mixture()[:20] * scale).astype(dtype)
    kw = {"n_components": 2, "alpha": 0.05 * scale, "max_iter": 1}
    with pytest.raises(ValueError, match="underflows"):
        MixMateClustering(2, temperature=0.1 * scale**2, **kw).fit(X)
    with pytest.raises(ValueError, match="underflows"):
        MixMateClustering(2, temperature=0.1 * scale**2, **kw).partial_fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mm = MixMateClustering(2, **{**kw, "alpha": 0.05}).fit(_mixture()[:20])
    with pytest.raises(ValueError, match="underflows"):
        mm.predict(X)
