"""Bounded time: every solver and trainer stops within its ``max_iter`` budget
on pathological inputs, under a time limit enforced by the test (a subprocess
killed past it), and a ConvergenceWarning names ``max_iter`` whenever the
budget ran out. Run as a script (``python tests/test_robustness_budget.py
FAMILY``) it prints one JSON line per case."""

import json
import os
import re
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest

FAMILIES = ["sbl-em", "sbl-cofem", "dense", "mixmate", "conv"]
TIMEOUT = 120  # s; a correct run takes a few seconds (plus the import)


# ------------------------------------------------------------ the cases


def _sbl_cases(solver):
    from skunroll import SparseBayesianLearning

    rng = np.random.default_rng(0)
    X = rng.standard_normal((20, 8))
    y = X @ np.array([1.0, 0, 0, -2.0, 0, 0, 0.5, 0]) + 0.01 * rng.standard_normal(20)
    wide = rng.standard_normal((5, 200))
    data = {
        "zero y": (X, np.zeros(20)),
        "y 1e150": (X, y * 1e150),
        "y 1e-150": (X, y * 1e-150),
        "X 1e150": (X * 1e150, y),
        "X 1e-150": (X * 1e-150, y),
        "duplicated columns": (X[:, [0, 0, 1, 1, 2, 3, 3, 3]], y),
        "n_features >> n_samples": (wide, wide[:, 7] - wide[:, 150]),
        "one sample": (X[:1], y[:1]),
        "constant X": (np.ones((20, 8)), y),
    }
    params = {
        "defaults": {},
        "max_iter=1": {"max_iter": 1},
        "max_iter=3 tol=0": {"max_iter": 3, "tol": 0.0},
        "noise 1e-300": {"noise_precision_init": 1e-300},
        "noise 1e300": {"noise_precision_init": 1e300},
        "fixed noise 1e300": {"noise_precision_init": 1e300, "fit_noise": False},
        "threshold_lambda 1e-300": {"threshold_lambda": 1e-300},
        "threshold_lambda 1e300": {"threshold_lambda": 1e300, "max_iter": 5},
    }
    for dname, (Xd, yd) in data.items():
        for pname, p in params.items():
            est = SparseBayesianLearning(solver=solver, random_state=0, **p)
            yield (
                f"{dname}, {pname}",
                est,
                (Xd, yd),
                lambda e: not e.history_["converged"],
            )


def _trained_cases(family):
    from skunroll import (
        ConvolutionalDictionaryLearning,
        MixMateClustering,
        UnrolledDictionaryLearning,
    )

    rng = np.random.default_rng(0)
    if family == "conv":
        X = rng.standard_normal((3, 120))
        make = {
            "max_iter=2": lambda: ConvolutionalDictionaryLearning(
                2, 8, max_iter=2, tol=1e-3, random_state=0
            ),
            "max_iter=1 alpha=0": lambda: ConvolutionalDictionaryLearning(
                2, 8, alpha=0.0, max_iter=1, tol=1e-3, random_state=0
            ),
        }
    elif family == "dense":
        X = rng.standard_normal((30, 6))
        make = {
            "max_iter=2": lambda: UnrolledDictionaryLearning(
                4, max_iter=2, tol=1e-3, batch_size=8, random_state=0
            ),
            "max_iter=1 lasso": lambda: UnrolledDictionaryLearning(
                4, max_iter=1, tol=1e-3, random_state=0, transform_algorithm="lasso"
            ),
        }
    else:
        X = rng.standard_normal((30, 6))
        make = {
            "max_iter=2": lambda: MixMateClustering(
                2, n_components=2, max_iter=2, tol=1e-3, batch_size=8, random_state=0
            ),
            "max_iter=1 tol=0": lambda: MixMateClustering(
                2, n_components=2, max_iter=1, random_state=0
            ),
        }
    data = {
        "typical": X,
        "constant": np.full_like(X, 3.0),
        "zero": np.zeros_like(X),
        "1e150": X * 1e150,
        "1e-150": X * 1e-150,
        "one sample": X[:1],
    }
    for dname, Xd in data.items():
        for mname, m in make.items():
            yield f"{dname}, {mname}", m(), (Xd,), _trainer_budget_ran_out


def _trainer_budget_ran_out(est):
    """All ``max_iter`` epochs ran, no rule stopped them, and ``tol > 0``
    (``tol=0`` asks for exactly ``max_iter`` epochs: no warning then)."""
    trainer = est._trainer()
    return (
        est.n_iter_ >= trainer.max_iter and not est._state.stopped and trainer.tol > 0
    )


def run_family(family):
    """Fit every case of ``family``; one JSON line each: the outcome (``ok``
    or the error), whether the budget ran out, the warnings, the time."""
    from sklearn.exceptions import ConvergenceWarning

    cases = (
        _sbl_cases(family[4:]) if family.startswith("sbl") else _trained_cases(family)
    )
    for name, est, args, budget_hit in cases:
        start = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                est.fit(*args)
                outcome, hit = "ok", bool(budget_hit(est))
            except (ValueError, FloatingPointError) as exc:
                outcome, hit = f"{type(exc).__name__}: {exc}", False
        record = {
            "case": name,
            "outcome": outcome,
            "hit": hit,
            "convergence": [
                str(w.message) for w in caught if w.category is ConvergenceWarning
            ],
            "params": sorted(est.get_params()),
            "seconds": round(time.perf_counter() - start, 3),
        }
        print(json.dumps(record), flush=True)


# ------------------------------------------------------------ the test


@pytest.mark.parametrize("family", FAMILIES)
def test_every_fit_stops_within_its_budget(family):
    """Each pathological case fits or raises a clear ValueError or
    FloatingPointError (any other exception fails the subprocess), the whole
    family within ``TIMEOUT`` (a hang is killed), and a fit whose ``max_iter``
    ran out warns, naming ``max_iter``."""
    out = subprocess.run(
        [sys.executable, __file__, family],
        timeout=TIMEOUT,
        check=True,
        capture_output=True,
        text=True,
        env=os.environ,
    ).stdout
    records = [json.loads(line) for line in out.splitlines()]
    assert len(records) >= 12
    for r in records:
        if r["hit"]:
            assert any("max_iter=" in m for m in r["convergence"]), r
        for message in r["convergence"]:  # each names a parameter to change
            assert any(re.search(rf"\b{p}\b", message) for p in r["params"]), r
        if r["outcome"] != "ok":  # a clear error, naming what to change
            assert re.search(r"\bX\b|n_samples|noise_precision_init", r["outcome"]), r
    assert any(r["hit"] for r in records)  # the budget did run out somewhere


if __name__ == "__main__":
    run_family(sys.argv[1])
