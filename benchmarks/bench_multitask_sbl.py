"""Clustered multi-task compressive sensing: CoFEM vs exact EM vs one model per task.

Problem (issue 17): p = 4,096 coefficients per task, T = 20 tasks in 2
clusters of 10; the tasks of a cluster share a support of ``k`` coefficients
(standard normal values drawn per task), the two clusters' supports are drawn
independently. Every task is observed through the same n = 2,048 random rows
of the orthonormal DCT, of which it sees a random 25 % (75 % of the
measurements masked: about 512 per task), with noise of standard deviation
0.05. Every method runs in this process on the same data:

- ``ClusteredMultiTaskSBL(2, solver="cofem")`` with the DCT as a
  ``LinearOperator`` and the mask (defaults otherwise);
- ``ClusteredMultiTaskSBL(2, solver="em")``: exact EM on the dense 2,048 x
  4,096 matrix (Woodbury, one 512 x 512 Cholesky per task and cluster);
- ``SparseBayesianLearning(solver="cofem", fit_intercept=False)`` per task on
  its observed DCT rows (separate SBL);
- scikit-learn's ``ARDRegression(fit_intercept=False)`` per task on its dense
  observed rows (``--ard-tasks`` of them, time scaled to the 20).

Reported: relative error ``||coef - X||_F / ||X||_F`` over the tasks, cluster
ARI (adjusted Rand index of ``labels_`` against the planted clusters), wall
time and peak memory: the increase of the process's peak resident set size
over the fit (``ru_maxrss``, its high-water mark reset before each fit through
``/proc/self/clear_refs``; ``>=`` marks a lower bound where that is not
possible), and the peak of Python allocations traced by ``tracemalloc``
(numpy's buffers included) in a second, untimed run of the same fit.

``--scale``: p = 65,536, n = 32,768 DCT rows as an operator, T = 20, CoFEM only
(``max_iter`` limited with ``--scale-iter``), peak memory against 2 GB.

Run: ``python benchmarks/bench_multitask_sbl.py [--quick] [--scale]``.
"""

import argparse
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np
import scipy.fft
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ARDRegression
from sklearn.metrics import adjusted_rand_score

from skunroll import ClusteredMultiTaskSBL, SparseBayesianLearning
from skunroll.utils import subsampled_dct

sys.path.insert(0, str(Path(__file__).parent))
from bench_sbl import _maxrss_bytes, _reset_peak_rss  # noqa: E402

NOISE = 0.05


def make_problem(p, n, T, k, observed=0.25, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], T // 2)
    supports = [rng.choice(p, k, replace=False) for _ in range(2)]
    X = np.zeros((T, p))
    for t in range(T):
        X[t, supports[labels[t]]] = rng.standard_normal(k)
    rows = np.sort(rng.choice(p, n, replace=False))
    op = subsampled_dct(rows, p)
    mask = rng.random((n, T)) < observed
    Y = op.matmat(X.T) + NOISE * rng.standard_normal((n, T))
    return op, rows, Y, mask, X, labels


def measure(fit, trace=True):
    """(seconds, peak RSS increase MB, exact, tracemalloc peak MB, result)."""
    exact = _reset_peak_rss()
    before = _maxrss_bytes()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        out = fit()
    t = time.perf_counter() - t0
    rss = (_maxrss_bytes() - before) / 1e6
    traced = float("nan")
    if trace:
        tracemalloc.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit()
        traced = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return t, rss, exact, traced, out


