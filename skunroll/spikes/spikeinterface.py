"""SpikeInterface adapter: sort a ``BaseRecording`` into a ``NumpySorting``.

Needs the optional ``spikes`` extra (``pip install "skunroll[spikes]"``);
spikeinterface is imported when :func:`sort_recording` is called, not when
this module is.
"""

import numpy as np

from .sorter import SpikeSorter


def _spikeinterface():
    try:
        import spikeinterface.core as sc
    except ImportError as exc:  # pragma: no cover - the extra is in the test deps
        raise ImportError(
            "sort_recording needs spikeinterface: pip install 'skunroll[spikes]'"
        ) from exc
    return sc


def sort_recording(recording, sorter=None, **params):
    """Sort a SpikeInterface recording with :class:`SpikeSorter`.

    The traces are read in µV when the recording has gains
    (``return_in_uV=True``), else as stored; the sampling frequency is the
    recording's. A recording of several segments is sorted as one (its
    segments concatenated, so the units are shared) and its spikes are
    returned per segment.

    Parameters
    ----------
    recording : spikeinterface.core.BaseRecording
        The recording.
    sorter : SpikeSorter, default=None
        A sorter whose parameters to use (``sampling_frequency`` is set from
        the recording); it is fitted in place, so its templates, kernels and
        noise levels can be read afterwards. None builds one from ``params``.
    **params : dict
        Parameters of :class:`SpikeSorter` when ``sorter`` is None.

    Returns
    -------
    sorting : spikeinterface.core.NumpySorting
        One unit per sorted unit (ids 0 to ``n_units_ - 1``), spike times in
        samples from the start of each segment.
    """
    sc = _spikeinterface()
    if not isinstance(recording, sc.BaseRecording):
        raise TypeError(
            f"recording must be a spikeinterface BaseRecording; got "
            f"{type(recording).__name__}."
        )
    fs = float(recording.get_sampling_frequency())
    if sorter is None:
        sorter = SpikeSorter(**params)
    elif params:
        raise ValueError("give either sorter or SpikeSorter parameters, not both.")
    sorter.set_params(sampling_frequency=fs)
    scaled = bool(recording.has_scaleable_traces())
    n_seg = recording.get_num_segments()
    chunks = [
        recording.get_traces(segment_index=i, return_in_uV=scaled) for i in range(n_seg)
    ]
    times, labels = sorter.fit_predict(chunks)
    bounds = np.cumsum([0] + [len(c) for c in chunks])
    samples, units = [], []
    for i in range(n_seg):
        sel = (times >= bounds[i]) & (times < bounds[i + 1])
        samples.append(times[sel] - bounds[i])
        units.append(labels[sel])
    sorting = sc.NumpySorting.from_samples_and_labels(
        samples, units, fs, unit_ids=np.arange(sorter.n_units_)
    )
    return sorting
