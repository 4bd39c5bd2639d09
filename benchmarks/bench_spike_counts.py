"""Kernels of spike counts (DUNL's setting): the count likelihoods of
``ConvolutionalDictionaryLearning`` against its Gaussian likelihood and an oracle.

The problem (``make_spike_counts``): 40 trials of 1,000 bins, two smooth
response kernels of 25 bins, a baseline of -1.5 (0.22 spikes per bin for the
Poisson likelihood, a probability of 0.18 for the binomial one), events that do
not overlap (a gap of 25 bins plus an exponential one of mean 20) with
amplitudes uniform in [6, 10]; counts drawn from ``Poisson(exp(eta))`` or
``Bernoulli(sigmoid(eta))``.

Fits (each from its own default initialisation, ``random_state=0``):

- ``onsets, <likelihood>``: ``ConvolutionalDictionaryLearning(2, 25, alpha=0.05,
  code_sign=1, likelihood=...)`` with ``fit(X, code_mask=codes > 0)``: the
  event onsets are known and the amplitudes, kernels and baseline are learned
  (DUNL's known-event setting); defaults otherwise (50 epochs,
  ``learning_rate="auto"`` = 0.2, the intercept fitted);
- ``onsets, gaussian``: the same with the Gaussian likelihood and
  ``fit_intercept=True`` (what a least-squares CSC method such as SPORCO or
  alphacsc fits; neither has a count likelihood);
- ``no onsets, <likelihood>``: the matching likelihood without ``code_mask``
  (``alpha=1``), to measure the limitation written in the user guide, and
  ``no onsets, gaussian`` (``alpha=0.3``) beside it;
- ``oracle``: the kernels and baseline that maximise the likelihood given
  the true codes (``scipy.optimize`` L-BFGS from the truth): the statistical
  floor of the kernel error on these data.

The error of a kernel is the sine of the angle to its best match over shifts
(:func:`skunroll.metrics.atom_recovery_errors`, ``shift_invariant=True``).

Run: ``python benchmarks/bench_spike_counts.py [--seeds S]``.
"""

import argparse
import os
import platform
import time
import warnings

import numpy as np
from scipy.optimize import minimize
from scipy.special import expit

from skunroll import ConvolutionalDictionaryLearning
from skunroll.datasets import make_spike_counts
from skunroll.metrics import atom_recovery_errors

PROBLEM = dict(n_samples=40, n_times=1000)  # make_spike_counts' defaults otherwise
BASELINE = -1.5


def fit(X, H, likelihood, mask, alpha):
    est = ConvolutionalDictionaryLearning(
        H.shape[0],
        H.shape[2],
        alpha=alpha,
        code_sign=1,
        likelihood=likelihood,
        fit_intercept=True,
        random_state=0,
    )
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, code_mask=mask)
    seconds = time.perf_counter() - start
    errors = atom_recovery_errors(H, est.kernels_, shift_invariant=True)
    return errors, est.intercept_[0], seconds


def oracle(X, H, Z, likelihood):
    """Maximum-likelihood kernels and baseline given the true codes."""
    K, _, L = H.shape

    def predictor(kernels, baseline):
        conv = [sum(np.convolve(z[k], kernels[k]) for k in range(K)) for z in Z]
        return baseline + np.array(conv)

    def loss(p):
        kernels, baseline = p[:-1].reshape(K, L), p[-1]
        eta = predictor(kernels, baseline)
        if likelihood == "poisson":
            mean = np.exp(eta)
            value = np.sum(mean - X * eta)
        else:
            mean = expit(eta)
            value = np.sum(np.logaddexp(0.0, eta) - X * eta)
        r = mean - X
        grad = np.zeros((K, L))
        for z, ri in zip(Z, r, strict=True):
            for k in range(K):
                grad[k] += np.correlate(ri, z[k], mode="valid")
        return value, np.append(grad.ravel(), r.sum())

    start = time.perf_counter()
    res = minimize(loss, np.append(H.ravel(), BASELINE), jac=True, method="L-BFGS-B")
    seconds = time.perf_counter() - start
    kernels = res.x[:-1].reshape(K, 1, L)
    return atom_recovery_errors(H, kernels, shift_invariant=True), res.x[-1], seconds


def fmt(e):
    return "/".join(f"{v:.3f}" for v in e)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
        f"load {os.getloadavg()[0]:.2f}"
    )
    X0, H0, Z0 = make_spike_counts(2, 200, random_state=0)
    ConvolutionalDictionaryLearning(2, 25, likelihood="poisson", max_iter=2).fit(
        X0
    )  # compile
    for likelihood in ("poisson", "binomial"):
        rows = {}
        for seed in range(args.seeds):
            X, H, Z = make_spike_counts(
                **PROBLEM, likelihood=likelihood, random_state=seed
            )
            runs = {
                f"onsets, {likelihood}": fit(X, H, likelihood, Z > 0, 0.05),
                "onsets, gaussian": fit(X, H, "gaussian", Z > 0, 0.05),
                f"no onsets, {likelihood}": fit(X, H, likelihood, None, 1.0),
                "no onsets, gaussian": fit(X, H, "gaussian", None, 0.3),
                "oracle (true codes)": oracle(X, H, Z, likelihood),
            }
            for name, run in runs.items():
                rows.setdefault(name, []).append(run)
        print(f"\n{likelihood} counts, {args.seeds} seeds (kernel errors per seed)")
        print("fit                        errors                       "
              "mean   baseline  time [s]")  # fmt: skip
        for name, runs in rows.items():
            errors = "  ".join(fmt(r[0]) for r in runs)
            mean = np.mean([r[0].mean() for r in runs])
            base = np.median([r[1] for r in runs])
            seconds = np.median([r[2] for r in runs])
            print(f"{name:26s} {errors:28s} {mean:.3f}  {base:+.2f}     {seconds:.2f}")
    print(f"\ntrue baseline {BASELINE}; load after the runs {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
