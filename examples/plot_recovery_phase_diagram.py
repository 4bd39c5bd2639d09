"""
=============================================================
Phase diagrams of dictionary recovery: unrolled vs classical
=============================================================

Theory says when a dictionary can be learned back from its sparse codes: the
algorithms of Arora, Ge & Moitra and of Agarwal et al. recover an incoherent
dictionary (mutual coherence :math:`\\mu`) from codes with up to about
:math:`1 / (\\mu \\log n)` non-zeros. Do unrolled networks recover the same
dictionaries as the classical alternating methods?

:func:`skunroll.recovery.recovery_phase_diagram` answers on planted problems.
For each coherence :math:`\\mu` it plants 48 atoms in dimension 32 in pairs at
inner product :math:`\\mu` (so every atom has a near-twin), draws signals
with :math:`s` non-zeros of random sign and magnitude in [1, 2], lets every
method learn 48 atoms from the signals alone, and counts the atoms recovered
within an angle of about 6 degrees. The methods minimise the same lasso cost
(``alpha=0.1``) with the same budget of 15 epochs:

- :class:`skunroll.UnrolledDictionaryLearning` with ``gradient="dec"`` (codes
  held fixed: alternating minimisation through the network), ``"ae-ls"``
  (back-propagation through the 30 unrolled FISTA steps) and ``"auto"``
  (``dec``, then ``ae-ls`` near a solution);
- SPAMS' ``trainDL`` (online dictionary learning, if SPAMS is installed) and
  scikit-learn's ``MiniBatchDictionaryLearning``.

This example runs a small 3 x 3 grid with one seed (one to two minutes on
two cores); ``benchmarks/bench_recovery_phase_diagram.py`` runs 6 x 6 with three
seeds and 4,000 samples, and ``benchmarks/README.md`` records its grids.
"""

# %%
# The methods
# -----------
# Any estimator with ``fit(X)`` and ``components_`` can be compared; it is
# cloned for every run, and its ``random_state`` and (if ``None``)
# ``n_components`` are set by the runner. SPAMS has no estimator, so a few
# lines wrap its ``trainDL``.
import matplotlib.pyplot as plt
import numpy as np
from sklearn.base import BaseEstimator
from sklearn.decomposition import MiniBatchDictionaryLearning

from skunroll import UnrolledDictionaryLearning
from skunroll.recovery import phase_grid, plot_phase_diagram, recovery_phase_diagram


class SpamsTrainDL(BaseEstimator):
    """SPAMS' trainDL: lasso cost with lambda1 = alpha, epochs of minibatches."""

    def __init__(self, n_components=None, alpha=0.1, n_epochs=15, batch_size=128,
                 random_state=None):  # fmt: skip
        self.n_components = n_components
        self.alpha = alpha
        self.n_epochs = n_epochs
        self.batch_size = batch_size
        self.random_state = random_state

    def fit(self, X, y=None):
        import spams

        # SPAMS takes no seed: the seed permutes the samples instead.
        order = np.random.RandomState(self.random_state).permutation(len(X))
        D = spams.trainDL(
            np.asfortranarray(X[order].T), K=self.n_components, lambda1=self.alpha,
            mode=2, batchsize=self.batch_size,
            iter=int(np.ceil(self.n_epochs * len(X) / self.batch_size)),
            numThreads=1, verbose=False,
        )  # fmt: skip
        self.components_ = D.T
        return self


def unrolled(gradient):
    return UnrolledDictionaryLearning(alpha=0.1, gradient=gradient, max_iter=15,
                                      tol=0.0, batch_size=128, n_jobs=1)  # fmt: skip


methods = {
    'skunroll "dec"': unrolled("dec"),
    'skunroll "ae-ls"': unrolled("ae-ls"),
    'skunroll "auto"': unrolled("auto"),
}
try:
    import spams  # noqa: F401

    methods["SPAMS trainDL"] = SpamsTrainDL()
except ImportError:
    print("SPAMS is not installed (pip install spams-bin): left out")
# scikit-learn with coordinate descent: its default, LARS, is about 9x slower.
methods["scikit-learn"] = MiniBatchDictionaryLearning(
    alpha=0.1,
    batch_size=128,
    max_iter=15,
    tol=0.0,
    max_no_improvement=None,
    fit_algorithm="cd",
)

# %%
# The diagram
# -----------
# ``n_jobs=2`` runs two settings at a time; the table has one row per method,
# setting and seed.
table = recovery_phase_diagram(
    methods,
    n_features=32,
    n_components=48,
    sparsities=(1, 3, 6),
    coherences=(0.15, 0.6, 0.9),
    n_samples=2000,
    n_seeds=1,
    n_jobs=2,
    random_state=0,
)
for name in methods:
    sparsities, coherences, grid = phase_grid(table, name)
    rows = table["method"] == name
    print(f"{name}: median fit {np.median(table['fit_time'][rows]):.2f} s; "
          f"recovery rate, sparsity {sparsities.tolist()} (rows) x coherence "
          f"{coherences.tolist()} (columns):\n{grid.round(2)}")  # fmt: skip

# %%
# Recovery rate as colour
# -----------------------
# The dashed line is the order of the Arora-Ge-Moitra bound
# :math:`1 / (\mu \log n)` (with constant 1), the dotted one the sparsity
# :math:`(1 + 1/\mu) / 2` below which a code is the unique sparsest one.
fig = plot_phase_diagram(table)
plt.show()

# %%
# What to read in it
# ------------------
# On this small run (2,000 samples, one seed; rates printed above) the
# unrolled network with the ``dec`` gradient, and ``auto``, recover what
# SPAMS recovers at 1 and 3 non-zeros, far beyond both theory lines, which are
# worst-case bounds. At 6 non-zeros SPAMS, with the same 15 epochs, recovers
# nothing and the network part of the atoms. Two failures: at the highest
# coherence with one non-zero per sample, the network loses one atom of many
# pairs where SPAMS does not; and ``ae-ls`` alone, started from atoms drawn
# from the data, settles on spurious dictionaries everywhere: back-propagating
# through the unrolled steps is a refinement, not a way to reach the
# solution, which is why ``auto`` starts with ``dec``. scikit-learn's minibatch
# algorithm needs many more epochs than 15 on these problems. The 6 x 6 x 3
# benchmark (4,000 samples) and its reading are in ``benchmarks/README.md``.
