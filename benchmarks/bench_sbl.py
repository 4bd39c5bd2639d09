"""Sparse Bayesian learning: CoFEM (skunroll) vs scikit-learn's ARDRegression.

The problem of the CoFEM authors' README (Lin et al. 2022): a signal of
p = 4,096 coefficients, 256 of them non-zero and standard normal, observed
through n = 1,024 rows, chosen at random, of the orthonormal DCT
(``scipy.fft.dct(norm="ortho")``), with noise of standard deviation 0.01.
Every method runs in this process on the same data; ``fit_intercept=False``
for all (the data have no offset). Reported: wall time of ``fit`` (numba
kernels compiled beforehand; nothing traces allocations during the timed
runs), relative error ``||coef - z|| / ||z||`` and peak memory: the increase
of the process's peak resident set size, ``getrusage(RUSAGE_SELF).ru_maxrss``,
over the fit (so numba's, the FFT's and BLAS's buffers count too). Before each
fit the kernel's high-water mark is reset to the current resident size
(``/proc/self/clear_refs``, Linux); where that is not possible the figure is
only the increase over the largest earlier peak of the process, a lower bound,
and is marked with ``>=``.

The scale run: n = 16,384 and p = 65,536 with the DCT as a
``LinearOperator`` (``O(p log p)`` per product), where ``Sigma`` alone would
need 34 GB.

Run: ``python benchmarks/bench_sbl.py [--quick] [--repeats R] [--no-scale]
[--with-em] [--defaults] [--default-seeds S ...]``. ``--quick`` skips
ARDRegression and the scale runs; ``--defaults`` runs only the defaults run
(issue 17: n = 16,384, p = 65,536, 800 non-zeros, the estimator's defaults,
with and without the stall rule of its stopping test).
"""

import argparse
import resource
import sys
import time
import warnings

import numpy as np
import scipy.fft
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import ARDRegression

from skunroll import SparseBayesianLearning
from skunroll.utils import subsampled_dct

NOISE = 0.01


def make_problem(n, p, k, seed=0):
    rng = np.random.default_rng(seed)
    z = np.zeros(p)
    z[rng.choice(p, k, replace=False)] = rng.standard_normal(k)
    rows = np.sort(rng.choice(p, n, replace=False))
    op = subsampled_dct(rows, p)
    y = op.matmat(z[:, None])[:, 0] + NOISE * rng.standard_normal(n)
    return op, rows, y, z


def dense_dct_rows(rows, p):
    return scipy.fft.dct(np.eye(p), norm="ortho", axis=0)[rows]


