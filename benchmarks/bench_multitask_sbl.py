"""Clustered multi-task compressive sensing: CoFEM vs exact EM vs one model per task.

Problem (issue 17): p = 4,096 coefficients per task, T = 20 tasks in 2
clusters of 10; the tasks of a cluster share a support of ``k`` coefficients
(standard normal values drawn per task), the two clusters' supports are drawn
independently. Every task is observed through the same n = 2,048 random rows
of the orthonormal DCT, of which it sees a random 25 % (75 % of the
measurements masked: about 512 per task), with noise of standard deviation
0.05. Every method runs in this process on the same data:

- ``ClusteredMultiTaskSBL(2, solver="cofem")`` with the DCT as a
  ``LinearOperator`` and the mask (defaults otherwise), with the operator in
  float32 (the transforms in single precision; CG and the estimates stay
  float64) and in float64;
- ``ClusteredMultiTaskSBL(2, solver="em")``: exact EM on the dense 2,048 x
  4,096 matrix (Woodbury, one 512 x 512 Cholesky per task and cluster);
- exact EM with explicit ``p x p`` posterior covariances, the EM of the
  clustered multi-task paper (the posterior precision ``beta Phi_t^T Phi_t +
  diag(lambda_k)`` of each task and cluster, its Cholesky factor, inverse and
  log-determinant): the same iterations as the Woodbury EM (tested equal on
  small problems), about 40 times its cost per E-step here, so it is not run
  to the end: its E-step is timed on ``--explicit-tasks`` tasks (each with
  both clusters, at the Woodbury fit's final state) and the time per pair is
  multiplied by the number of pair E-steps the Woodbury fit ran (marked
  "extrapolated"); its memory is that of one pair's E-step with the dense
  design (the E-step holds one pair's matrices at a time, so the whole fit's
  peak is the same);
- ``SparseBayesianLearning(solver="cofem", fit_intercept=False)`` per task on
  its observed DCT rows (separate SBL);
- scikit-learn's ``ARDRegression(fit_intercept=False)`` per task on its dense
  observed rows (``--ard-tasks`` of them, time scaled to the 20).

Reported: relative error ``||coef - X||_F / ||X||_F`` over the tasks, cluster
ARI (adjusted Rand index of ``labels_`` against the planted clusters), wall
time, CPU time of the process (less sensitive to the load of a shared
machine; BLAS runs single-threaded in the E-steps) and peak memory: the
increase of the process's peak resident set size over the fit
(``ru_maxrss``, its high-water mark reset before each fit through
``/proc/self/clear_refs``; ``>=`` marks a lower bound where that is not
possible), and the peak of Python allocations traced by ``tracemalloc``
(numpy's buffers included) in a second, untimed run of the same fit.

``--scale``: p = 65,536, n = 32,768 DCT rows as a float32 operator, T = 20,
CoFEM only (``max_iter`` limited with ``--scale-iter``; a line per EM
iteration), peak memory against 2 GB.

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
from skunroll._parallel import single_threaded_blas
from skunroll._sbl.multitask import _estep_exact_pairs, _Tasks
from skunroll.datasets import make_multitask_measurements
from skunroll.utils import subsampled_dct

sys.path.insert(0, str(Path(__file__).parent))
from bench_sbl import _maxrss_bytes, _reset_peak_rss  # noqa: E402

NOISE = 0.05


def make_problem(p, n, T, k, observed=0.25, seed=0):
    op, Y, mask, X, labels, rows = make_multitask_measurements(
        p, n, T, k, observed=observed, noise=NOISE, random_state=seed
    )
    return op, rows, Y, mask, X, labels


def measure(fit, trace=True):
    """(seconds, CPU seconds, peak RSS increase MB, exact, tracemalloc peak MB,
    result)."""
    exact = _reset_peak_rss()
    before = _maxrss_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        out = fit()
    t, cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = (_maxrss_bytes() - before) / 1e6
    traced = float("nan")
    if trace:
        tracemalloc.start()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            fit()
        traced = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return t, cpu, rss, exact, traced, out


def explicit_em(dense, Y, mask, em_fit, n_tasks, trace):
    """The explicit-covariance EM's E-step on ``n_tasks`` tasks x 2 clusters
    at the Woodbury fit's final state: (seconds, CPU seconds per pair, peak
    RSS MB, exact, traced MB, Woodbury's seconds per pair on the same pairs)."""
    T = Y.shape[1]
    Ys = [np.where(mask[:, t], Y[:, t], 0.0) for t in range(T)]
    masks = mask.T.astype(np.float64)
    lam, active, beta = em_fit.lambda_, em_fit.active_, em_fit.alpha_
    pairs = [(t, k) for t in range(n_tasks) for k in range(lam.shape[0])]

    def estep(explicit, pairs=pairs, tasks=None):
        if tasks is None:  # the memory counts the dense copy it makes
            tasks = _Tasks(dense, Ys, masks, np.float64)
        with single_threaded_blas():
            return _estep_exact_pairs(
                tasks, pairs, lam, active, beta, True, explicit=explicit
            )

    ready = _Tasks(dense, Ys, masks, np.float64)
    ready.dense(0)  # densified outside the timings
    t, cpu, _, _, _, out = measure(lambda: estep(True, tasks=ready), trace=False)
    # one pair: the E-step holds one pair's matrices at a time
    _, _, rss, exact, traced, _ = measure(lambda: estep(True, pairs[:1]), trace)
    t_wb = measure(lambda: estep(False, tasks=ready), trace=False)[0]
    ref = estep(False, tasks=ready)
    assert np.allclose(out.mu, ref.mu, rtol=1e-6, atol=1e-9), "explicit != Woodbury"
    return t / len(pairs), cpu / len(pairs), rss, exact, traced, t_wb / len(pairs)


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
    parser.add_argument("--explicit-tasks", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="no EM, no ARD")
    parser.add_argument("--no-trace", action="store_true")
    parser.add_argument("--scale", action="store_true")
    parser.add_argument("--scale-iter", type=int, default=200)
    args = parser.parse_args()
    if args.scale:
        return scale(args)
    p, n, T, k = args.p, args.n, args.tasks, args.k
    op, rows, Y, mask, X, labels = make_problem(p, n, T, k, seed=args.seed)
    op32 = subsampled_dct(rows, p, dtype=np.float32)
    dense = scipy.fft.dct(np.eye(p), norm="ortho", axis=0)[rows]
    # compile the kernels outside the timings
    for design in (op, op32):
        ClusteredMultiTaskSBL(2, solver="cofem", max_iter=2, random_state=0).fit(
            design, Y, mask=mask
        )
    trace = not args.no_trace

    def cofem(design):
        est = ClusteredMultiTaskSBL(2, solver="cofem", random_state=0)
        return lambda: est.fit(design, Y, mask=mask)

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

    EM = "skunroll exact EM clustered (Woodbury), dense Phi"
    methods = [
        ("skunroll CoFEM clustered, float32 DCT operator + mask", cofem(op32), True),
        ("skunroll CoFEM clustered, float64 DCT operator + mask", cofem(op), True),
    ]
    if not args.quick:
        methods.append((EM, em, True))
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
    em_fit = None
    for name, fit, clustered in methods:
        t, cpu, rss, exact, traced, out = measure(fit, trace)
        if clustered:
            coef, ari = out.coef_, adjusted_rand_score(labels, out.labels_)
            extra = f"{out.n_iter_} iters"
            if name == EM:
                em_fit = out
        else:
            coef, ari, extra = out, float("nan"), ""
        m = coef.shape[0]
        if m < T:
            t, cpu = t * T / m, cpu * T / m  # scaled to every task
            extra = f"time x {T}/{m}"
        err = np.linalg.norm(coef - X[:m]) / np.linalg.norm(X[:m])
        peak = f"{rss:.0f}" if exact else f">={rss:.0f}"
        results.append((name, t, cpu, err, ari, peak, traced, extra))
        print(f"  {name}: {t:.2f} s (CPU {cpu:.2f} s), rel. error {err:.4f}, ARI "
              f"{ari:.2f}, peak RSS {peak} MB, traced {traced:.0f} MB {extra}",
              flush=True)  # fmt: skip
        if name == EM:
            # the explicit-covariance EM: same iterations, timed per pair
            K = out.lambda_.shape[0]
            n_solves = 5 * T + int(out.history_["n_pairs"].sum()) + T * K
            tp, cp, rss_x, exact_x, traced_x, t_wb = explicit_em(
                dense, Y, mask, out, args.explicit_tasks, trace
            )
            name_x = "exact EM, explicit p x p covariances (paper's baseline)"
            extra_x = (f"extrapolated: {n_solves} pair E-steps x {tp:.2f} s "
                       f"(Woodbury {t_wb:.3f} s)")  # fmt: skip
            peak_x = f"{rss_x:.0f}" if exact_x else f">={rss_x:.0f}"
            results.append((name_x, tp * n_solves, cp * n_solves, err, ari,
                            peak_x, traced_x, extra_x))  # fmt: skip
            print(f"  {name_x}: {tp:.2f} s per pair (CPU {cp:.2f} s), Woodbury "
                  f"{t_wb:.3f} s per pair on the same pairs; x {n_solves} pair "
                  f"E-steps = {tp * n_solves:.0f} s; peak RSS {peak_x} MB, traced "
                  f"{traced_x:.0f} MB (one pair)", flush=True)  # fmt: skip
    t_cofem = results[0][1]
    print(
        f"\np={p}, T={T} tasks in 2 clusters ({k} non-zeros each), n={n} DCT rows, "
        f"75 % masked (about {int(mask.sum(0).mean())} per task), noise {NOISE}"
    )
    header = ("method", "time [s]", "CPU [s]", "rel. error", "ARI", "peak RSS MB",
              "traced MB", "time / CoFEM f32", "note")  # fmt: skip
    rows_out = [
        (
            name,
            f"{t:.2f}",
            f"{cpu:.2f}",
            f"{err:.4f}",
            f"{ari:.2f}",
            peak,
            f"{tr:.0f}",
            f"{t / t_cofem:.1f}x",
            extra,
        )  # fmt: skip
        for name, t, cpu, err, ari, peak, tr, extra in results
    ]
    widths = [max(len(str(r[i])) for r in [header, *rows_out]) for i in range(9)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header))
    print("  ".join("-" * w for w in widths))
    for r in rows_out:
        print(fmt.format(*r))
    if em_fit is None:
        return
    print()
    baselines = [r for r in results if "exact EM" in r[0]]
    for cofem_row in results[:2]:
        for base in baselines:
            print(
                f"{cofem_row[0]} vs {base[0]}: error ratio "
                f"{cofem_row[3] / base[3]:.3f} (target <= 1.10), speed-up "
                f"{base[1] / cofem_row[1]:.1f}x wall, {base[2] / cofem_row[2]:.1f}x "
                f"CPU (target >= 50), traced memory ratio "
                f"{base[6] / cofem_row[6]:.1f}x (target >= 10)"
            )


