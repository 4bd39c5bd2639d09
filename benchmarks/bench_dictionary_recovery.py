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
Finally SPAMS and skunroll are re-timed at their budgets of "time to 95 %",
alternating the two run by run (``--rounds``), so that both meet the same load
of a shared machine; this gives the second, head-to-head ratio. The
"load" column is the 1-minute load average after a budget's runs: on a shared
machine, times taken with a load above the number of threads are not reliable
(SPAMS' OpenMP threads suffer most).

Run: ``python benchmarks/bench_dictionary_recovery.py [--seeds S] [--rounds R]
[--methods spams,skunroll,sklearn] [--quick] [--full]`` (SPAMS comes from
``pip install skunroll[bench]``; it is skipped if it does not import).
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

from skunroll import UnrolledDictionaryLearning
from skunroll.datasets import make_dictionary, make_sparse_coded_data
from skunroll.metrics import atom_recovery_errors, recovery_rate

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
# the first epoch took about 11 s here against about 150 s with "lars".
# n_jobs=None (BLAS on 2 threads): n_jobs=2 sends every minibatch to joblib
# workers and made an epoch 2 to 2.4 times slower. Early stopping is off (tol=0,
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


def import_spams():
    """Import SPAMS (None if missing) with a passive OpenMP wait policy.

    libgomp reads ``OMP_WAIT_POLICY`` when it loads, so this runs before SPAMS
    is imported (nothing else here uses OpenMP: skunroll runs a Python thread
    pool, scikit-learn's BLAS uses pthreads). With the default active policy,
    SPAMS' threads spin at every barrier: when another process takes one of
    the 2 cores, a spinning thread waits for a descheduled one, and
    ``trainDL`` ran 3 to 6 times slower (400 iterations: 11.5-23 s against
    3.9-5.8 s passive, 3.8 s on an idle machine). The passive policy keeps
    SPAMS' times close to its idle-machine ones; set OMP_WAIT_POLICY=ACTIVE to
    see the default.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    try:
        import spams
    except ImportError:  # pragma: no cover - optional competitor
        return None
    return spams


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
    Returns rows ``(budget, times, rates, load)`` sorted by budget, ``load``
    being the 1-minute load average after the runs.
    """

    def measure(budget):
        times, rates = zip(*(run(budget, seed) for seed in seeds), strict=True)
        load = os.getloadavg()[0]
        row = (budget, np.array(times), np.array(rates), load)
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
    """``(time, budget)`` of the fastest row whose median rate reaches TARGET."""
    hits = [(np.median(t), b) for b, t, r, _ in rows if np.median(r) >= TARGET]
    return min(hits) if hits else None


def head_to_head(runs, budgets, seeds, rounds):
    """Re-time each method at its budget, alternating methods run by run.

    The load of a shared machine drifts over minutes; alternating the runs
    exposes both methods to the same load. Returns the median time of each.
    """
    times = {name: [] for name in runs}
    loads = []
    for _ in range(rounds):
        for seed in seeds:
            for name, run in runs.items():
                times[name].append(run(budgets[name], seed)[0])
                loads.append(os.getloadavg()[0])
    return {name: float(np.median(t)) for name, t in times.items()}, loads


def spams_runner(spams, X, D_true, seeds):
    """``run(n_iter, seed) -> (time, rate)`` for SPAMS' ``trainDL``."""
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

    return run


def skunroll_runner(X, D_true):
    """``run(epochs, seed) -> (time, rate)`` for UnrolledDictionaryLearning."""

    def run(epochs, seed):
        est = UnrolledDictionaryLearning(
            **SKUNROLL_PARAMS, max_iter=epochs, random_state=seed
        )
        t0 = time.perf_counter()
        est.fit(X)
        t = time.perf_counter() - t0
        return t, recovery_rate(D_true, est.components_, threshold=THRESHOLD)

    return run


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
    ``time_cap`` is exceeded. Returns rows ``(epochs, [time], [rate], load)``."""
    steps_per_epoch = math.ceil(X.shape[0] / BATCH_SIZE)
    rows, clock = [], {"t0": 0.0, "excluded": 0.0}

    def callback(env):
        step = env["i"] + 1
        if step % steps_per_epoch:
            return
        t_score = time.perf_counter()
        elapsed = t_score - clock["t0"] - clock["excluded"]
        rate = recovery_rate(D_true, env["dictionary"], threshold=THRESHOLD)
        epochs = step // steps_per_epoch
        load = os.getloadavg()[0]
        rows.append((epochs, np.array([elapsed]), np.array([rate]), load))
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


def converged_accuracy(spams, X, D_true):
    """Accuracy at convergence: median and worst atom error, seed 0."""
    print("accuracy at convergence (seed 0): time, rate, median / max atom error")

    def report(name, t, D):
        err = atom_recovery_errors(D_true, D)
        print(
            f"  {name:<44} {t:6.2f} s  {100 * np.mean(err < THRESHOLD):5.1f} %  "
            f"median {np.median(err):.4f}  max {err.max():.3f}"
        )

    if spams is not None:
        data = np.asfortranarray(X.T)
        for n_iter in (1600, 6400):
            t0 = time.perf_counter()
            D = spams.trainDL(data, **{**SPAMS_PARAMS, "iter": n_iter})
            report(f"SPAMS trainDL, {n_iter} iterations", time.perf_counter() - t0, D.T)
    warm_up_skunroll(X)
    for gradient in ("auto", "dec"):
        est = UnrolledDictionaryLearning(
            **{**SKUNROLL_PARAMS, "gradient": gradient, "max_iter": 30}, random_state=0
        )
        t0 = time.perf_counter()
        est.fit(X)
        report(
            f"skunroll gradient={gradient!r}, {est.n_iter_} epochs (tol stop)",
            time.perf_counter() - t0,
            est.components_,
        )


def print_table(results):
    print(
        f"\n{'method':10s} {'budget':>16s} {'time [s]':>9s} {'rate [%]':>9s} "
        f"{'rates over seeds [%]':>22s} {'load':>5s}"
    )
    for method, (unit, rows) in results.items():
        for budget, times, rates, load in rows:
            spread = (
                f"{100 * rates.min():5.1f} .. {100 * rates.max():5.1f}"
                if len(rates) > 1
                else ""
            )
            print(
                f"{method:10s} {f'{budget} {unit}':>16s} {np.median(times):9.2f} "
                f"{100 * np.median(rates):9.1f} {spread:>22s} {load:5.2f}"
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
        "--rounds",
        type=int,
        default=1,
        help="head-to-head re-timing rounds (each runs every seed; 0: none)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: 4,000 samples, 32 features, 64 atoms, one seed",
    )
    parser.add_argument(
        "--full", action="store_true", help="scikit-learn up to 50 epochs, no cap"
    )
    parser.add_argument(
        "--converged",
        action="store_true",
        help="only the accuracy at convergence of SPAMS and skunroll",
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
        spams_iters, skunroll_epochs = SPAMS_ITERS[:4], SKUNROLL_EPOCHS[:8]
        sklearn_epochs, sklearn_cap = 2, 10.0
    if args.full:
        sklearn_epochs, sklearn_cap = 50, math.inf
    methods = args.methods.split(",")
    spams = import_spams() if "spams" in methods else None
    if "spams" not in methods:
        spams_status = "not run"
    elif spams is None:
        spams_status = "NOT available"
    else:
        spams_status = f"available (OMP_WAIT_POLICY={os.environ['OMP_WAIT_POLICY']})"

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
        f"scikit-learn {sklearn.__version__}; SPAMS {spams_status}; load average "
        f"at start {os.getloadavg()[0]:.2f}"
    )

    if args.converged:
        with threadpool_limits(N_JOBS):
            converged_accuracy(spams, X, D_true)
        return

    results, runs = {}, {}
    with threadpool_limits(N_JOBS):
        if "spams" in methods:
            if spams is None:
                print("SPAMS: not available (pip install spams-bin)")
            else:
                print(f"SPAMS trainDL, iterations (load {os.getloadavg()[0]:.2f})")
                runs["SPAMS"] = spams_runner(spams, X, D_true, seeds)
                rows = escalate(runs["SPAMS"], spams_iters, seeds, args.time_cap)
                results["SPAMS"] = ("iterations", rows)
        if "skunroll" in methods:
            t = warm_up_skunroll(X)
            print(
                f"skunroll UnrolledDictionaryLearning, epochs (warm-up fit, "
                f"numba compile or cache load, {t:.1f} s, not timed; load "
                f"{os.getloadavg()[0]:.2f})"
            )
            runs["skunroll"] = skunroll_runner(X, D_true)
            rows = escalate(runs["skunroll"], skunroll_epochs, seeds, args.time_cap)
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
        for method, (unit, rows) in results.items():
            reached[method] = time_to_target(rows)
            line = (
                f"{reached[method][0]:.2f} s ({reached[method][1]} {unit})"
                if reached[method] is not None
                else "not reached in budget"
            )
            print(f"{method:10s} time to >= {100 * TARGET:.0f} %: {line}")
        both = reached.get("SPAMS") and reached.get("skunroll")
        ratio = f"{reached['SPAMS'][0] / reached['skunroll'][0]:.2f}" if both else "n/a"
        if "SPAMS" in results or "skunroll" in results:
            print(f"SPAMS time / skunroll time (to {100 * TARGET:.0f} %): {ratio}")
        if both and args.rounds:
            budgets = {name: reached[name][1] for name in ("SPAMS", "skunroll")}
            runs = {name: runs[name] for name in budgets}
            medians, loads = head_to_head(runs, budgets, seeds, args.rounds)
            h2h = medians["SPAMS"] / medians["skunroll"]
            print(
                f"\nhead-to-head, runs alternated (SPAMS {budgets['SPAMS']} "
                f"iterations vs skunroll {budgets['skunroll']} epochs, "
                f"{args.rounds * len(seeds)} run(s) each, load "
                f"{min(loads):.2f} .. {max(loads):.2f}): SPAMS "
                f"{medians['SPAMS']:.2f} s, skunroll {medians['skunroll']:.2f} s, "
                f"SPAMS time / skunroll time {h2h:.2f}"
            )
    print(f"load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