def per_task(fit_one, T):
    return lambda: np.vstack([fit_one(t) for t in range(T)])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--p", type=int, default=4096)
    parser.add_argument("--n", type=int, default=2048)
    parser.add_argument("--tasks", type=int, default=20)
    parser.add_argument("--k", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ard-tasks", type=int, default=20)
    parser.add_argument("--quick", action="store_true", help="no EM, no ARD")
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--scale", action="store_true")
    parser.add_argument("--scale-iter", type=int, default=200)
    args = parser.parse_args()
    if args.scale:
        return scale(args)
    p, n, T, k = args.p, args.n, args.tasks, args.k
    op, rows, Y, mask, X, labels = make_problem(p, n, T, k, seed=args.seed)
    dense = scipy.fft.dct(np.eye(p), norm="ortho", axis=0)[rows]
    # compile the kernels outside the timings
    ClusteredMultiTaskSBL(2, solver="cofem", max_iter=2, random_state=0).fit(
        op, Y, mask=mask
    )
    trace = not args.no_trace

    def cofem():
        est = ClusteredMultiTaskSBL(2, solver="cofem", random_state=0)
        return est.fit(op, Y, mask=mask)

    def em():
        return ClusteredMultiTaskSBL(2, solver="em", random_state=0).fit(
            dense, Y, mask=mask
        )

    def sbl_one(t):
        obs = mask[:, t]
        est = SparseBayesianLearning(
            solver="cofem", fit_intercept=False, random_state=0
        )
        return est.fit(subsampled_dct(rows[obs], p), Y[obs, t]).coef_

    n_ard = min(args.ard_tasks, T)

    def ard_one(t):
        obs = mask[:, t]
        return ARDRegression(fit_intercept=False).fit(dense[obs], Y[obs, t]).coef_

    methods = [("skunroll CoFEM clustered, DCT operator + mask", cofem, True)]
    if not args.quick:
        methods.append(("skunroll exact EM clustered, dense Phi", em, True))
    methods.append(("separate SBL per task (CoFEM, DCT operator)",
                    per_task(sbl_one, T), False))  # fmt: skip
    if not args.quick:
        methods.append(
            (
                f"sklearn ARDRegression per task (dense; {n_ard} of {T} tasks)",
                per_task(ard_one, n_ard),
                False,
            )  # fmt: skip
        )
    results = []
    for name, fit, clustered in methods:
        t, rss, exact, traced, out = measure(fit, trace)
        if clustered:
            coef, ari = out.coef_, adjusted_rand_score(labels, out.labels_)
            extra = f"{out.n_iter_} iters"
        else:
            coef, ari, extra = out, float("nan"), ""
        m = coef.shape[0]
        if m < T:
            t = t * T / m  # scaled to every task
            extra = f"time x {T}/{m}"
        err = np.linalg.norm(coef - X[:m]) / np.linalg.norm(X[:m])
        peak = f"{rss:.0f}" if exact else f">={rss:.0f}"
        results.append((name, t, err, ari, peak, traced, extra))
        print(f"  {name}: {t:.2f} s, rel. error {err:.4f}, ARI {ari:.2f}, peak RSS "
              f"{peak} MB, traced {traced:.0f} MB {extra}", flush=True)  # fmt: skip
    t_cofem, err_cofem = results[0][1], results[0][2]
    print(
        f"\np={p}, T={T} tasks in 2 clusters ({k} non-zeros each), n={n} DCT rows, "
        f"75 % masked (about {int(mask.sum(0).mean())} per task), noise {NOISE}"
    )
    header = ("method", "time [s]", "rel. error", "ARI", "peak RSS MB",
              "traced MB", "time / CoFEM", "note")  # fmt: skip
    rows_out = [
        (
            name,
            f"{t:.2f}",
            f"{err:.4f}",
            f"{ari:.2f}",
            peak,
            f"{tr:.0f}",
            f"{t / t_cofem:.1f}x",
            extra,
        )  # fmt: skip
        for name, t, err, ari, peak, tr, extra in results
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows_out]) for i in range(8)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header))
    print("  ".join("-" * w for w in widths))
    for r in rows_out:
        print(fmt.format(*r))
    em_row = next((r for r in results if "exact EM" in r[0]), None)
    if em_row is not None:
        print(
            f"\nCoFEM vs exact EM: error ratio {err_cofem / em_row[2]:.3f} (target "
            f"<= 1.10), speed-up {em_row[1] / t_cofem:.1f}x (target >= 50), traced "
            f"memory ratio {em_row[5] / results[0][5]:.1f}x (target >= 10)"
        )


def scale(args):
    p, n, T, k = 65536, 32768, args.tasks, 160
    op, rows, Y, mask, X, labels = make_problem(p, n, T, k, seed=args.seed)
    ClusteredMultiTaskSBL(2, solver="cofem", max_iter=1, random_state=0).fit(
        subsampled_dct(rows[:64], p), Y[:64], mask=mask[:64]
    )

    def cofem():
        return ClusteredMultiTaskSBL(
            2, solver="cofem", max_iter=args.scale_iter, random_state=0
        ).fit(op, Y, mask=mask)

    t, rss, exact, _, est = measure(cofem, trace=False)
    err = np.linalg.norm(est.coef_ - X) / np.linalg.norm(X)
    ari = adjusted_rand_score(labels, est.labels_)
    peak = f"{rss:.0f}" if exact else f">={rss:.0f}"
    print(f"Scale: p={p}, n={n} DCT rows (operator), T={T}, {k} non-zeros per "
          f"cluster, 75 % masked, noise {NOISE}: CoFEM {t:.1f} s, "
          f"{est.n_iter_} EM iterations, rel. error {err:.4f}, ARI {ari:.2f}, peak "
          f"RSS increase {peak} MB (target < 2,000)")  # fmt: skip


if __name__ == "__main__":
    main()
