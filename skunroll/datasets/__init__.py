"""Simulated dictionaries and sparse-coded data for dictionary-recovery studies.

Dictionaries hold their atoms as rows, with shape ``(n_components,
n_features)``, and data are generated as ``X = codes @ dictionary + noise``.

* :func:`make_dictionary` builds Gaussian, overcomplete-DCT or incoherent
  dictionaries (the latter with a prescribed mutual coherence).
* :func:`make_sparse_coded_data` draws sparse codes and noisy observations
  from a given dictionary.
* :func:`make_spike_recording` and :func:`make_convolutional_data` simulate
  convolutional problems (``datasets/_signals.py``).
* :func:`make_dictionary_mixture` draws clusters, each sparsely coded on a
  dictionary of its own (the union-of-dictionaries model of MixMate).
* :func:`make_sae_hierarchy` and :func:`make_archetypal_data` are the toy data
  of sparse autoencoders: parent concepts with mutually exclusive children at
  a chosen coherence, and sparse convex mixtures of planted archetypes
  (``datasets/_sae.py``).
* :func:`make_multitask_measurements` draws clustered multi-task compressed
  sensing through a subsampled DCT, the problem of ``ClusteredMultiTaskSBL``
  (``datasets/_multitask.py``).
"""

from ._dense import make_dictionary, make_dictionary_mixture, make_sparse_coded_data
from ._multitask import make_multitask_measurements
from ._sae import make_archetypal_data, make_sae_hierarchy
from ._signals import make_convolutional_data, make_spike_counts, make_spike_recording

__all__ = [
    "make_archetypal_data",
    "make_convolutional_data",
    "make_dictionary",
    "make_dictionary_mixture",
    "make_multitask_measurements",
    "make_sae_hierarchy",
    "make_sparse_coded_data",
    "make_spike_counts",
    "make_spike_recording",
]