def scale(args):
    p, n, T, k = 65536, 32768, args.tasks, 160
    _, rows, Y, mask, X, labels = make_problem(p, n, T, k, seed=args.seed)
    op = subsampled_dct(rows, p, dtype=np.float32)
    ClusteredMultiTaskSBL(2, solver="cofem", max_iter=1, random_state=0).fit(
        subsampled_dct(rows[:64], p, dtype=np.float32), Y[:64], mask=mask[:64]
    )

    def cofem():
        return ClusteredMultiTaskSBL(
            2, solver="cofem", max_iter=args.scale_iter, random_state=0, verbose=1
        ).fit(op, Y, mask=mask)

    t, cpu, rss, exact, _, est = measure(cofem, trace=False)
    err = np.linalg.norm(est.coef_ - X) / np.linalg.norm(X)
    ari = adjusted_rand_score(labels, est.labels_)
    peak = f"{rss:.0f}" if exact else f">={rss:.0f}"
    print(f"Scale: p={p}, n={n} DCT rows (float32 operator), T={T}, {k} non-zeros "
          f"per cluster, 75 % masked, noise {NOISE}: CoFEM {t:.1f} s (CPU {cpu:.1f} "
          f"s), {est.n_iter_} EM iterations (converged: "
          f"{est.history_['converged']}), rel. error {err:.4f}, ARI {ari:.2f}, "
          f"peak RSS increase {peak} MB (target < 2,000)")  # fmt: skip


if __name__ == "__main__":
    main()
