"""The recovery-evaluation API: problems, the phase-diagram runner, the plot."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from joblib import parallel_config
from numpy.testing import assert_allclose, assert_array_equal
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

from skunroll import UnrolledDictionaryLearning
from skunroll.metrics import mutual_coherence
from skunroll.recovery import (
    TABLE_COLUMNS,
    make_coherent_dictionary,
    phase_grid,
    plot_phase_diagram,
    recovery_phase_diagram,
    recovery_regime,
    sparsity_bound,
)

TINY = {
    "n_features": 8,
    "n_components": 6,
    "sparsities": (1, 2),
    "coherences": (0.3, 0.6),
    "n_samples": 60,
    "n_seeds": 2,
}


def oracle(X, D_true, random_state):
    """Reference method: the planted dictionary itself."""
    return D_true


class RandomDictionary(BaseEstimator):
    """A 'learner' that ignores the data: random unit atoms."""

    def __init__(self, n_components=None, random_state=None):
        self.n_components = n_components
        self.random_state = random_state

    def fit(self, X, y=None):
        rng = np.random.default_rng(self.random_state)
        D = rng.standard_normal((self.n_components, X.shape[1]))
        self.components_ = D / np.linalg.norm(D, axis=1, keepdims=True)
        return self


class Failing(BaseEstimator):
    def fit(self, X, y=None):
        raise RuntimeError("boom")


class WritesX(BaseEstimator):
    def fit(self, X, y=None):
        X[0, 0] = 1.0
        self.components_ = np.eye(6, X.shape[1])
        return self


# -- problems ------------------------------------------------------------------


@pytest.mark.parametrize("coherence", [0.15, 0.3, 0.6, 0.9])
def test_coherent_dictionary_has_the_coherence_on_every_pair(coherence):
    D = make_coherent_dictionary(48, 32, coherence, random_state=0)
    assert D.shape == (48, 32)
    assert_allclose(np.linalg.norm(D, axis=1), 1.0)
    assert_allclose(np.einsum("ij,ij->i", D[0::2], D[1::2]), coherence)
    assert mutual_coherence(D) == pytest.approx(coherence, abs=1e-12)


def test_coherent_dictionary_is_seeded_and_checks_the_bound():
    a = make_coherent_dictionary(12, 6, 0.5, random_state=3)
    assert_array_equal(a, make_coherent_dictionary(12, 6, 0.5, random_state=3))
    # Welch bound of 12 atoms in dimension 6: sqrt(6 / 66) = 0.3015
    with pytest.raises(ValueError, match="coherence=0.2 is below the Welch"):
        make_coherent_dictionary(12, 6, 0.2)


def test_coherent_dictionary_warns_when_pairs_cannot_be_separated():
    # 40 atoms in dimension 8: orthoplex bound 1 / sqrt(8) = 0.354
    with pytest.warns(ConvergenceWarning, match="did not bring"):
        D = make_coherent_dictionary(40, 8, 0.36, max_iter=0, random_state=0)
    assert mutual_coherence(D) > 0.36


def test_sparsity_bounds():
    assert sparsity_bound(0.5, 10, rule="uniqueness") == pytest.approx(1.5)
    assert sparsity_bound(0.5, 10) == pytest.approx(1 / (0.5 * np.log(10)))
    bounds = sparsity_bound([0.2, 0.4], 32)
    assert bounds.shape == (2,) and bounds[0] == pytest.approx(2 * bounds[1])


@pytest.mark.parametrize("name", ["incoherent", "noisy"])
def test_regimes_are_valid_diagram_settings(name):
    regime = recovery_regime(name, n_features=32, n_components=48)
    assert len(regime["coherences"]) == 6 and max(regime["coherences"]) == 0.9
    assert min(regime["sparsities"]) == 1 and max(regime["sparsities"]) == 8
    assert (regime["noise"] > 0) == (name == "noisy")
    table = recovery_phase_diagram({"oracle": oracle}, n_features=32,
                                   n_components=48, n_samples=20, n_seeds=1,
                                   **regime)  # fmt: skip
    assert len(table["method"]) == 36


# -- the runner ----------------------------------------------------------------


def test_table_schema_and_order():
    table = recovery_phase_diagram(
        {"oracle": oracle, "random": RandomDictionary()}, **TINY
    )
    assert list(table) == list(TABLE_COLUMNS)
    n_rows = 2 * 2 * 2 * 2  # methods x sparsities x coherences x seeds
    assert all(len(column) == n_rows for column in table.values())
    assert table["method"].tolist() == ["oracle"] * 8 + ["random"] * 8
    assert table["coherence_target"][:8].tolist() == [0.3] * 4 + [0.6] * 4
    assert table["n_nonzero_coefs"][:4].tolist() == [1, 1, 2, 2]
    assert table["seed"][:4].tolist() == [0, 1, 0, 1]
    assert table["n_nonzero_coefs"].dtype == np.int64
    assert table["recovery_rate"].dtype == np.float64
    assert_allclose(table["coherence"], table["coherence_target"])
    assert np.all(table["rip_constant"][table["n_nonzero_coefs"] == 1] < 1e-12)
    assert np.all(table["rip_constant"][table["n_nonzero_coefs"] == 2] > 0)
    assert set(table["error"].tolist()) == {""}
    assert np.all(table["fit_time"] >= 0)
    assert set(table["n_features"].tolist()) == {8}
    # every method sees the same dictionary
    assert_array_equal(table["coherence"][:8], table["coherence"][8:])


def test_planted_dictionary_scores_one_and_random_scores_zero():
    table = recovery_phase_diagram(
        {"oracle": oracle, "random": RandomDictionary()},
        n_features=32, n_components=48, sparsities=(2,), coherences=(0.3,),
        n_samples=50, n_seeds=3,
    )  # fmt: skip
    is_oracle = table["method"] == "oracle"
    assert_array_equal(table["recovery_rate"][is_oracle], 1.0)
    assert np.all(table["median_error"][is_oracle] < 1e-6)
    assert np.all(table["recovery_rate"][~is_oracle] <= 0.05)
    assert np.all(table["median_error"][~is_oracle] > 0.5)


def test_a_failing_method_gives_nan_rows_and_the_others_run():
    table = recovery_phase_diagram(
        [("fails", Failing()), ("writes X", WritesX()), ("oracle", oracle)], **TINY
    )
    for name, message in [("fails", "RuntimeError: boom"), ("writes X", "read-only")]:
        rows = table["method"] == name
        assert np.all(np.isnan(table["recovery_rate"][rows]))
        assert np.all(np.isnan(table["median_error"][rows]))
        assert all(message in error for error in table["error"][rows])
    assert_array_equal(table["recovery_rate"][table["method"] == "oracle"], 1.0)


def test_methods_are_cloned_and_get_the_seed_and_atom_count():
    seen = []

    class Recorder(RandomDictionary):
        def fit(self, X, y=None):
            seen.append((self.n_components, self.random_state))
            return super().fit(X)

    method = Recorder()
    recovery_phase_diagram({"r": method}, **TINY)
    assert not hasattr(method, "components_")  # the caller's is not fitted
    assert method.n_components is None and method.random_state is None
    assert {n for n, _ in seen} == {6}
    assert len({seed for _, seed in seen}) == len(seen) == 8  # a seed per run
    fixed = RandomDictionary(n_components=3)  # an explicit count is kept
    table = recovery_phase_diagram({"three atoms": fixed}, **TINY)
    assert np.all(table["recovery_rate"] <= 0.5)


def test_seeded_and_independent_of_n_jobs():
    methods = {"random": RandomDictionary(), "oracle": oracle}
    one = recovery_phase_diagram(methods, **TINY, random_state=5)
    # threads: the same code path as processes, without their start-up time
    with parallel_config(backend="threading"):
        two = recovery_phase_diagram(methods, **TINY, random_state=5, n_jobs=2)
    other = recovery_phase_diagram(methods, **TINY, random_state=6)
    for column in ("median_error", "coherence", "rip_constant"):
        assert_array_equal(one[column], two[column])
    assert not np.array_equal(one["median_error"], other["median_error"])


def test_verbose_prints_progress(capsys):
    recovery_phase_diagram({"oracle": oracle}, **TINY, verbose=1)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 8
    assert lines[-1].startswith("[8/8] ") and "oracle 1.00" in lines[-1]


def test_as_frame():
    import pandas as pd  # in the test extra

    frame = recovery_phase_diagram({"oracle": oracle}, **TINY, as_frame=True)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == list(TABLE_COLUMNS) and len(frame) == 8
    sparsities, coherences, grid = phase_grid(frame, "oracle")
    assert_array_equal(grid, np.ones((2, 2)))


def test_unrolled_dictionary_learning_end_to_end():
    est = UnrolledDictionaryLearning(alpha=0.1, gradient="dec", max_iter=10,
                                     batch_size=64)  # fmt: skip
    table = recovery_phase_diagram(
        {"dec": est, "random": RandomDictionary()}, n_features=16,
        n_components=12, sparsities=(2,), coherences=(0.3, 0.6), n_samples=1000,
        n_seeds=1,
    )  # fmt: skip
    learned = table["method"] == "dec"
    assert np.all(table["recovery_rate"][learned] >= 0.9), table["recovery_rate"]
    assert np.all(table["recovery_rate"][~learned] <= 0.1)
    assert np.all(table["fit_time"] > 0)


# -- argument validation -------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"methods": {}}, "methods must be a non-empty"),
        ({"methods": {"x": 3}}, "method 'x' must be an estimator"),
        ({"methods": [("a", oracle), ("a", oracle)]}, "must be distinct"),
        ({"methods": {1: oracle}}, "names must be strings"),
        ({"sparsities": ()}, "sparsities must be a non-empty"),
        ({"sparsities": (0, 1)}, r"sparsities .* in \[1, 6\]"),
        ({"sparsities": (7,)}, r"sparsities .* in \[1, 6\]"),
        ({"sparsities": (1.5,)}, "sparsities must be a non-empty sequence of int"),
        ({"sparsities": (1, 1)}, "must not repeat"),
        # Welch bound of 12 atoms in dimension 8: sqrt(4 / 88) = 0.213
        ({"coherences": (0.2,), "n_components": 12}, r"coherences .* in \[0.213"),
        ({"coherences": (1.0,)}, "coherences must be below 1"),
        ({"coherences": (np.nan,)}, "coherences must be a non-empty"),
    ],
)
def test_invalid_arguments_name_the_argument(kwargs, match):
    arguments = {**TINY, "methods": {"oracle": oracle}, **kwargs}
    with pytest.raises(ValueError, match=match):
        recovery_phase_diagram(**arguments)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(-3, 12), min_size=1, max_size=4))
def test_sparsities_are_accepted_exactly_when_valid(sparsities):
    valid = all(1 <= s <= 6 for s in sparsities) and len(set(sparsities)) == len(
        sparsities
    )
    arguments = {**TINY, "sparsities": sparsities, "coherences": (0.6,)}
    if valid:
        table = recovery_phase_diagram({"o": oracle}, **{**arguments, "n_seeds": 1})
        assert sorted(set(table["n_nonzero_coefs"].tolist())) == sorted(sparsities)
    else:
        with pytest.raises(ValueError, match="sparsities"):
            recovery_phase_diagram({"o": oracle}, **arguments)


def test_phase_grid_aggregates_and_checks():
    table = {
        "method": ["a"] * 4 + ["b"],
        "n_nonzero_coefs": [1, 1, 2, 2, 1],
        "coherence_target": [0.3] * 5,
        "recovery_rate": [1.0, 0.0, np.nan, np.nan, 0.5],
    }
    s, mu, grid = phase_grid(table, "a", aggregate="max")
    assert s.tolist() == [1, 2] and mu.tolist() == [0.3]
    assert grid[0, 0] == 1.0 and np.isnan(grid[1, 0])
    with pytest.raises(ValueError, match="method 'c' is not in the table"):
        phase_grid(table, "c")
    with pytest.raises(ValueError, match="no column 'fit_time'"):
        phase_grid(table, "a", value="fit_time")
    with pytest.raises(ValueError, match="aggregate must be one of"):
        phase_grid(table, "a", aggregate="sum")


# -- the plot ------------------------------------------------------------------


def test_plot_phase_diagram_draws_one_panel_per_method():
    import matplotlib  # in the test extra: a missing install fails, not skips

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = recovery_phase_diagram(
        {"oracle": oracle, "random": RandomDictionary()}, **TINY
    )
    fig = plot_phase_diagram(table)
    panels = [ax for ax in fig.axes if ax.get_title()]
    assert [ax.get_title() for ax in panels] == ["oracle", "random"]
    image = panels[0].get_images()[0].get_array()
    assert_array_equal(image, np.ones((2, 2)))
    assert len(panels[0].get_lines()) == 2  # the two theory lines
    plt.close(fig)


def test_plot_phase_diagram_without_matplotlib(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    table = {"method": ["a"], "n_nonzero_coefs": [1], "coherence_target": [0.3],
             "recovery_rate": [1.0], "n_features": [8]}  # fmt: skip
    with pytest.raises(ImportError, match="needs matplotlib"):
        plot_phase_diagram(table)
