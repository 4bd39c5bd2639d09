"""Spike sorting on SpikeInterface's ground-truth recordings, against its sorters.

Recordings from ``spikeinterface.core.generate_ground_truth_recording`` (the
field's standard simulator: templates from a monopolar model on a generated
probe, Poisson trains with a refractory period, Gaussian noise of 5 µV) with
1, 4 and 16 channels and 3 to 10 units, several seeds, are sorted by
:func:`skunroll.spikes.spikeinterface.sort_recording` (``SpikeSorter``
defaults) and by SpikeInterface's ``spykingcircus2``, ``tridesclous2`` and
``simple`` (``si.run_sorter``, folders under /tmp, ``n_jobs`` threads), in
this process on the same saved recording. Every sorting is scored by
``compare_sorter_to_ground_truth`` (accuracy per ground-truth unit, spikes
matched within 0.4 ms). A unit's peak-to-peak amplitude is measured on the
recording (mean waveform at its ground-truth times, largest channel) in units
of that channel's noise (MAD / 0.6745).

Printed per recording: wall time, mean accuracy over all units, the smallest
accuracy over the units of peak-to-peak >= 5x noise ("min acc >=5") and the
number of those at >= 0.95; then a summary with medians and the ratio of
wall times to spykingcircus2's.

``--peers-cache DIR`` keeps every peer's result (wall time, accuracies) per
recording in ``DIR`` and reads it back instead of running the peer again
(marked ``*`` in the table); ``--fresh spykingcircus2`` runs that peer again
anyway, for wall times measured in the same run as skunroll's;
``--no-skunroll`` only fills the cache.

``--own`` also runs ``bench_convolutional``'s 17-minute single-channel
recording (skunroll's own simulator): encode + detect events.

``--states N`` runs skunroll with ``random_state`` 0 to N - 1 (its seeds,
training chunks and mixtures) and reports its mean accuracy per unit over
them: how much a result depends on the draw.

``--oracle`` also prints, per recording, a bound on what any sorter can reach
from the waveforms: for every unit, the smallest over the other units of the
accuracy of a linear discriminant fitted *with the true labels* on the two
units' windows (band-passed, -1 to +2 ms, all channels; in-sample, so
optimistic). With equal noise around two templates the Bayes classifier is
linear, so a unit whose bound is below 0.95 cannot reach the issue's 0.95 by
any waveform-based sorter.

Run: ``python benchmarks/bench_spike_sorting.py --quick`` (3 recordings of
60 s: 1, 4, 16 channels, about 5 min on 2 cores) or without ``--quick``
(9 recordings: 3 seeds x {1 ch 3 units 60 s, 4 ch 5 units 60 s, 16 ch 10
units 300 s}).
"""

import argparse
import json
import os
import shutil
import sys
import time
import warnings

import numpy as np
import spikeinterface.core as sc
import spikeinterface.sorters as ss
from spikeinterface.comparison import compare_sorter_to_ground_truth

from skunroll.spikes.spikeinterface import sort_recording

PEERS = ("spykingcircus2", "tridesclous2", "simple")
ROOT = "/tmp/skunroll_bench_spikes"


def recordings(quick, seeds):
    # (channels, units, seconds, sampling rate)
    if quick:
        configs = [
            (1, 3, 60.0, 10000.0),
            (4, 5, 60.0, 30000.0),
            (16, 10, 60.0, 30000.0),
        ]
    else:
        configs = [
            (1, 3, 60.0, 10000.0),
            (4, 5, 60.0, 30000.0),
            (16, 10, 300.0, 30000.0),
        ]
    for seed in seeds:
        for C, U, dur, fs in configs:
            yield C, U, dur, fs, seed


def generate(C, U, dur, fs, seed):
    probe = {
        "num_columns": 1 if C == 1 else 2,
        "xpitch": 20,
        "ypitch": 20,
        "contact_shapes": "circle",
        "contact_shape_params": {"radius": 6},
    }
    rec, gt = sc.generate_ground_truth_recording(
        durations=[dur],
        sampling_frequency=fs,
        num_channels=C,
        num_units=U,
        generate_probe_kwargs=probe,
        seed=seed,
    )
    folder = os.path.join(ROOT, f"rec_{C}_{U}_{int(dur)}_{seed}")
    rec = rec.save(folder=folder, overwrite=True, n_jobs=1, progress_bar=False)
    return rec, gt


def unit_snr(rec, gt):
    """Peak-to-peak of every ground-truth unit's mean waveform on its largest
    channel, in units of that channel's noise."""
    X = rec.get_traces()
    fs = rec.get_sampling_frequency()
    noise = np.median(np.abs(X - np.median(X, axis=0)), axis=0) / 0.6745
    nb, na = int(fs * 1e-3), int(fs * 2e-3)
    sv = gt.to_spike_vector()
    out = []
    for u in range(len(gt.unit_ids)):
        t = sv["sample_index"][sv["unit_index"] == u]
        t = t[(t >= nb) & (t < len(X) - na)]
        w = X[t[:, None] + np.arange(-nb, na)].mean(axis=0)
        out.append(float(np.max((w.max(axis=0) - w.min(axis=0)) / noise)))
    return np.array(out)


