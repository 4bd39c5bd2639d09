"""Dictionary recovery against time: skunroll vs SPAMS vs scikit-learn.

The problem: 20,000 samples, 64 features, a 128-atom unit-norm Gaussian
dictionary (``make_dictionary(128, 64, random_state=0)``), codes with exactly 4
non-zeros of random sign and magnitude uniform in [1, 2], noise 0.01
(``make_sparse_coded_data(..., code_distribution="uniform", random_state=0)``).
Every method learns 128 atoms with the lasso penalty 0.1 (per sample
``0.5 ||x - z D||^2 + 0.1 ||z||_1`` with unit-norm atoms: SPAMS' ``lambda1``,
scikit-learn's ``alpha`` and skunroll's ``alpha`` all mean this), minibatches
of 256 and 2 threads, in this process and on the same data. An atom is
recovered when its error (sine of the angle to its matched learned atom,
:func:`skunroll.metrics.atom_recovery_errors`) is below 0.1; the rate is
:func:`skunroll.metrics.recovery_rate`.

Each method is run with an increasing budget (SPAMS iterations, epochs for the
others) until the median rate over seeds reaches 95 %; after the first budget
that reaches it, one budget between it and the previous one is tried as well.
Times are medians over seeds (one run per seed and budget). "time to 95 %" is
the smallest median time of a budget whose median rate is at least 95 %.
skunroll's numba kernels are compiled by a small fit before any timing.

Run: ``python benchmarks/bench_dictionary_recovery.py [--seeds S] [--quick]
[--full]`` (SPAMS comes from ``pip install skunroll[bench]``; it is skipped if
it does not import).
"""

import argparse
import math
import os
import platform
import time
import warnings

import numpy as np
import sklearn
from sklearn.decomposition import MiniBatchDictionaryLearning
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

from skunroll.datasets import make_dictionary, make_sparse_coded_data
from skunroll.metrics import recovery_rate

try:
    import spams
except ImportError:  # pragma: no cover - optional competitor
    spams = None

# The estimator is under development; this guard goes once it has landed.
try:
    from skunroll import UnrolledDictionaryLearning
except ImportError:  # pragma: no cover
    UnrolledDictionaryLearning = None

N_JOBS = 2
ALPHA = 0.1  # lasso penalty, per sample: 0.5 ||x - z D||^2 + ALPHA ||z||_1
BATCH_SIZE = 256
THRESHOLD = 0.1  # an atom is recovered when its error is below this
TARGET = 0.95  # fraction of atoms to recover

PROBLEM = {
    "n_samples": 20_000,
    "n_features": 64,
    "n_components": 128,
    "n_nonzero_coefs": 4,
    "code_range": (1.0, 2.0),
    "noise": 0.01,
}

# Everything below is meant to be tuned; ``max_iter`` / ``iter`` and the seed
# are set per run.
SKUNROLL_PARAMS = {
    "n_components": PROBLEM["n_components"],
    "alpha": ALPHA,
    "batch_size": BATCH_SIZE,
    "n_jobs": N_JOBS,
}
SKUNROLL_EPOCHS = (1, 2, 3, 5, 8, 13, 21, 34, 55)

# SPAMS ``trainDL`` (Mairal et al.'s online algorithm). mode=2 is
# ``spams.PENALTY``: min 0.5 ||x - D a||^2 + lambda1 ||a||_1 + lambda2/2 ||a||^2
# per sample (column), with ||d_j||_2 <= 1 (modeD=0, the default); lambda2 keeps
# its default 1e-9, negligible. So lambda1 = ALPHA is the same objective.
# The initial dictionary is left to SPAMS (random samples of X, normalised).
SPAMS_PARAMS = {
    "K": PROBLEM["n_components"],
    "lambda1": ALPHA,
    "mode": 2,
    "batchsize": BATCH_SIZE,
    "numThreads": N_JOBS,
    "verbose": False,
}
SPAMS_ITERS = (100, 200, 400, 800, 1600, 3200, 6400, 12800)

