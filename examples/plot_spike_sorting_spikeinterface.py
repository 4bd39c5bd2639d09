"""
==================================================
Spike sorting a SpikeInterface ground-truth recording
==================================================

:class:`~skunroll.spikes.SpikeSorter` on a recording simulated by
SpikeInterface (``spikeinterface.core.generate_ground_truth_recording``: a
4-channel probe, 5 neurons, Gaussian noise of 5 µV), scored by SpikeInterface's
own ``compare_sorter_to_ground_truth``. The sorter works in units of each
channel's robust noise level, learns one multichannel kernel per spike shape
with :class:`~skunroll.ConvolutionalDictionaryLearning`, deconvolves the
recording (coordinate descent on the lasso of the kernels) and splits every
kernel's spikes by amplitude and footprint. Needs the ``spikes`` extra
(``pip install "skunroll[spikes]"``).
"""

# %%
# Sorting
# -------
import time

import matplotlib.pyplot as plt
import numpy as np
import spikeinterface.core as sc
from spikeinterface.comparison import compare_sorter_to_ground_truth

from skunroll.spikes import SpikeSorter
from skunroll.spikes.spikeinterface import sort_recording

recording, ground_truth = sc.generate_ground_truth_recording(
    durations=[20.0], sampling_frequency=30000.0, num_channels=4, num_units=5, seed=0
)
sorter = SpikeSorter(random_state=0, n_jobs=2)
start = time.perf_counter()
sorting = sort_recording(recording, sorter)
print(f"sorted in {time.perf_counter() - start:.1f} s: {sorter.n_units_} units")
comparison = compare_sorter_to_ground_truth(ground_truth, sorting, exhaustive_gt=True)
print(comparison.get_performance()[["accuracy", "precision", "recall"]])

# %%
# Ground-truth unit 2 is almost invisible (its peak-to-peak amplitude is about
# 1.5 times the noise); no sorter finds it.
#
# Traces and sorted spikes
# ------------------------
# 50 ms of the four channels; every sorted spike is marked at its reference
# sample (the trough of its unit's largest channel), coloured by unit.
traces = recording.get_traces()
fs = recording.get_sampling_frequency()
window = slice(int(2.0 * fs), int(2.05 * fs))
t_ms = np.arange(window.start, window.stop) / fs * 1e3
offset = 8 * sorter.noise_level_.max()
fig, ax = plt.subplots(figsize=(10, 4))
for c in range(traces.shape[1]):
    ax.plot(t_ms, traces[window, c] - c * offset, "k", lw=0.6)
inside = (sorter.spike_times_ >= window.start) & (sorter.spike_times_ < window.stop)
for time_, unit in zip(
    sorter.spike_times_[inside], sorter.labels_[inside], strict=True
):
    ax.axvline(time_ / fs * 1e3, color=f"C{unit % 10}", lw=1.5, alpha=0.7)
ax.set_xlabel("time [ms]")
ax.set_yticks([])
ax.set_title("traces (channels top to bottom) and sorted spikes (colour = unit)")
fig.tight_layout()
plt.show()

# %%
# Templates
# ---------
# Every unit's mean waveform on the four channels, in µV, with the spike time
# (index ``n_before_``) marked. Units with one shape and different amplitudes
# are separate units here, because every kernel's spikes are split by
# amplitude after the deconvolution.
n_units = sorter.n_units_
fig, axes = plt.subplots(
    1, n_units, figsize=(2.2 * n_units, 3), sharey=True, squeeze=False
)
t_template = (np.arange(sorter.templates_.shape[1]) - sorter.n_before_) / (
    fs / sorter.decimation_
)
for u, ax in enumerate(axes[0]):
    for c in range(sorter.templates_.shape[2]):
        ax.plot(t_template * 1e3, sorter.templates_[u, :, c], lw=1)
    ax.axvline(0, color="k", lw=0.5)
    ax.set_title(f"unit {u} ({np.sum(sorter.labels_ == u)} spikes)", fontsize=9)
    ax.set_xlabel("ms")
axes[0, 0].set_ylabel("µV")
fig.tight_layout()
plt.show()
