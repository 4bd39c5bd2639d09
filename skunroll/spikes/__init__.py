"""Spike sorting: :class:`SpikeSorter` (convolutional dictionary learning,
deconvolution by the unrolled encoder, and amplitude clustering of every
kernel's spikes) and, with the optional ``spikes`` extra, the SpikeInterface
adapter :func:`skunroll.spikes.spikeinterface.sort_recording`."""

from .sorter import SpikeSorter

__all__ = ["SpikeSorter"]
