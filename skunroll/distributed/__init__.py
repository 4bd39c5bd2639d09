"""Training and encoding on a Dask cluster (``pip install "skunroll[dask]"``).

- :func:`fit`: data-parallel training of ``UnrolledDictionaryLearning`` and
  ``MixMateClustering`` on the rows of a ``dask.array`` held on the workers;
  equal to a local fit on the same minibatches up to rounding.
- :func:`transform`: lazy encoding of the rows of a dask array by any fitted
  skunroll transformer, a dask array out;
- :func:`code_maps` and :func:`detect_events`: lazy encoding of long signals
  by a fitted ``ConvolutionalDictionaryLearning``, in pieces along time
  extended by the encoder's reach (equal to encoding the whole signal); the
  events as a dask dataframe;
- :func:`partial_fit_chunks`: streaming ``partial_fit`` over chunks of rows of
  an array on disk (``numpy.memmap``, zarr, h5py), without dask.

Inside a dask worker, skunroll's own thread pool is capped at one thread per
task (see :func:`skunroll._parallel.n_threads`), the convention of dask's
nanny (``OMP_NUM_THREADS=1``): a worker's threads are its cores.
"""

from ._encode import code_maps, detect_events, transform
from ._stream import partial_fit_chunks
from ._train import DistributedFitStats, Rows, fit

__all__ = [
    "DistributedFitStats",
    "Rows",
    "code_maps",
    "detect_events",
    "fit",
    "partial_fit_chunks",
    "transform",
]