# scikit-learn minimises 0.5 ||X - U V||_Fro^2 + alpha ||U||_1,1 with
# ||V_k||_2 <= 1, i.e. per sample 0.5 ||x - z D||^2 + alpha ||z||_1: alpha =
# ALPHA is SPAMS' lambda1 (internally it divides alpha by n_features for
# ``Lasso``, whose loss is divided by n_features too). fit_algorithm="cd":
# one epoch takes about 11 s here against about 150 s with "lars". n_jobs=None
# (BLAS on 2 threads): n_jobs=2 sends every minibatch to joblib workers and
# made an epoch 2.4x slower. Early stopping is off (tol=0,
# max_no_improvement=None) so that a run does all its epochs; then a run with
# max_iter=k is exactly the first k epochs of a longer run, so one run is
# scored after every epoch by its callback (scoring time excluded).
SKLEARN_PARAMS = {
    "n_components": PROBLEM["n_components"],
    "alpha": ALPHA,
    "batch_size": BATCH_SIZE,
    "fit_algorithm": "cd",
    "n_jobs": None,
    "tol": 0.0,
    "max_no_improvement": None,
    "random_state": 0,
}
SKLEARN_EPOCHS = 10  # budget by default; --full: 50
SKLEARN_SHOWN = (1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 50)  # epochs in the table

TIME_CAP = 40.0  # stop raising the budget once a run takes longer (s)


def make_problem(problem):
    D = make_dictionary(
        problem["n_components"],
        problem["n_features"],
        kind="gaussian",
        random_state=0,
    )
    X, D, _ = make_sparse_coded_data(
        problem["n_samples"],
        D,
        n_nonzero_coefs=problem["n_nonzero_coefs"],
        code_distribution="uniform",
        code_range=problem["code_range"],
        noise=problem["noise"],
        random_state=0,
    )
    return X, D


def escalate(run, budgets, seeds, time_cap):
    """Raise the budget until the median rate reaches TARGET.

    ``run(budget, seed)`` returns ``(time, rate)``. Stops at the first budget
    whose median rate is at least TARGET, or after the first whose median time
    exceeds ``time_cap``; after a success, also runs the budget halfway (in
    log scale) between it and the previous one when there is such an integer.
    Returns rows ``(budget, times, rates)`` sorted by budget.
    """

    def measure(budget):
        times, rates = zip(*(run(budget, seed) for seed in seeds), strict=True)
        row = (budget, np.array(times), np.array(rates))
        t, r = np.median(row[1]), np.median(row[2])
        print(f"  ... {budget:6d}: {t:7.2f} s, {100 * r:5.1f} %", flush=True)
        return row

    rows = []
    for budget in budgets:
        rows.append(measure(budget))
        if np.median(rows[-1][2]) >= TARGET:
            if len(rows) > 1:
                low = rows[-2][0]
                mid = round(math.sqrt(low * budget))
                if low < mid < budget:
                    rows.append(measure(mid))
            break
        if np.median(rows[-1][1]) > time_cap:
            break
    return sorted(rows, key=lambda row: row[0])


def time_to_target(rows):
    """Smallest median time of a row whose median rate reaches TARGET."""
    times = [np.median(t) for _, t, r in rows if np.median(r) >= TARGET]
    return min(times) if times else None


def run_spams(X, D_true, budgets, seeds, time_cap):
    # SPAMS takes no seed: it reseeds its generator at every call and returns
    # the same dictionary for the same input. Seed s permutes the samples,
    # which changes SPAMS' initial atoms (drawn from the data) and the order
    # of its minibatches, as a seed would.
    data = {}
    for seed in seeds:
        perm = np.random.RandomState(seed).permutation(X.shape[0])
        data[seed] = np.asfortranarray(X[perm].T)  # columns are samples
    spams.trainDL(data[seeds[0]], **{**SPAMS_PARAMS, "iter": 1})  # warm-up

    def run(n_iter, seed):
        t0 = time.perf_counter()
        D = spams.trainDL(data[seed], **{**SPAMS_PARAMS, "iter": n_iter})
        t = time.perf_counter() - t0
        return t, recovery_rate(D_true, D.T, threshold=THRESHOLD)  # atoms as rows

    return escalate(run, budgets, seeds, time_cap)


