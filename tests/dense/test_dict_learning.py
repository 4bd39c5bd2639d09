"""UnrolledDictionaryLearning: recovery, API, priors, likelihoods, safety."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from skunroll import UnrolledDictionaryLearning
from skunroll.datasets import make_dictionary, make_sparse_coded_data
from skunroll.metrics import atom_recovery_errors, recovery_rate


@pytest.fixture(scope="module")
def planted():
    D = make_dictionary(24, 20, random_state=0)
    X, D, Z = make_sparse_coded_data(
        3000, D, n_nonzero_coefs=3, code_distribution="uniform",
        code_range=(1, 2), noise=0.01, random_state=0,
    )  # fmt: skip
    return X, D, Z


def _fit(X, **params):
    base = {"alpha": 0.1, "max_iter": 8, "tol": 0, "random_state": 0}
    return UnrolledDictionaryLearning(**{**base, **params}).fit(X)


def test_recovers_a_planted_dictionary_from_the_data(planted):
    X, D, _ = planted
    dl = _fit(X, n_components=24, max_iter=40, tol=1e-3)
    assert recovery_rate(D, dl.components_) == 1.0
    assert atom_recovery_errors(D, dl.components_).max() < 0.02
    np.testing.assert_allclose(np.linalg.norm(dl.components_, axis=1), 1.0)
    assert dl.gradient_ == "ae-ls" and dl.learning_rate_ == pytest.approx(0.001)
    assert 2 < dl.n_iter_ < 40
    assert dl.n_steps_ == dl.n_iter_ * -(-3000 // 256)
    assert dl.objective_history_.shape == (dl.n_iter_,)
    assert dl.objective_history_[-1] < dl.objective_history_[0]


def _near(D, scale, seed=0):
    """The PUDLE start: the true dictionary plus noise, renormalised."""
    init = D + scale * np.random.default_rng(seed).standard_normal(D.shape)
    return init / np.linalg.norm(init, axis=1, keepdims=True)


@pytest.mark.parametrize("gradient", ["ae-ls", "ae-lasso", "dec"])
def test_every_gradient_refines_a_nearby_dictionary(planted, gradient):
    X, D, _ = planted
    init = _near(D, 0.05)
    dl = _fit(X, n_components=24, gradient=gradient, dict_init=init,
              learning_rate=0.003)  # fmt: skip
    assert recovery_rate(D, dl.components_) == 1.0
    assert (
        atom_recovery_errors(D, dl.components_).mean()
        < atom_recovery_errors(D, init).mean()
    )


def test_ae_ls_is_less_biased_than_dec(planted):
    """Tolooshams & Ba (2022): dec inherits the bias of the forward pass."""
    X, D, _ = planted
    errors = {}
    for gradient in ("ae-ls", "dec"):
        dl = _fit(X, n_components=24, gradient=gradient, n_unroll=15,
                  learning_rate=0.003, dict_init=_near(D, 0.05))  # fmt: skip
        errors[gradient] = atom_recovery_errors(D, dl.components_).mean()
    assert errors["ae-ls"] < 0.5 * errors["dec"]


def test_transform_and_inverse_transform(planted):
    X, D, _ = planted
    dl = _fit(X[:500], n_components=24, max_iter=2)
    codes = dl.transform(X[:10])
    assert codes.shape == (10, 24)
    assert np.array_equal(codes, dl.transform(X[:10]))
    assert dl.inverse_transform(codes).shape == (10, 20)
    assert dl.score(X[:100]) == pytest.approx(
        -np.mean(0.5 * np.sum((X[:100] - dl.inverse_transform(dl.transform(
            X[:100]))) ** 2, axis=1) + 0.1 * np.abs(dl.transform(X[:100])).sum(1))
    )  # fmt: skip
    exact = clone(dl).set_params(transform_algorithm="lasso").fit(X[:500])
    from skunroll import sparse_encode

    np.testing.assert_allclose(
        exact.transform(X[:10]),
        sparse_encode(X[:10], exact.components_, alpha=0.1),
    )
    with pytest.raises(ValueError, match="expected n_components_=24"):
        dl.inverse_transform(codes[:, :5])


def test_partial_fit_streams_minibatches(planted):
    X, D, _ = planted
    dl = UnrolledDictionaryLearning(24, alpha=0.1, random_state=0)
    for _ in range(20):
        for first in range(0, 3000, 256):
            dl.partial_fit(X[first : first + 256])
    assert dl.n_steps_ == 20 * 12
    assert dl.gradient_ == "ae-ls"
    assert recovery_rate(D, dl.components_) == 1.0
    with pytest.raises(ValueError, match="features"):
        dl.partial_fit(X[:5, :10])


def test_fit_is_reproducible_and_independent_of_n_jobs(planted):
    X, _, _ = planted
    a = _fit(X[:800], n_components=12, max_iter=2, n_jobs=1)
    b = _fit(X[:800], n_components=12, max_iter=2, n_jobs=2)
    np.testing.assert_array_equal(a.components_, b.components_)
    c = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(c.transform(X[:5]), a.transform(X[:5]))
    d = clone(a).fit(X[:800])
    np.testing.assert_array_equal(d.components_, a.components_)


def test_float32_is_preserved(planted):
    X, D, _ = planted
    dl = _fit(X.astype(np.float32), n_components=24, max_iter=40, tol=1e-3)
    assert dl.components_.dtype == np.float32
    assert dl.transform(X[:5].astype(np.float32)).dtype == np.float32
    assert recovery_rate(D, dl.components_) == 1.0


def test_input_is_not_modified(planted):
    X, D, _ = planted
    X0, init = X[:300].copy(), D.copy()
    _fit(X0, n_components=24, max_iter=1, dict_init=init)
    np.testing.assert_array_equal(X0, X[:300])
    np.testing.assert_array_equal(init, D)


def test_pipeline_grid_search_over_alpha_and_n_components():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    X = X[:300] / 16.0
    y = y[:300]
    pipe = Pipeline([
        ("dl", UnrolledDictionaryLearning(max_iter=2, tol=0, n_unroll=10,
                                          random_state=0)),
        ("clf", LogisticRegression(max_iter=200)),
    ])  # fmt: skip
    grid = GridSearchCV(
        pipe, {"dl__alpha": [0.05, 0.2], "dl__n_components": [16, 32]}, cv=2
    )
    grid.fit(X, y)
    assert set(grid.best_params_) == {"dl__alpha", "dl__n_components"}
    assert grid.best_score_ > 0.6
    names = grid.best_estimator_[:-1].get_feature_names_out()
    assert names[0] == "unrolleddictionarylearning0"


def test_set_output_pandas(planted):
    import pandas as pd

    X, _, _ = planted
    dl = _fit(X[:300], n_components=5, max_iter=1).set_output(transform="pandas")
    out = dl.transform(X[:4])
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns)[:2] == [
        "unrolleddictionarylearning0", "unrolleddictionarylearning1"
    ]  # fmt: skip


# ----------------------------------------------------------------- priors


def test_priors_shape_the_codes(planted):
    X, _, _ = planted
    X = X[:600]
    codes = _fit(X, n_components=12, max_iter=2, positive_code=True).transform(X)
    assert codes.min() >= 0 and np.mean(codes == 0) > 0.3
    codes = _fit(X, n_components=6, max_iter=2, prior="simplex").transform(X)
    assert codes.min() >= 0
    np.testing.assert_allclose(codes.sum(1), 1.0, rtol=1e-10)
    codes = _fit(X, n_components=12, max_iter=2, prior="group_l1", groups=3,
                 alpha=0.5).transform(X)  # fmt: skip
    blocks = np.abs(codes).reshape(len(X), 4, 3)
    zero_groups = np.all(blocks == 0, axis=2)
    assert zero_groups.any()
    assert np.all(np.any(blocks != 0, axis=2) | zero_groups)
    dl = _fit(X, n_components=12, max_iter=2, prior="two_sided_gaussian",
              alpha=0.01, negative_alpha=100.0)  # fmt: skip
    codes = dl.transform(X)
    assert np.abs(codes[codes < 0]).mean() < 0.1 * codes[codes > 0].mean()
    codes = _fit(X, n_components=12, max_iter=2, prior="ridge").transform(X)
    assert np.mean(codes == 0) < 0.01


def test_deprecated_nonneg_l1_warns_and_equals_positive_code(planted):
    X, _, _ = planted
    X = X[:600]
    new = _fit(X, n_components=12, max_iter=2, positive_code=True)
    with pytest.warns(FutureWarning, match='prior="l1", positive_code=True'):
        old = _fit(X, n_components=12, max_iter=2, prior="nonneg_l1")
    np.testing.assert_array_equal(old.components_, new.components_)
    np.testing.assert_array_equal(old.transform(X), new.transform(X))
    for algorithm in ("lasso", "fista"):
        old.set_params(transform_algorithm=algorithm)
        new.set_params(transform_algorithm=algorithm)
        codes = new.transform(X)
        assert codes.min() >= 0
        np.testing.assert_array_equal(old.transform(X), codes)


@pytest.mark.parametrize("prior", ["ridge", "two_sided_gaussian", "group_l1"])
def test_positive_code_is_refused_by_signed_priors(prior):
    X = np.abs(np.random.default_rng(0).standard_normal((20, 4)))
    dl = UnrolledDictionaryLearning(4, prior=prior, groups=2, positive_code=True)
    with pytest.raises(ValueError, match=f"positive_code=True .*prior='{prior}'"):
        dl.fit(X)
    assert not hasattr(dl, "components_")


def test_positive_code_is_a_no_op_for_the_simplex(planted):
    X, _, _ = planted
    X = X[:300]
    a = _fit(X, n_components=6, max_iter=1, prior="simplex")
    b = _fit(X, n_components=6, max_iter=1, prior="simplex", positive_code=True)
    np.testing.assert_array_equal(a.components_, b.components_)


def test_positive_dict(planted):
    X, _, _ = planted
    dl = _fit(np.abs(X[:500]), n_components=10, max_iter=2, positive_dict=True)
    assert dl.components_.min() >= 0


# ------------------------------------------------------------ likelihoods


def _count_problem(likelihood, n_trials=20, seed=0):
    """Sparse non-negative atoms, 2-sparse codes in [2, 4], counts drawn from
    the exponential-family model with natural parameter ``z D``."""
    rng = np.random.default_rng(seed)
    n_components, n_features, n_samples = 8, 20, 3000
    D = np.zeros((n_components, n_features))
    for k in range(n_components):
        D[k, rng.choice(n_features, 5, replace=False)] = rng.uniform(0.5, 1, 5)
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    Z = np.zeros((n_samples, n_components))
    for i in range(n_samples):
        Z[i, rng.choice(n_components, 2, replace=False)] = rng.uniform(2, 4, 2)
    eta = Z @ D
    if likelihood == "poisson":
        X = rng.poisson(np.exp(eta))
    else:
        X = rng.binomial(n_trials, 1 / (1 + np.exp(-eta)))
    return X.astype(float), D


@pytest.mark.parametrize("likelihood", ["poisson", "binomial"])
def test_matching_likelihood_recovers_count_dictionaries_better(likelihood):
    X, D = _count_problem(likelihood)
    errors = {}
    for lik in (likelihood, "gaussian"):
        dl = UnrolledDictionaryLearning(
            8, alpha=0.1, likelihood=lik, n_trials=20, positive_code=True,
            positive_dict=True, n_unroll=30, max_iter=40, tol=0, random_state=0,
        )  # fmt: skip
        errors[lik] = atom_recovery_errors(D, dl.fit(X).components_).mean()
    assert errors[likelihood] < 0.15
    assert errors["gaussian"] > 2 * errors[likelihood]


def test_count_likelihoods_reject_non_counts():
    X = np.random.default_rng(0).standard_normal((20, 4))
    with pytest.raises(ValueError, match="non-negative integer counts"):
        UnrolledDictionaryLearning(2, likelihood="poisson").fit(X)
    with pytest.raises(ValueError, match=r"\[0, n_trials=3\]"):
        UnrolledDictionaryLearning(2, likelihood="binomial", n_trials=3).fit(
            np.full((5, 4), 4.0)
        )


# ----------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "params,match",
    [
        ({"prior": "group_l1"}, "needs `groups`"),
        ({"prior": "group_l1", "groups": [0, 1]}, "one label per component"),
        ({"likelihood": "poisson", "transform_algorithm": "lasso"}, "Gaussian lasso"),
        ({"prior": "ridge", "transform_algorithm": "omp"}, "Gaussian lasso"),
        ({"positive_code": True, "transform_algorithm": "omp"}, "non-negative"),
        ({"dict_init": np.ones((3, 4))}, "dict_init has 3 atoms"),
        ({"dict_init": np.ones((5, 3))}, "dictionary has 3 features"),
        ({"gradient": "adjoint"}, "gradient"),
        ({"learning_rate": 0.0}, "learning_rate"),
    ],
)
def test_bad_parameters_are_named(params, match):
    X = np.abs(np.random.default_rng(0).standard_normal((20, 4)))
    dl = UnrolledDictionaryLearning(5, **params)
    with pytest.raises(ValueError, match=match):
        dl.fit(X)
    assert not hasattr(dl, "components_")


# ------------------------------------------------------------ safety


def test_overflowing_data_raise_and_leave_nothing_fitted():
    X = 1e200 * np.random.default_rng(0).standard_normal((50, 4))
    dl = UnrolledDictionaryLearning(3, max_iter=1, random_state=0)
    with pytest.warns(RuntimeWarning, match="non-finite"):
        with pytest.raises(FloatingPointError, match="Nothing was fitted"):
            dl.fit(X)
    assert not hasattr(dl, "components_")
    # a fitted estimator's partial_fit on such data is not applied: the
    # dictionary before the last update comes back, finite
    ok = UnrolledDictionaryLearning(3, random_state=0).partial_fit(X * 1e-200)
    previous = ok._state.previous["D"].copy()
    with pytest.warns(RuntimeWarning, match="non-finite"):
        ok.partial_fit(X)
    assert ok.n_steps_ == 1
    np.testing.assert_array_equal(ok.components_, previous)


def test_a_transient_non_finite_step_is_skipped_and_the_rate_halved(
    planted, monkeypatch
):
    """A step whose objective is NaN changes nothing but the learning rate."""
    from skunroll._dense import dict_learning as _dict_learning

    X, _, _ = planted
    real = _dict_learning.forward_backward
    calls = []

    def flaky(*args, **kwargs):
        res = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 2:
            res.grad[0, 0] = np.nan
        return res

    monkeypatch.setattr(_dict_learning, "forward_backward", flaky)
    seen = []
    dl = UnrolledDictionaryLearning(
        24, max_iter=1, tol=0, random_state=0,
        callback=lambda est, info: seen.append(info["components"].copy()),
    )  # fmt: skip
    with pytest.warns(RuntimeWarning, match="previous dictionary restored"):
        dl.fit(X[:1024])
    assert np.all(np.isfinite(dl.components_))
    assert dl.learning_rate_ == pytest.approx(0.015)
    assert dl.n_steps_ == 3  # 4 minibatches, the second one not applied
    assert len(seen) == 3
    assert np.isfinite(dl.objective_history_).all()


def test_convergence_warning_and_tol(planted):
    X, _, _ = planted
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        UnrolledDictionaryLearning(8, max_iter=1, tol=1e-12).fit(X[:300])
    dl = UnrolledDictionaryLearning(8, gradient="dec", max_iter=50, tol=0.5)
    assert dl.fit(X[:300]).n_iter_ == 2
    # "auto" only stops on tol after two epochs of ae-ls
    dl = UnrolledDictionaryLearning(8, max_iter=50, tol=0.5).fit(X[:300])
    assert dl.gradient_ == "ae-ls"
    assert dl.n_iter_ == dl._state.switched_at + 2


def test_verbose_prints_progress(planted, capsys):
    X, _, _ = planted
    _fit(X[:600], n_components=8, max_iter=2, verbose=1)
    out = capsys.readouterr().out
    assert out.count("epoch") == 2 and "objective" in out and " s" in out


def test_callback_sees_every_step_and_can_stop(planted):
    X, _, _ = planted
    seen = []

    def callback(estimator, info):
        seen.append(info)
        assert not info["components"].flags.writeable
        return info["n_steps"] == 3

    dl = _fit(X[:2000], n_components=8, max_iter=5, callback=callback)
    assert [info["n_steps"] for info in seen] == [1, 2, 3]
    assert dl.n_steps_ == 3 and dl.n_iter_ == 1
    assert set(seen[0]) == {"n_iter", "n_steps", "objective", "learning_rate",
                            "elapsed", "components"}  # fmt: skip


def test_dead_atoms_are_redrawn():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2000, 8))
    X[:, -1] = 0.0  # the last feature is never used ...
    init = rng.standard_normal((6, 8))
    init[:, -1] = 0.0
    init[0] = np.eye(8)[-1]  # ... so an atom there is never used either
    dl = UnrolledDictionaryLearning(6, dict_init=init, max_iter=1, tol=0,
                                    random_state=0).fit(X)  # fmt: skip
    assert dl.n_redrawn_ >= 1
    assert abs(dl.components_[0, -1]) < 0.1


def test_rarely_used_near_duplicates_are_flagged():
    from skunroll._dense.dict_learning import _duplicates

    rng = np.random.default_rng(0)
    D = rng.standard_normal((5, 30))
    D[3] = D[1] + 0.1 * rng.standard_normal(30)  # a near-copy of atom 1
    D[4] = D[0] + 0.1 * rng.standard_normal(30)  # a near-copy of atom 0
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    usage = np.array([50, 40, 45, 5, 48])  # atom 3 starves, atom 4 does not
    np.testing.assert_array_equal(_duplicates(D, usage), [3])


def test_grid_search_without_y_uses_score(planted):
    X, _, _ = planted
    grid = GridSearchCV(
        UnrolledDictionaryLearning(max_iter=2, tol=0, n_unroll=10, random_state=0),
        {"n_components": [4, 24]},
        cv=2,
    ).fit(X[:1000])
    # at one alpha, more atoms reconstruct better: a higher (less negative) score
    assert grid.best_params_ == {"n_components": 24}
    assert grid.best_score_ == pytest.approx(
        grid.best_estimator_.score(X[:1000]), rel=0.5
    )