def oracle_accuracy(rec, gt):
    """Per unit, the smallest pairwise accuracy of a linear discriminant that
    knows the labels (see the module docstring)."""
    from scipy import signal
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    fs = rec.get_sampling_frequency()
    X = rec.get_traces().astype(np.float64)
    sos = signal.butter(2, [300.0, min(6000.0, 0.45 * fs)], "bandpass", fs=fs,
                        output="sos")  # fmt: skip
    X = signal.sosfiltfilt(sos, X, axis=0)
    X /= np.median(np.abs(X - np.median(X, axis=0)), axis=0) / 0.6745
    sv = gt.to_spike_vector()
    t, u = sv["sample_index"], sv["unit_index"]
    nb, na = int(1e-3 * fs), int(2e-3 * fs)
    ok = (t >= nb) & (t < len(X) - na)
    t, u = t[ok], u[ok]
    W = X[t[:, None] + np.arange(-nb, na)[None, :]].reshape(len(t), -1)
    n = len(gt.unit_ids)
    bound = np.ones(n)
    for a in range(n):
        for b in range(a + 1, n):
            sel = (u == a) | (u == b)
            y = u[sel] == b
            lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto")
            pred = lda.fit(W[sel], y).predict(W[sel])
            for unit, lab in ((a, False), (b, True)):
                tp = np.sum((pred == lab) & (y == lab))
                wrong = np.sum(pred != y)
                bound[unit] = min(bound[unit], tp / (tp + wrong))
    return bound


def score(gt, sorting):
    cmp = compare_sorter_to_ground_truth(gt, sorting, exhaustive_gt=True)
    return cmp.get_performance()["accuracy"].to_numpy(dtype=float)


def peer_params(name, fs):
    """The peers' defaults, but their band-pass filters below the Nyquist
    frequency at low sampling rates (their upper edges, 6-7 kHz, fail at
    10 kHz)."""
    if fs >= 15000:
        return {}
    high = 0.45 * fs
    if name == "spykingcircus2":
        filtering = ss.get_default_sorter_params(name)["filtering"]
        return {"filtering": {**filtering, "freq_max": high}}
    return {"freq_max": high}


def run_peer(name, rec, n_jobs):
    folder = os.path.join(ROOT, name)
    t0 = time.perf_counter()
    sorting = ss.run_sorter(
        name,
        rec,
        folder=folder,
        remove_existing_folder=True,
        verbose=False,
        job_kwargs={"n_jobs": n_jobs, "progress_bar": False},
        **peer_params(name, rec.get_sampling_frequency()),
    )
    return sorting, time.perf_counter() - t0


