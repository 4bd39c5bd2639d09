"""LearnedSparseCoder: hand-written gradients against finite differences, the
untrained network against ISTA, training against the exact lasso, and the
scikit-learn API (pipelines, grid search, pickling, bad input)."""

import pickle

import numpy as np
import pytest
from conftest import finite_differences
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skunroll import LearnedSparseCoder, sparse_encode
from skunroll._learned.parametrizations import PARAMETRIZATIONS, alista_weight
from skunroll.datasets import make_dictionary, make_sparse_coded_data

PARAMS = sorted(PARAMETRIZATIONS)


@pytest.fixture(scope="module")
def problem():
    D = make_dictionary(24, 12, random_state=0)
    X, _, _ = make_sparse_coded_data(
        400, D, n_nonzero_coefs=3, noise=0.02, random_state=1
    )
    return X, D


def lasso_objective(X, D, Z, alpha):
    R = X - Z @ D
    return float(np.mean(0.5 * np.sum(R * R, axis=1) + alpha * np.abs(Z).sum(1)))


@pytest.mark.parametrize("parametrization", PARAMS)
def test_gradients_match_finite_differences(parametrization):
    rng = np.random.default_rng(0)
    D = rng.standard_normal((6, 4))
    X = rng.standard_normal((7, 4))
    est = LearnedSparseCoder(
        D, n_layers=3, parametrization=parametrization, alpha=0.3,
        validation_fraction=0.0, pretrain=None,
    )  # fmt: skip
    assert est._initial_state(X, D).phase == parametrization
    state = est._initial_state(X, D)
    # move away from ISTA, where every layer is the same
    for p in state.params.values():
        p *= 1.0 + 0.2 * rng.standard_normal(p.shape)
    idx = np.arange(X.shape[0])
    grads = est.gradients(state, X, idx).grads
    for name, param in state.params.items():
        original = param.copy()

        def total(value, name=name):
            state.params[name][...] = value
            return est._objective(state, X) * X.shape[0]

        expected = finite_differences(total, original, h=1e-7)
        state.params[name][...] = original
        np.testing.assert_allclose(grads[name], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("parametrization", ["step", "coupled", "lista"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_untrained_network_is_ista(problem, parametrization, dtype):
    X, D = problem
    X = X.astype(dtype)
    est = LearnedSparseCoder(D, n_layers=7, parametrization=parametrization, alpha=0.05)
    state = est._initial_state(X, D)
    est._set_fitted(state)  # the untrained network as a fitted estimator
    est.n_features_in_ = X.shape[1]
    Z = est.transform(X)
    assert Z.dtype == dtype
    Z_ista = sparse_encode(X, D, algorithm="ista", alpha=0.05, max_iter=7, tol=0)
    rtol = 1e-4 if dtype == np.float32 else 1e-10
    np.testing.assert_allclose(Z, Z_ista, rtol=rtol, atol=rtol * np.abs(Z).max())


@pytest.mark.parametrize("parametrization", PARAMS)
def test_untrained_network_follows_the_scale_of_the_dictionary(
    problem, parametrization
):
    """The lasso on (c D, c alpha) has the codes of (D, alpha) divided by c:
    so do the untrained networks, ALISTA's threshold included; the steps are
    reported in the units of D (1 / D**2 for ISTA's, none for ALISTA's)."""
    X, D = problem
    kw = dict(n_layers=4, parametrization=parametrization, max_iter=1,
              optimizer="adam", learning_rate=1e-12, pretrain=None)  # fmt: skip
    ref = LearnedSparseCoder(D, alpha=0.05, **kw).fit(X)
    for c in (10.0, 2.0**20):
        est = LearnedSparseCoder(D * c, alpha=0.05 * c, **kw).fit(X)
        np.testing.assert_allclose(
            est.transform(X) * c, ref.transform(X), rtol=1e-7, atol=1e-10
        )
        if ref.steps_ is not None:
            power = -2 if parametrization == "step" else 0
            np.testing.assert_allclose(est.steps_, ref.steps_ * c**power, rtol=1e-7)


def test_alista_weight_is_analytic():
    """diag(W D^T) = 1 and W minimises sum_j (w_i . d_j)^2 under it: any
    feasible perturbation increases the sum."""
    rng = np.random.default_rng(0)
    D = rng.standard_normal((20, 8))
    W = alista_weight(D)
    np.testing.assert_allclose(np.einsum("ij,ij->i", W, D), 1.0)
    cost = np.sum((W @ D.T) ** 2, axis=1)
    for _ in range(20):
        E = rng.standard_normal(W.shape)
        E -= (np.einsum("ij,ij->i", E, D) / np.sum(D * D, 1))[:, None] * D
        assert np.all(np.sum(((W + 1e-3 * E) @ D.T) ** 2, axis=1) >= cost)


@pytest.mark.parametrize("parametrization", PARAMS)
def test_training_lowers_the_held_out_objective(problem, parametrization):
    X, D = problem
    X_train, X_test = X[:300], X[300:]
    alpha = 0.05
    kw = dict(n_layers=4, parametrization=parametrization, alpha=alpha)
    untrained = LearnedSparseCoder(
        D, max_iter=1, optimizer="adam", learning_rate=1e-12, **kw
    ).fit(X_train)
    est = LearnedSparseCoder(D, max_iter=30, batch_size=32, random_state=0, **kw)
    est = est.fit(X_train)
    Z_star = sparse_encode(X_test, D, algorithm="lasso", alpha=alpha)
    f_star = lasso_objective(X_test, D, Z_star, alpha)
    gap_before = -untrained.score(X_test) - f_star
    gap_after = -est.score(X_test) - f_star
    assert gap_after >= -1e-9  # F* is the minimum
    assert gap_after < 0.85 * gap_before
    # score is minus the objective of the codes transform returns
    Z = est.transform(X_test)
    assert est.score(X_test) == pytest.approx(-lasso_objective(X_test, D, Z, alpha))


def test_learned_steps_grow_past_ista_and_differ_by_layer():
    """At high lambda the supports are small: the steps grow from ISTA's 1/L
    towards 1/L_S of the supports (Ablin et al. 2019), layer by layer (the
    line search moves each by its own gradient; Adam moves all alike)."""
    rng = np.random.default_rng(0)
    D = rng.standard_normal((64, 16))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    X = rng.standard_normal((600, 64)) @ D
    X /= np.abs(X @ D.T).max(axis=1, keepdims=True)
    est = LearnedSparseCoder(D, n_layers=6, alpha=0.8, max_iter=8, random_state=0).fit(
        X
    )
    relative = est.steps_ * est.lipschitz_
    assert np.all(relative > 1.5)
    assert np.ptp(relative) > 0.01 * relative.mean()


def test_learned_steps_are_exposed(problem):
    X, D = problem
    est = LearnedSparseCoder(D, n_layers=5, alpha=0.05, max_iter=3, random_state=0)
    est.fit(X)
    assert est.steps_.shape == (5,)
    np.testing.assert_allclose(est.thresholds_, est.alpha_ * est.steps_)
    assert est.validation_history_.shape == (est.n_iter_,)
    assert 0 <= est.best_iter_ <= est.n_iter_
    lista = LearnedSparseCoder(
        D, n_layers=2, parametrization="lista", alpha=0.05, max_iter=2
    ).fit(X)
    assert lista.steps_ is None
    assert lista.thresholds_.shape == (2, D.shape[0])
    assert lista.weights_["code"].shape == (2, D.shape[0], D.shape[0])


@pytest.mark.parametrize("parametrization", ["coupled", "lista"])
def test_pretraining_steps_then_expanding(problem, parametrization):
    """pretrain="auto": learned steps first, then (once they stall) the full
    layers, continuing from the steps' best; never worse on held-out rows
    than the step network it started from."""
    X, D = problem
    kw = dict(n_layers=3, alpha=0.05, random_state=0, n_iter_no_change=1)
    steps = LearnedSparseCoder(D, max_iter=40, **kw).fit(X)
    est = LearnedSparseCoder(D, parametrization=parametrization, max_iter=40, **kw).fit(
        X
    )
    assert 0 < est.pretrain_iter_ < est.n_iter_
    assert est.validation_history_[: est.pretrain_iter_] == pytest.approx(
        steps.validation_history_[: est.pretrain_iter_]
    )
    assert est.validation_history_[est.best_iter_ - 1] <= min(
        steps.validation_history_[: est.pretrain_iter_]
    )
    # without pretraining the first epoch already trains the full layers
    plain = LearnedSparseCoder(
        D, parametrization=parametrization, max_iter=2, pretrain=None, **kw
    ).fit(X)
    assert plain.pretrain_iter_ == 0
    with pytest.raises(ValueError, match="pretrain='steps'"):
        LearnedSparseCoder(D, parametrization="alista", pretrain="steps").fit(X)


def test_relative_alpha(problem):
    X, D = problem
    est = LearnedSparseCoder(D, alpha=0.1, relative_alpha=True, max_iter=1).fit(X)
    assert est.alpha_ == pytest.approx(0.1 * np.abs(X @ D.T).max())
    with pytest.raises(ValueError, match="lambda_max"):
        LearnedSparseCoder(D, relative_alpha=True).fit(np.zeros((5, D.shape[1])))


def test_scale_equivariance(problem):
    """c X with c alpha: the same network, c times the codes (c a power of
    two: bit for bit; otherwise to rounding)."""
    X, D = problem
    kw = dict(n_layers=3, max_iter=3, random_state=0)
    ref = LearnedSparseCoder(D, alpha=0.05, **kw).fit(X)
    for c in (2.0**-400, 1e-150, 1e150):
        est = LearnedSparseCoder(D, alpha=0.05 * c, **kw).fit(X * c)
        np.testing.assert_allclose(est.steps_, ref.steps_, rtol=1e-7)
        np.testing.assert_allclose(
            est.transform(X * c) / c, ref.transform(X), rtol=1e-6, atol=1e-9
        )


def test_pipeline_grid_search_and_pickle(problem):
    X, D = problem
    search = GridSearchCV(
        LearnedSparseCoder(D, max_iter=2, random_state=0),
        {"n_layers": [1, 3], "alpha": [0.05, 0.2]},
        cv=2,
    ).fit(X)
    assert search.best_params_["n_layers"] == 3
    pipe = make_pipeline(
        StandardScaler(with_std=False),
        LearnedSparseCoder(D, n_layers=2, max_iter=2, random_state=0),
    ).fit(X)
    Z = pipe.transform(X)
    again = pickle.loads(pickle.dumps(pipe))
    np.testing.assert_array_equal(again.transform(X), Z)


def test_bad_input(problem):
    X, D = problem
    with pytest.raises(ValueError, match="dictionary has 12 features"):
        LearnedSparseCoder(D).fit(X[:, :5])
    with pytest.raises(ValueError, match="alpha"):
        LearnedSparseCoder(D, alpha=0.0).fit(X)
    with pytest.raises(ValueError, match="parametrization"):
        LearnedSparseCoder(D, parametrization="bogus").fit(X)
    with pytest.raises(ValueError, match="NaN"):
        LearnedSparseCoder(D).fit(np.where(X > 1, np.nan, X))
    bad = D.copy()
    bad[3] = 0.0
    with pytest.raises(ValueError, match="all-zero atoms"):
        LearnedSparseCoder(bad).fit(X)
    est = LearnedSparseCoder(D, max_iter=1).fit(X)
    with pytest.raises(ValueError, match="12 features"):
        est.transform(X[:, :5])


def test_failed_fit_leaves_nothing(problem):
    """A fit that raises leaves a fresh coder unfitted and a fitted one with
    every old attribute (the package's atomic fits)."""
    X, D = problem

    def boom(estimator, info):
        raise RuntimeError("stop")

    fresh = LearnedSparseCoder(D, max_iter=3, callback=boom)
    with pytest.raises(RuntimeError):
        fresh.fit(X)
    with pytest.raises(NotFittedError):
        fresh.transform(X)
    assert not hasattr(fresh, "n_features_in_")
    est = LearnedSparseCoder(D, max_iter=3, random_state=0).fit(X)
    before = {k: v for k, v in est.__dict__.items()}

    est.set_params(callback=boom)
    with pytest.raises(RuntimeError):
        est.fit(X * 2)
    assert est.__dict__.keys() == before.keys()
    for k, v in before.items():
        if k != "callback":  # the parameter set_params changed
            assert est.__dict__[k] is v
