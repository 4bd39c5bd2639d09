"""
==================================================
Response kernels from spike counts at known events
==================================================

Deconvolutional unrolled neural learning (DUNL, Tolooshams et al., Cell
Reports Methods 2023) explains a neuron's binned spike counts as a baseline
rate plus a few response kernels, one per kind of event, placed at the events'
onsets and scaled by an amplitude per event:
``counts ~ Poisson(exp(baseline + sum_k h_k * z_k))``. When the events' times
are known (cues, rewards, touches), only their amplitudes, the kernels and the
baseline are learned.

We simulate such counts with :func:`skunroll.datasets.make_spike_counts` and
fit :class:`~skunroll.ConvolutionalDictionaryLearning` with the Poisson likelihood
and the
onsets as ``code_mask``, then the same model with the Gaussian likelihood (what
least-squares convolutional dictionary learning fits).
"""

# %%
# Counts driven by two kinds of events
# ------------------------------------
# 40 trials of 1,000 bins; a baseline of 0.22 spikes per bin; every event
# adds one of two smooth responses of 25 bins (one with an inhibitory
# rebound), with an amplitude between 6 and 10.
import matplotlib.pyplot as plt
import numpy as np

from skunroll import ConvolutionalDictionaryLearning
from skunroll.datasets import make_spike_counts
from skunroll.metrics import atom_recovery_errors

X, kernels, codes = make_spike_counts(40, 1000, random_state=0)
onsets = codes > 0
print(f"{int(onsets.sum())} events, {X.mean():.2f} spikes per bin, max {X.max():.0f}")

# %%
# Fitting with the Poisson and the Gaussian likelihood
# ----------------------------------------------------
# ``code_sign=1``: responses scale with positive amplitudes. The Poisson fit
# learns a baseline (``intercept_``, on the log-rate scale); the Gaussian fit
# gets one too (``fit_intercept=True``).
fits = {}
for likelihood in ("poisson", "gaussian"):
    est = ConvolutionalDictionaryLearning(
        2, 25, alpha=0.05, code_sign=1, likelihood=likelihood, fit_intercept=True,
        random_state=0,
    )  # fmt: skip
    est.fit(X, code_mask=onsets)
    fits[likelihood] = est
    errors = atom_recovery_errors(kernels, est.kernels_, shift_invariant=True)
    print(
        f"{likelihood:8s}: kernel errors {np.round(errors, 3)}, "
        f"baseline {est.intercept_[0]:+.2f} (true -1.50)"
    )

# %%
# Learned against true kernels
# ----------------------------
# Each learned kernel is matched to a true one (up to a shift inside its
# window). The Gaussian fit squeezes the peak, where the counts are largest,
# and loses the rebound below the baseline, which the Poisson fit keeps.
t = np.arange(25)
fig, axes = plt.subplots(1, 2, figsize=(9, 3), sharey=True)
for ax, true in zip(axes, kernels[:, 0], strict=True):
    ax.plot(t, true, "k", lw=4, alpha=0.3, label="true")
    for (name, est), color in zip(fits.items(), ("C0", "C3"), strict=True):
        corr = [np.correlate(k, true, "full") for k in est.kernels_[:, 0]]
        best = int(np.argmax([c.max() for c in corr]))
        lag = int(np.argmax(corr[best])) - 24
        ax.plot(t, np.roll(est.kernels_[best, 0], -lag), color, label=name)
    ax.set_xlabel("bins after the event")
    ax.legend(fontsize=8)
fig.suptitle("Response kernels")
fig.tight_layout()
plt.show()

# %%
# The rate of one trial
# ---------------------
# The decoder's output, ``exp(baseline + sum_k h_k * z_k)``, with the codes
# inferred at the known onsets.
trial = 0
poisson = fits["poisson"]
maps = poisson.code_maps(X[trial : trial + 1], code_mask=onsets[trial : trial + 1])
rate = poisson.inverse_transform(maps)[0]
true_rate = np.exp(
    -1.5 + sum(np.convolve(codes[trial, k], kernels[k, 0]) for k in range(2))
)
fig, ax = plt.subplots(figsize=(9, 2.8))
bins = np.arange(300)
ax.bar(bins, X[trial, :300], width=1.0, color="0.8", label="counts")
ax.plot(bins, true_rate[:300], "k", lw=2, alpha=0.5, label="true rate")
ax.plot(bins, rate[:300], "C0", label="Poisson fit")
for p in np.flatnonzero(onsets[trial].any(axis=0)):
    if p < 300:
        ax.axvline(p, color="C2", lw=0.8, ls=":")
ax.set_xlabel("bin")
ax.set_ylabel("spikes per bin")
ax.legend(fontsize=8)
fig.tight_layout()
plt.show()
