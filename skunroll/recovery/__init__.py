"""Evaluate dictionary recovery: planted problems, phase diagrams, figures.

* :func:`make_coherent_dictionary` plants a dictionary of a prescribed mutual
  coherence; :func:`sparsity_bound` and :func:`recovery_regime` give the
  sparsities and coherences where theory predicts recovery.
* :func:`recovery_phase_diagram` fits any scikit-learn-style estimators (with
  a ``components_`` attribute) on planted problems over a grid of sparsities
  and coherences and returns a tidy table of recovery rates, atom errors and
  times; :func:`phase_grid` turns it into grids.
* :func:`plot_phase_diagram` draws the diagrams (needs matplotlib).

See :ref:`recovery` in the user guide.
"""

from ._phase_diagram import TABLE_COLUMNS, phase_grid, recovery_phase_diagram
from ._plot import plot_phase_diagram
from ._problems import make_coherent_dictionary, recovery_regime, sparsity_bound

__all__ = [
    "TABLE_COLUMNS",
    "make_coherent_dictionary",
    "phase_grid",
    "plot_phase_diagram",
    "recovery_phase_diagram",
    "recovery_regime",
    "sparsity_bound",
]
