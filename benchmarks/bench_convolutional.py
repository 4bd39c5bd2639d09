"""Convolutional dictionary learning on spike recordings: skunroll vs SPORCO
vs alphacsc, in one process on the same data.

The problem (``make_spike_recording``): 10 recordings of 10,000 samples at
10 kHz, three neurons with distinct spike waveforms of 4.5 ms (45 samples),
about 30 Hz firing, spike amplitudes uniform in [1, 2], white noise 0.1. Every
method learns 3 kernels of 45 samples from the same initial kernels, cut from
the data at its largest peaks (skunroll's ``kernel_init="peaks"``), with the
objective ``0.5 ||x - sum_k h_k * z_k||^2 + lambda sum_k ||z_k||_1``, unit-norm
kernels and non-negative codes (spike amplitudes are positive):

- skunroll ``ConvolutionalDictionaryLearning(positive_code=True)``, its defaults
  otherwise
  (30 unrolled FISTA steps warm-started across epochs, the "dec" gradient),
  2 threads;
- SPORCO ``ConvBPDNDictLearn`` (ADMM codes, CNS dictionary step,
  ``NonNegCoef`` and ``NoBndryCross`` so that its circular convolution
  matches the linear one), one FFTW thread (faster than two here); lambda is
  tuned on the first seed over a grid, and the best iterate of 200 is kept;
- alphacsc's batch algorithm (``learn_d_z_multi``, what ``BatchCDL`` runs,
  called directly for its per-iteration callback; ``rank1=False`` for one
  channel; L-BFGS codes: the default "lgcd" solver crashes with numpy 2,
  alphacsc issue #132; ``lmbd_max="fixed"`` and ``reg = lambda / X.std()``,
  since alphacsc divides X by its standard deviation, so that its objective
  is the same as SPORCO's), 30 iterations, 2 jobs; lambda is the better on
  the first seed of SPORCO's tuned lambda and skunroll's 0.6.

SPORCO and alphacsc first run a tiny problem so that their FFT plans and
numba kernels are ready before any timing, as skunroll's are.

A kernel is recovered when its shift-invariant error (sine of the angle to
its best-matching learned kernel over all shifts,
:func:`skunroll.metrics.atom_recovery_errors` with ``shift_invariant=True``)
is below 0.1. For skunroll and SPORCO a callback records the errors after
every step (its own time is excluded; for alphacsc after every iteration),
giving the time at which all three
kernels are first below 0.1 and the time of the best iterate (smallest
largest error). Times are medians over seeds; skunroll's kernels are compiled
by a small fit first.

Spike sorting (``--sorting``, on by default): the 17-minute recording of the
CRsAE paper, ``make_spike_recording(1, 10_200_000)`` (the same three
waveforms), is sorted by kernels learned on its first 100,000 samples (cut
into 10 recordings of 10,000): ``detect_events(threshold=0.2)`` encodes the
whole recording in parallel chunks and keeps the local maxima of the codes.
The table gives the learning time, the median sorting time over 3 runs, and
the F1 score of the detected spike times at +-0.5 ms (5 samples)
(:func:`skunroll.metrics.event_detection_f1`).

Run: ``python benchmarks/bench_convolutional.py [--seeds S] [--quick]
[--methods skunroll,sporco,alphacsc] [--no-sorting]`` (SPORCO and alphacsc come from
``pip install skunroll[bench]``; a competitor that does not import is
skipped).
"""

import argparse
import os
import platform
import time
import warnings

import numpy as np

from skunroll import ConvolutionalDictionaryLearning
from skunroll.datasets import make_spike_recording
from skunroll.metrics import atom_recovery_errors, event_detection_f1

N_JOBS = 2
THRESHOLD = 0.1
ALPHA = 0.6  # skunroll's lambda (default-free choice: ~6 noise std of a code)
SPORCO_LAMBDAS = (0.3, 0.6, 1.0, 2.0)
PROBLEM = {"n_samples": 10, "n_times": 10_000}
LENGTH = 45


def errors(kernels, learned):
    return atom_recovery_errors(
        kernels.reshape(len(kernels), -1),
        np.asarray(learned).reshape(len(learned), -1),
        shift_invariant=True,
    )