def run_skunroll(X, D_true, budgets, seeds, time_cap):
    def run(epochs, seed):
        est = UnrolledDictionaryLearning(
            **SKUNROLL_PARAMS, max_iter=epochs, random_state=seed
        )
        t0 = time.perf_counter()
        est.fit(X)
        t = time.perf_counter() - t0
        return t, recovery_rate(D_true, est.components_, threshold=THRESHOLD)

    return escalate(run, budgets, seeds, time_cap)


def warm_up_skunroll(X):
    """A small fit, so that numba compilation is not timed; returns its time."""
    params = {**SKUNROLL_PARAMS, "n_components": 8, "batch_size": 32}
    t0 = time.perf_counter()
    UnrolledDictionaryLearning(**params, max_iter=1, random_state=0).fit(X[:64])
    return time.perf_counter() - t0


class _Stop(Exception):
    pass


def run_sklearn(X, D_true, max_epochs, time_cap):
    """One run scored after every epoch; stops once TARGET is reached or
    ``time_cap`` is exceeded. Returns rows ``(epochs, [time], [rate])``."""
    steps_per_epoch = math.ceil(X.shape[0] / BATCH_SIZE)
    rows, clock = [], {"t0": 0.0, "excluded": 0.0}

    def callback(env):
        step = env["i"] + 1
        if step % steps_per_epoch:
            return
        t_score = time.perf_counter()
        elapsed = t_score - clock["t0"] - clock["excluded"]
        rate = recovery_rate(D_true, env["dictionary"], threshold=THRESHOLD)
        rows.append((step // steps_per_epoch, np.array([elapsed]), np.array([rate])))
        epochs = step // steps_per_epoch
        if epochs in SKLEARN_SHOWN or rate >= TARGET:
            print(f"  ... {epochs:6d}: {elapsed:7.2f} s, {100 * rate:5.1f} %")
        clock["excluded"] += time.perf_counter() - t_score
        if rate >= TARGET or elapsed > time_cap:
            raise _Stop

    est = MiniBatchDictionaryLearning(
        **SKLEARN_PARAMS, max_iter=max_epochs, callback=callback
    )
    clock["t0"] = time.perf_counter()
    try:
        est.fit(X)
    except _Stop:
        pass
    shown = [
        row
        for i, row in enumerate(rows)
        if row[0] in SKLEARN_SHOWN or i == len(rows) - 1 or row[2][0] >= TARGET
    ]
    return shown


def print_table(results):
    print(
        f"\n{'method':10s} {'budget':>16s} {'time [s]':>9s} {'rate [%]':>9s} "
        f"{'rates over seeds [%]':>22s}"
    )
    for method, (unit, rows) in results.items():
        for budget, times, rates in rows:
            spread = (
                f"{100 * rates.min():5.1f} .. {100 * rates.max():5.1f}"
                if len(rates) > 1
                else ""
            )
            print(
                f"{method:10s} {f'{budget} {unit}':>16s} {np.median(times):9.2f} "
                f"{100 * np.median(rates):9.1f} {spread:>22s}"
            )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-samples", type=int, default=PROBLEM["n_samples"])
    parser.add_argument("--seeds", type=int, default=3, help="seeds per budget")
    parser.add_argument(
        "--methods",
        default="spams,skunroll,sklearn",
        help="comma-separated subset of spams,skunroll,sklearn",
    )
    parser.add_argument(
        "--time-cap", type=float, default=TIME_CAP, help="per-run cap (s)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 4,000 samples, 32 features, 64 atoms, one seed",
    )
    parser.add_argument(
        "--full", action="store_true", help="scikit-learn up to 50 epochs, no cap"
    )
    args = parser.parse_args()
    warnings.simplefilter("ignore", ConvergenceWarning)

    problem = dict(PROBLEM, n_samples=args.n_samples)
    seeds = list(range(args.seeds))
    spams_iters, skunroll_epochs = SPAMS_ITERS, SKUNROLL_EPOCHS
    sklearn_epochs, sklearn_cap = SKLEARN_EPOCHS, args.time_cap
    if args.quick:
        problem.update(n_samples=4_000, n_features=32, n_components=64)
        SKUNROLL_PARAMS["n_components"] = SPAMS_PARAMS["K"] = 64
        SKLEARN_PARAMS["n_components"] = 64
        seeds = [0]
        spams_iters, skunroll_epochs = SPAMS_ITERS[:4], SKUNROLL_EPOCHS[:4]
        sklearn_epochs, sklearn_cap = 2, 10.0
    if args.full:
        sklearn_epochs, sklearn_cap = 50, math.inf
    methods = args.methods.split(",")

    X, D_true = make_problem(problem)
    print(
        f"X {X.shape}, {problem['n_components']} atoms, "
        f"{problem['n_nonzero_coefs']}-sparse codes +-U{list(problem['code_range'])}"
        f", noise {problem['noise']}; alpha {ALPHA}, batch {BATCH_SIZE}, "
        f"{N_JOBS} threads; recovered: error < {THRESHOLD}; target "
        f"{100 * TARGET:.0f} %; seeds {seeds}"
    )
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; "
        f"Python {platform.python_version()}, numpy {np.__version__}, "
        f"scikit-learn {sklearn.__version__}; SPAMS "
        f"{'available' if spams else 'NOT available'}; load average at start "
        f"{os.getloadavg()[0]:.2f}"
    )

    results = {}
    with threadpool_limits(N_JOBS):
        if "spams" in methods:
            if spams is None:
                print("SPAMS: not available (pip install spams-bin)")
            else:
                print(f"SPAMS trainDL, iterations (load {os.getloadavg()[0]:.2f})")
                rows = run_spams(X, D_true, spams_iters, seeds, args.time_cap)
                results["SPAMS"] = ("iterations", rows)
        if "skunroll" in methods:
            if UnrolledDictionaryLearning is None:
                print("skunroll: UnrolledDictionaryLearning not available")
            else:
                t = warm_up_skunroll(X)
                print(
                    f"skunroll UnrolledDictionaryLearning, epochs (warm-up fit, "
                    f"numba compile or cache load, {t:.1f} s, not timed; load "
                    f"{os.getloadavg()[0]:.2f})"
                )
                rows = run_skunroll(X, D_true, skunroll_epochs, seeds, args.time_cap)
                results["skunroll"] = ("epochs", rows)
        if "sklearn" in methods:
            print(
                f"scikit-learn MiniBatchDictionaryLearning, one run of up to "
                f"{sklearn_epochs} epochs scored after each (seed 0; load "
                f"{os.getloadavg()[0]:.2f})"
            )
            rows = run_sklearn(X, D_true, sklearn_epochs, sklearn_cap)
            results["sklearn"] = ("epochs", rows)

    print_table(results)
    print()
    reached = {}
    for method, (_, rows) in results.items():
        reached[method] = time_to_target(rows)
        line = (
            f"{reached[method]:.2f} s"
            if reached[method] is not None
            else "not reached in budget"
        )
        print(f"{method:10s} time to >= {100 * TARGET:.0f} %: {line}")
    if reached.get("SPAMS") and reached.get("skunroll"):
        ratio = reached["SPAMS"] / reached["skunroll"]
        print(f"SPAMS time / skunroll time (to {100 * TARGET:.0f} %): {ratio:.2f}")
    else:
        print(f"SPAMS time / skunroll time (to {100 * TARGET:.0f} %): n/a")
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