def _maxrss_bytes():
    """Peak resident set size of this process (Linux: KiB; macOS: bytes)."""
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def _reset_peak_rss():
    """Reset the high-water mark of the resident set size to the current size
    (Linux >= 4.0); ``False`` where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def run(fit, z):
    """(time, relative error, peak MB, exact, estimator) of one fit; the peak
    is the increase of ``ru_maxrss`` over the fit, ``exact`` False when the
    high-water mark could not be reset (the peak is then a lower bound)."""
    exact = _reset_peak_rss()
    before = _maxrss_bytes()
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est = fit()
    t = time.perf_counter() - t0
    peak = (_maxrss_bytes() - before) / 1e6
    err = np.linalg.norm(est.coef_ - z) / np.linalg.norm(z)
    return t, err, peak, exact, est


def median_run(fit, z, repeats):
    runs = [run(fit, z) for _ in range(repeats)]
    t = float(np.median([r[0] for r in runs]))
    peak = max(r[2] for r in runs)
    return t, runs[-1][1], peak, all(r[3] for r in runs), runs[-1][4]


def fmt_peak(peak, exact):
    return f"{peak:.0f}" if exact else f">={peak:.0f}"


def warm_up():
    """Compile (or load from cache) the numba kernels outside the timings."""
    op, rows, y, _ = make_problem(64, 256, 8)
    Phi = dense_dct_rows(rows, 256)
    t0 = time.perf_counter()
    for X in (op, Phi):
        SparseBayesianLearning(solver="cofem", max_iter=2, random_state=0).fit(X, y)
    return time.perf_counter() - t0


def table(title, rows):
    print(f"\n{title}")
    header = ("method", "time [s]", "rel. error", "peak MB (RSS)", "iters", "vs ARD")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(6)]
    fmt = "  ".join(f"{{:{'<' if i == 0 else '>'}{w}}}" for i, w in enumerate(widths))
    print(fmt.format(*header))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(fmt.format(*row))


def main_problem(args):
    n, p, k = 1024, 4096, 256
    op, rows, y, z = make_problem(n, p, k, seed=args.seed)
    Phi = dense_dct_rows(rows, p)
    common = {"solver": "cofem", "fit_intercept": False, "random_state": 0}
    methods = [
        (
            "skunroll CoFEM, DCT LinearOperator",
            lambda: SparseBayesianLearning(**common).fit(op, y),
        ),
        (
            "skunroll CoFEM, DCT LinearOperator, known noise",
            lambda: SparseBayesianLearning(
                **common, fit_noise=False, noise_precision_init=1 / NOISE**2
            ).fit(op, y),
        ),
        (
            "skunroll CoFEM, dense Phi",
            lambda: SparseBayesianLearning(**common, n_jobs=2).fit(Phi, y),
        ),
    ]
    if args.with_em:
        methods.append(
            (
                "skunroll exact EM, dense Phi",
                lambda: SparseBayesianLearning(solver="em", fit_intercept=False).fit(
                    Phi, y
                ),
            )
        )
    if not args.quick:
        methods.append(
            ("sklearn ARDRegression, dense Phi",
             lambda: ARDRegression(fit_intercept=False).fit(Phi, y))
        )  # fmt: skip
    results = []
    for name, fit in methods:
        repeats = 1 if "ARD" in name or "EM" in name else args.repeats
        t, err, peak, exact, est = median_run(fit, z, repeats)
        n_iter = getattr(est, "n_iter_", "")
        results.append([name, t, err, fmt_peak(peak, exact), n_iter])
        print(f"  {name}: {t:.2f} s, rel. error {err:.4f}, peak "
              f"{fmt_peak(peak, exact)} MB", flush=True)  # fmt: skip
    t_ard = next((r[1] for r in results if "ARD" in r[0]), None)
    rows_out = [
        (
            name,
            f"{t:.2f}",
            f"{err:.4f}",
            peak,
            str(n_iter),
            f"{t_ard / t:.1f}x" if t_ard else "-",
        )
        for name, t, err, peak, n_iter in results
    ]
    table(
        f"n={n}, p={p}, {k} non-zeros, random rows of the orthonormal DCT, noise "
        f"{NOISE} (medians of {args.repeats} runs; ARD and EM once)",
        rows_out,
    )


def scale_problem(args):
    n, p, k = 16384, 65536, 4096
    op, rows, y, z = make_problem(n, p, k, seed=args.seed)
    common = {"solver": "cofem", "fit_intercept": False, "random_state": 0}
    methods = [
        ("skunroll CoFEM, DCT LinearOperator", {}),
        (
            "skunroll CoFEM, DCT LinearOperator, known noise",
            {"fit_noise": False, "noise_precision_init": 1 / NOISE**2},
        ),
    ]
    rows_out = []
    for name, params in methods:
        t, err, peak, exact, est = run(
            lambda params=params: SparseBayesianLearning(**common, **params).fit(op, y),
            z,
        )
        rows_out.append((name, f"{t:.2f}", f"{err:.4f}", fmt_peak(peak, exact),
                         str(est.n_iter_), "-"))  # fmt: skip
        print(f"  {name}: {t:.2f} s, rel. error {err:.4f}, peak "
              f"{fmt_peak(peak, exact)} MB", flush=True)  # fmt: skip
    table(
        f"Scale: n={n}, p={p}, {k} non-zeros, DCT LinearOperator (Sigma alone "
        f"would need {p * p * 8 / 1e9:.0f} GB; one run each)",
        rows_out,
    )


def defaults_problem(args):
    """The unseen problem of issue 17 (part 3): an 800-sparse signal, n =
    16,384, p = 65,536, DCT operator, noise 0.01, the estimator's defaults
    (``fit_intercept=True`` included), with the stall rule and without it
    (``stall_tol=0``: the stopping rule of earlier versions), per seed."""
    n, p, k = 16384, 65536, 800
    rows_out = []
    for seed in args.default_seeds:
        op, rows, y, z = make_problem(n, p, k, seed=seed)
        for name, params in (
            ("defaults (tol and stall rule)", {}),
            ("tol only (stall_tol=0, earlier default)", {"stall_tol": 0}),
        ):
            t, err, peak, exact, est = run(
                lambda params=params, seed=seed, op=op, y=y: SparseBayesianLearning(
                    random_state=seed, **params
                ).fit(op, y),
                z,
            )
            rows_out.append((f"seed {seed}: {name}", f"{t:.2f}", f"{err:.4f}",
                             fmt_peak(peak, exact), str(est.n_iter_), "-"))  # fmt: skip
            print(f"  seed {seed}, {name}: {t:.2f} s, rel. error {err:.4f}, peak "
                  f"{fmt_peak(peak, exact)} MB, {est.n_iter_} iterations",
                  flush=True)  # fmt: skip
    table(
        f"Defaults: n={n}, p={p}, {k} non-zeros, DCT LinearOperator, noise "
        f"{NOISE}, SparseBayesianLearning(random_state=seed) (one run each)",
        rows_out,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-scale", action="store_true")
    parser.add_argument("--with-em", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--defaults",
        action="store_true",
        help="only the defaults run of issue 17 (800 non-zeros, p = 65,536)",
    )
    parser.add_argument("--default-seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args()
    print(f"numba compile / cache load: {warm_up():.1f} s")
    if args.defaults:
        defaults_problem(args)
        return
    main_problem(args)
    if not (args.quick or args.no_scale):
        scale_problem(args)
        defaults_problem(args)


if __name__ == "__main__":
    main()