def run_skunroll(rec, n_jobs, random_state=0):
    t0 = time.perf_counter()
    sorting = sort_recording(rec, random_state=random_state, n_jobs=n_jobs)
    return sorting, time.perf_counter() - t0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--peers", nargs="*", default=list(PEERS))
    parser.add_argument(
        "--own", action="store_true", help="also the 17-minute single-channel recording"
    )
    parser.add_argument(
        "--no-skunroll", action="store_true", help="the peers only (to fill the cache)"
    )
    parser.add_argument(
        "--states",
        type=int,
        default=1,
        help="skunroll with random_state 0..STATES-1: its row is the mean "
        "accuracy per unit over them (and the median wall time)",
    )
    parser.add_argument(
        "--oracle",
        action="store_true",
        help="also a bound per unit: a linear discriminant that knows the labels",
    )
    parser.add_argument(
        "--peers-cache",
        default=None,
        help="folder of the peers' results (wall time, accuracies) per recording: "
        "a peer found there is not run again (its wall time is the cached run's)",
    )
    parser.add_argument(
        "--fresh",
        nargs="*",
        default=[],
        help="peers run again (and re-cached) even if cached, e.g. spykingcircus2 "
        "for wall times measured in the same run as skunroll's",
    )
    args = parser.parse_args()
    seeds = args.seeds or ([0] if args.quick else [0, 1, 2])
    warnings.filterwarnings("ignore")
    os.makedirs(ROOT, exist_ok=True)
    # compile skunroll's kernels first (numba cache), as the peers' are
    if not args.no_skunroll:
        rec, gt = generate(2, 2, 5.0, 30000.0, 99)
        run_skunroll(rec, args.n_jobs)
    print(
        f"load {os.getloadavg()[0]:.2f}, {args.n_jobs} threads; accuracy per "
        "ground-truth unit (compare_sorter_to_ground_truth)",
        flush=True,
    )
    header = (
        f"{'recording':<24} {'sorter':<15} {'wall s':>7} {'mean acc':>8} "
        f"{'min acc >=5':>11} {'>=0.95':>7}  per-unit accuracy (ptp/noise)"
    )
    print(header)
    results = {}
    for C, U, dur, fs, seed in recordings(args.quick, seeds):
        rec, gt = generate(C, U, dur, fs, seed)
        snr = unit_snr(rec, gt)
        big = snr >= 5
        name = f"{C}ch {U}u {int(dur)}s s{seed}"
        runs = [] if args.no_skunroll else [("skunroll", None)]
        runs += [(p, lambda r, j, p=p: run_peer(p, r, j)) for p in args.peers]
        for sorter, fn in runs:
            cache = None
            if args.peers_cache and sorter != "skunroll":
                key = f"{C}_{U}_{int(dur)}_{int(fs)}_{seed}_{sorter}"
                cache = os.path.join(args.peers_cache, f"{key}.json")
            try:
                if cache and os.path.exists(cache) and sorter not in args.fresh:
                    with open(cache) as f:
                        cached = json.load(f)
                    wall, acc = cached["wall"], np.array(cached["accuracy"])
                    sorter_name = f"{sorter}*"
                elif sorter == "skunroll":
                    walls, accs = [], []
                    for state in range(args.states):
                        sorting, wall = run_skunroll(rec, args.n_jobs, state)
                        walls.append(wall)
                        accs.append(score(gt, sorting))
                    wall, acc = float(np.median(walls)), np.mean(accs, axis=0)
                    sorter_name = sorter
                else:
                    sorting, wall = fn(rec, args.n_jobs)
                    acc = score(gt, sorting)
                    sorter_name = sorter
                    if cache:
                        os.makedirs(args.peers_cache, exist_ok=True)
                        with open(cache, "w") as f:
                            json.dump({"wall": wall, "accuracy": acc.tolist()}, f)
            except Exception as exc:  # a peer that fails is reported, not fatal
                print(
                    f"{name:<24} {sorter:<15} failed: {type(exc).__name__}: "
                    f"{str(exc)[:80]}",
                    flush=True,
                )
                continue
            results.setdefault(sorter, []).append((name, wall, acc, big))
            sorter = sorter_name  # "*": from the cache
            low = acc[big].min() if big.any() else np.nan
            units = " ".join(f"{a:.2f}({s:.0f})" for a, s in zip(acc, snr, strict=True))
            print(
                f"{name:<24} {sorter:<15} {wall:7.1f} {acc.mean():8.3f} {low:11.3f} "
                f"{int((acc[big] >= 0.95).sum()):>3}/{int(big.sum()):<3}  {units}",
                flush=True,
            )
        if args.oracle:
            bound = oracle_accuracy(rec, gt)
            results.setdefault("oracle", []).append((name, np.nan, bound, big))
            units = " ".join(
                f"{a:.2f}({s:.0f})" for a, s in zip(bound, snr, strict=True)
            )
            print(
                f"{name:<24} {'oracle bound':<15} {'':>7} {bound.mean():8.3f} "
                f"{bound[big].min() if big.any() else np.nan:11.3f} "
                f"{int((bound[big] >= 0.95).sum()):>3}/{int(big.sum()):<3}  {units}",
                flush=True,
            )
        shutil.rmtree(
            os.path.join(ROOT, f"rec_{C}_{U}_{int(dur)}_{seed}"), ignore_errors=True
        )
    if args.peers_cache:
        print("(* : the peer's result read from --peers-cache)")
    print(
        "\nsummary over recordings (medians; wall ratio to spykingcircus2 on the "
        "same recording)"
    )
    ref = {r[0]: r[1] for r in results.get("spykingcircus2", [])}
    for sorter, rows in results.items():
        walls = np.array([r[1] for r in rows])
        means = np.array([r[2].mean() for r in rows])
        big_acc = np.concatenate([r[2][r[3]] for r in rows])
        ratios = [r[1] / ref[r[0]] for r in rows if r[0] in ref]
        ratio = f"{np.median(ratios):.2f}" if ratios else "-"
        wall = (
            "(labels known)         "
            if sorter == "oracle"
            else (f"wall {np.median(walls):7.1f} s (x{ratio} sc2)")
        )
        print(
            f"  {sorter:<15} {wall}  mean "
            f"acc {means.mean():.3f}  units >=5x noise at >=0.95: "
            f"{int((big_acc >= 0.95).sum())}/{big_acc.size}, min "
            f"{big_acc.min() if big_acc.size else np.nan:.3f}"
        )
    if args.own:
        sys.path.insert(0, os.path.dirname(__file__))
        from bench_convolutional import spike_sorting

        spike_sorting(repeats=3)


if __name__ == "__main__":
    main()
