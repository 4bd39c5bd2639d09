"""The one parallel layer of skunroll: threads over chunks, BLAS kept serial.

- :data:`N_JOBS`: the ``n_jobs`` parameter constraint (``0`` is an error).
- :func:`n_threads`: how many threads ``n_jobs`` means for ``n_tasks`` tasks
  (:func:`effective_threads`: one inside a dask worker).
- :func:`_thread_pool`: a persistent thread pool per thread count.
- :func:`single_threaded_blas`: limit BLAS to one thread, safe when entered
  from several threads at once (process-wide lock and reference count).
"""

import functools
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from numbers import Integral

from joblib import effective_n_jobs
from sklearn.utils._param_validation import Interval
from threadpoolctl import ThreadpoolController

__all__ = ["N_JOBS", "n_threads", "single_threaded_blas"]

#: ``n_jobs`` constraint: None, -1, -2, ... or a positive count (0 has no meaning)
N_JOBS = [
    Interval(Integral, None, -1, closed="right"),
    Interval(Integral, 1, None, closed="left"),
    None,
]


def check_n_jobs(n_jobs):
    """Raise a ValueError naming ``n_jobs`` for ``0`` or a non-integer."""
    if n_jobs is None:
        return
    if not isinstance(n_jobs, Integral) or isinstance(n_jobs, bool) or n_jobs == 0:
        raise ValueError(
            f"n_jobs must be None, a positive integer or a negative integer "
            f"(-1 means all cores); got n_jobs={n_jobs!r}."
        )


def in_dask_worker():
    """True in a task that a dask worker runs (``distributed.get_worker``)."""
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
    except ValueError:
        return False
    return True


def effective_threads(n_jobs):
    """``joblib.effective_n_jobs(n_jobs)``, but one inside a dask worker.

    A dask worker runs one task per thread, its threads being its cores (its
    nanny sets ``OMP_NUM_THREADS=1``); a fit or a transform that a worker
    runs (``GridSearchCV`` under ``joblib.parallel_config(backend="dask")``,
    :mod:`skunroll.distributed`) therefore stays on its task's thread, so
    that workers do not oversubscribe the machine's cores.
    """
    if in_dask_worker():
        return 1
    return effective_n_jobs(n_jobs)


def n_threads(n_jobs, n_tasks):
    """Number of threads for ``n_tasks`` tasks: ``effective_threads`` capped."""
    check_n_jobs(n_jobs)
    return max(1, min(effective_threads(n_jobs), int(n_tasks)))


@functools.cache
def _thread_pool(n_threads):
    """A persistent pool per thread count.

    joblib's ``Parallel`` builds its pool on every call (about 15 ms here), a
    large share of coding 20,000 samples; the kernels need no more than plain
    threads since they release the GIL. ``n_jobs`` keeps joblib's meaning
    through ``effective_n_jobs``.
    """
    return ThreadPoolExecutor(n_threads, thread_name_prefix="skunroll")


def map_in_order(fn, n_tasks, n_jobs):
    """``[fn(0), ..., fn(n_tasks - 1)]`` on the package's threads (at most
    ``n_jobs``), BLAS on one thread inside; the results come back in task
    order, so sums over them do not depend on ``n_jobs``."""
    n_threads = min(effective_threads(n_jobs), n_tasks)
    with single_threaded_blas():
        if n_threads > 1:
            return list(_thread_pool(n_threads).map(fn, range(n_tasks)))
        return [fn(i) for i in range(n_tasks)]


@functools.cache
def _threadpool_controller():
    return ThreadpoolController()


_blas_lock = threading.Lock()
_blas_state = {"count": 0, "limiter": None}


@functools.cache
def _blas_control_thread():
    """The one thread that sets and restores BLAS limits.

    OpenBLAS (0.3.31 here) does not reliably take a thread count set from one
    thread and restored from another while other threads run BLAS calls: with
    four threads coding concurrently it was left at 1 thread for good. Setting
    and restoring from the same thread, in order, is reliable.
    """
    return ThreadPoolExecutor(1, thread_name_prefix="skunroll-blas")


def _limit_blas():
    return _threadpool_controller().limit(limits=1, user_api="blas")


def _enter_single_threaded():
    with _blas_lock:
        if _blas_state["count"] == 0:
            limiter = _blas_control_thread().submit(_limit_blas).result()
            _blas_state["limiter"] = limiter
        _blas_state["count"] += 1


def _exit_single_threaded():
    with _blas_lock:
        _blas_state["count"] -= 1
        if _blas_state["count"] == 0:
            limiter, _blas_state["limiter"] = _blas_state["limiter"], None
            _blas_control_thread().submit(limiter.restore_original_limits).result()


@contextmanager
def single_threaded_blas():
    """Context manager limiting BLAS to one thread.

    Reentrant and thread-safe: the first thread in limits BLAS to one thread,
    the last one out restores the limits found on entry, whatever the order
    in which overlapping calls from several threads enter and leave.
    """
    _enter_single_threaded()
    try:
        yield
    finally:
        _exit_single_threaded()