def initial_kernels(X, k=3):
    """The ``k`` windows of ``LENGTH`` samples of the recordings ``X`` centred
    on their largest non-overlapping peaks of ``|X|`` (the windows skunroll's
    ``kernel_init="peaks"`` starts from), unit norm."""
    energy = np.abs(X)
    taken = []
    for idx in np.argsort(energy.ravel())[::-1][:1000]:
        i, t = np.unravel_index(idx, energy.shape)
        t0 = int(np.clip(t - LENGTH // 2, 0, X.shape[1] - LENGTH))
        if any(i == j and abs(t0 - s) < LENGTH for j, s in taken):
            continue
        taken.append((i, t0))
        if len(taken) == k:
            break
    else:
        raise ValueError(f"fewer than {k} separate peaks among the 1000 largest")
    H = np.array([X[i, t0 : t0 + LENGTH] for i, t0 in taken], dtype=np.float64)
    return H / np.linalg.norm(H, axis=1)[:, None]


class Trace:
    """Errors against time, with the callback's own time excluded."""

    def __init__(self, kernels):
        self.kernels = kernels
        self.times, self.errors = [], []
        self.start = time.perf_counter()
        self.excluded = 0.0

    def record(self, learned):
        t0 = time.perf_counter()
        self.times.append(t0 - self.start - self.excluded)
        self.errors.append(errors(self.kernels, learned))
        self.excluded += time.perf_counter() - t0

    def summary(self):
        worst = np.array([e.max() for e in self.errors])
        best = int(np.argmin(worst))
        hit = np.flatnonzero(worst < THRESHOLD)
        return {
            "time_to_recovery": self.times[hit[0]] if hit.size else np.inf,
            "best_errors": self.errors[best],
            "time_to_best": self.times[best],
            "final_errors": self.errors[-1],
            "total_time": self.times[-1],
        }


def run_skunroll(X, kernels, seed):
    trace = Trace(kernels)

    def callback(est, info):
        trace.record(info["kernels"])

    est = ConvolutionalDictionaryLearning(
        3,
        LENGTH,
        alpha=ALPHA,
        positive_code=True,
        n_jobs=N_JOBS,
        random_state=seed,
        callback=callback,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X)
    out = trace.summary()
    out["iterations"] = est.n_iter_
    return out


def import_sporco():
    try:
        import sporco.fft
        from sporco.dictlrn import cbpdndl
    except ImportError:
        return None
    sporco.fft.pyfftw_threads = 1
    return cbpdndl


def run_sporco(cbpdndl, X, kernels, lam, n_iter=200):
    trace = Trace(kernels)

    def callback(d):
        trace.record(d.getdict().squeeze().T)
        return False

    opt = cbpdndl.ConvBPDNDictLearn.Options(
        {
            "Verbose": False,
            "MaxMainIter": n_iter,
            "Callback": callback,
            "CBPDN": {"NonNegCoef": True, "NoBndryCross": True},
        },
        xmethod="admm",
        dmethod="cns",
    )
    D0 = initial_kernels(X).T.copy()
    trace.start = time.perf_counter()
    d = cbpdndl.ConvBPDNDictLearn(
        D0, X.T.copy(), lam, opt, xmethod="admm", dmethod="cns", dimK=1, dimN=1
    )
    d.solve()
    out = trace.summary()
    out["iterations"] = n_iter
    return out


def run_alphacsc(X, kernels, lam, n_iter=60):
    """alphacsc's batch algorithm (``learn_d_z_multi``, what ``BatchCDL`` runs)
    with a callback after every iteration."""
    from alphacsc.learn_d_z_multi import learn_d_z_multi

    trace = Trace(kernels)

    def callback(z_encoder, pobj):
        trace.record(z_encoder.D_hat[:, 0])

    trace.start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        learn_d_z_multi(X[:, None, :], 3, LENGTH, reg=lam / X.std(),
                        lmbd_max="fixed", rank1=False, n_iter=n_iter,
                        n_jobs=N_JOBS, solver_z="l-bfgs",
                        D_init=initial_kernels(X)[:, None, :], callback=callback,
                        verbose=0, random_state=0)  # fmt: skip
    out = trace.summary()
    out["iterations"] = n_iter
    return out


def spike_sorting(n_times=10_200_000, threshold=0.2, repeats=3):
    X, kernels, events = make_spike_recording(1, n_times, random_state=0)
    train = X[0, :100_000].reshape(10, 10_000)
    est = ConvolutionalDictionaryLearning(
        3, LENGTH, alpha=ALPHA, positive_code=True, n_jobs=N_JOBS, random_state=0
    )
    t0 = time.perf_counter()
    est.fit(train)
    t_fit = time.perf_counter() - t0
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        detected = est.detect_events(X, threshold=threshold)
        times.append(time.perf_counter() - t0)
    f1 = event_detection_f1(events, detected, kernels, est.kernels_)
    minutes = n_times / 10_000 / 60
    print(
        f"\nSpike sorting of a {minutes:.1f}-minute recording ({n_times:,} samples, "
        f"{len(events):,} spikes), {N_JOBS} threads, load {os.getloadavg()[0]:.2f}:"
    )
    print(
        f"  kernels learned on 100,000 samples in {t_fit:.2f} s "
        f"(errors {fmt_errors(errors(kernels, est.kernels_))})"
    )
    print(
        f"  sorting (encode + detect): median {np.median(times):.2f} s of "
        f"{repeats} ({', '.join(f'{t:.2f}' for t in times)}); "
        f"{len(detected):,} events; spike-time F1 at +-0.5 ms: {f1:.3f}"
    )


def fmt_errors(e):
    return "/".join(f"{v:.3f}" for v in e)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--methods", default="skunroll,sporco,alphacsc")
    parser.add_argument(
        "--no-sorting", action="store_true", help="skip the spike-sorting run"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one seed, SPORCO at the issue's lambda=2 only",
    )
    args = parser.parse_args()
    seeds = range(1 if args.quick else args.seeds)
    methods = args.methods.split(",")
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    data = {s: make_spike_recording(**PROBLEM, random_state=s) for s in seeds}
    results = {}
    if "skunroll" in methods:
        X0 = data[seeds[0]][0]
        ConvolutionalDictionaryLearning(3, LENGTH, max_iter=2, tol=0).fit(
            X0[:2, :2000]
        )  # compile
        results["skunroll"] = [run_skunroll(data[s][0], data[s][1], s) for s in seeds]
    cbpdndl = import_sporco() if "sporco" in methods else None
    lam = 2.0
    if cbpdndl is not None:
        lambdas = (2.0,) if args.quick else SPORCO_LAMBDAS
        X0, k0, _ = data[seeds[0]]
        run_sporco(cbpdndl, X0[:2, :2000], k0, 1.0, n_iter=2)  # plan its FFTs
        tuning = {lam: run_sporco(cbpdndl, X0, k0, lam) for lam in lambdas}
        for lam, r in tuning.items():
            print(
                f"SPORCO tuning (seed {seeds[0]}), lambda={lam}: best "
                f"{fmt_errors(r['best_errors'])} at {r['time_to_best']:.2f} s"
            )
        lam = min(tuning, key=lambda v: tuning[v]["best_errors"].max())
        results[f"SPORCO (lambda={lam})"] = [tuning[lam]] + [
            run_sporco(cbpdndl, data[s][0], data[s][1], lam) for s in seeds[1:]
        ]
    if "alphacsc" in methods:
        try:
            import alphacsc  # noqa: F401
        except ImportError:
            print("alphacsc does not import: skipped")
        else:
            X0, k0, _ = data[seeds[0]]
            run_alphacsc(X0[:2, :2000], k0, ALPHA, n_iter=1)  # compile its kernels
            lambdas = sorted({lam, ALPHA})
            tuning = {v: run_alphacsc(X0, k0, v, n_iter=30) for v in lambdas}
            for v, r in tuning.items():
                print(
                    f"alphacsc tuning (seed {seeds[0]}), lambda={v}: best "
                    f"{fmt_errors(r['best_errors'])} at {r['time_to_best']:.2f} s"
                )
            best = min(tuning, key=lambda v: tuning[v]["best_errors"].max())
            results[f"alphacsc (lambda={best})"] = [tuning[best]] + [
                run_alphacsc(data[s][0], data[s][1], best, n_iter=30) for s in seeds[1:]
            ]
    print(f"\nload after the runs: {os.getloadavg()[0]:.2f}")
    header = (
        "method",
        "time to all < 0.1 [s]",
        "best errors (seed 0)",
        "time to best [s]",
        "recovered seeds",
    )
    rows = []
    for name, runs in results.items():
        t_rec = np.median([r["time_to_recovery"] for r in runs])
        t_best = np.median([r["time_to_best"] for r in runs])
        n_ok = sum(r["best_errors"].max() < THRESHOLD for r in runs)
        rows.append(
            (
                name,
                f"{t_rec:.2f}",
                fmt_errors(runs[0]["best_errors"]),
                f"{t_best:.2f}",
                f"{n_ok}/{len(runs)}",
            )
        )
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)))
    for name, runs in results.items():
        for s, r in zip(seeds, runs, strict=True):
            print(
                f"  {name}, seed {s}: best {fmt_errors(r['best_errors'])} at "
                f"{r['time_to_best']:.2f} s; all < {THRESHOLD} at "
                f"{r['time_to_recovery']:.2f} s; {r['total_time']:.2f} s in all"
            )
    if not args.no_sorting and "skunroll" in methods:
        spike_sorting()
    if "skunroll" in results:
        ours = np.median([r["time_to_recovery"] for r in results["skunroll"]])
        for name, runs in results.items():
            if name != "skunroll":
                theirs = np.median([r["time_to_best"] for r in runs])
                print(
                    f"{name}: time to its best result / skunroll's time to "
                    f"recover all kernels = {theirs / ours:.1f}x"
                )


if __name__ == "__main__":
    main()
