"""
========================================
Spike sorting with convolutional kernels
========================================

An extracellular electrode records the spikes of a few nearby neurons, each
with its own waveform, in noise. Convolutional dictionary learning recovers
the waveforms as kernels and the spike times as the non-zero entries of the
code maps: spike sorting without cutting windows by hand or clustering them.

We simulate the recordings of the CRsAE paper (Tolooshams et al., ICML 2020)
with :func:`skunroll.datasets.make_spike_recording`: three neurons firing at
about 30 Hz, waveforms of 4.5 ms at 10 kHz, white noise. The kernels are
learned by :class:`~skunroll.ConvolutionalDictionaryLearning` from one second of
data, then a minute of recording is sorted by
:meth:`~skunroll.ConvolutionalDictionaryLearning.detect_events`.
"""

# %%
# Learning the spike waveforms
# ----------------------------
# Ten recordings of 10,000 samples. Spike amplitudes are positive, so the
# codes are constrained to be non-negative (``positive_code=True``); ``alpha``
# is a few times the noise level of a code.
import time

import matplotlib.pyplot as plt
import numpy as np

from skunroll import ConvolutionalDictionaryLearning
from skunroll.datasets import make_spike_recording
from skunroll.metrics import atom_recovery_errors, event_detection_f1

X, kernels, events = make_spike_recording(10, 10_000, random_state=0)
cdl = ConvolutionalDictionaryLearning(
    3, 45, alpha=0.6, positive_code=True, random_state=0, n_jobs=2
)
start = time.perf_counter()
cdl.fit(X)
print(f"learned in {time.perf_counter() - start:.2f} s, {cdl.n_iter_} epochs")
errors = atom_recovery_errors(kernels[:, 0], cdl.kernels_[:, 0], shift_invariant=True)
print("shift-invariant kernel errors:", np.round(errors, 3))

# %%
# Learned against true waveforms
# ------------------------------
# A learned kernel may sit a few samples off its true counterpart inside its
# 45-sample window; each is drawn at its best lag.
t_ms = np.arange(45) / 10.0
fig, axes = plt.subplots(1, 3, figsize=(10, 2.8), sharey=True)
for ax, true in zip(axes, kernels[:, 0], strict=True):
    corr = [np.correlate(k, true, "full") for k in cdl.kernels_[:, 0]]
    best = int(np.argmax([np.abs(c).max() for c in corr]))
    lag = int(np.argmax(np.abs(corr[best]))) - 44
    learned = np.roll(cdl.kernels_[best, 0], -lag) * np.sign(corr[best][lag + 44])
    ax.plot(t_ms, true, "k", lw=3, alpha=0.4, label="true")
    ax.plot(t_ms, learned, "C1", label=f"learned (kernel {best})")
    ax.set_xlabel("time [ms]")
    ax.legend(fontsize=8)
fig.suptitle("Spike waveforms")
fig.tight_layout()
plt.show()

# %%
# Sorting a minute of recording
# -----------------------------
# A new recording of 600,000 samples (the same neurons). ``detect_events``
# encodes it in overlapping chunks in parallel, keeps the code entries above
# ``threshold`` and, of nearby entries of one kernel, only the largest. The
# F1 score counts a detected spike as correct when it is within 0.5 ms of a
# true spike of the matched neuron.
long, _, true_events = make_spike_recording(1, 600_000, random_state=0)
start = time.perf_counter()
detected = cdl.detect_events(long, threshold=0.2)
elapsed = time.perf_counter() - start
f1 = event_detection_f1(true_events, detected, kernels, cdl.kernels_)
print(f"{len(detected)} spikes detected ({len(true_events)} true) in {elapsed:.2f} s;")
print(f"spike-time F1 at +-0.5 ms: {f1:.3f}")

# %%
# The detected spikes on the trace
# --------------------------------
# 100 ms of the recording. Each spike is marked at its waveform's trough (its
# onset plus the position of the kernel's largest magnitude): coloured ticks
# at the top for the detected spikes (colour = learned kernel), black ticks at
# the bottom for the true ones.
window = slice(20_000, 21_000)
t = np.arange(window.start, window.stop) / 10.0
fig, ax = plt.subplots(figsize=(10, 3.2))
ax.plot(t, long[0, window], "k", lw=0.7)
for events, kernel_set, top in [(detected, cdl.kernels_, True),
                                (true_events, kernels, False)]:  # fmt: skip
    trough = np.abs(kernel_set[:, 0]).argmax(axis=1)
    times = events["position"] + trough[events["kernel"]]
    inside = (times >= window.start) & (times < window.stop)
    for time_, k in zip(times[inside], events["kernel"][inside], strict=True):
        color = f"C{k}" if top else "k"
        span = {"ymin": 0.9} if top else {"ymax": 0.1}
        ax.axvline(time_ / 10.0, color=color, lw=2, **span)
ax.set_xlabel("time [ms]")
ax.set_title("detected spikes (top, colour = kernel) and true spikes (bottom)")
fig.tight_layout()
plt.show()
