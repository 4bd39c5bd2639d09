"""Phase diagrams as images (matplotlib, optional)."""

import numpy as np

from ._phase_diagram import phase_grid
from ._problems import sparsity_bound

_BOUND_STYLES = {
    "agm": ("w--", r"$1 / (\mu \log n)$ (Arora et al.)"),
    "uniqueness": ("w:", r"$(1 + 1/\mu) / 2$ (uniqueness)"),
}


def _import_pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "plot_phase_diagram needs matplotlib, an optional dependency: "
            'python -m pip install matplotlib (or "skunroll[doc]").'
        ) from exc
    return plt


def _draw_bound(ax, rule, sparsities, coherences, n_features):
    """A theory line in the index coordinates of the cells."""
    style, label = _BOUND_STYLES[rule]
    bound = sparsity_bound(coherences, n_features, rule=rule)
    y = np.interp(bound, sparsities, np.arange(len(sparsities)), left=-0.5, right=None)
    y = np.where(bound > sparsities[-1], len(sparsities) - 0.5, y)
    ax.plot(np.arange(len(coherences)), y, style, lw=2, label=label)


def plot_phase_diagram(
    table,
    *,
    value="recovery_rate",
    methods=None,
    bounds=("agm", "uniqueness"),
    aggregate="median",
    annotate=True,
    axes=None,
):
    r"""Draw one phase diagram per method: sparsity x coherence, value as colour.

    Parameters
    ----------
    table : dict of str to array-like, or pandas.DataFrame
        The table of :func:`recovery_phase_diagram`.
    value : str, default="recovery_rate"
        The column shown; ``"recovery_rate"`` and ``"median_error"`` use the
        colour range [0, 1].
    methods : list of str, default=None
        The methods to draw, in this order; ``None`` means all, in the order
        of the table.
    bounds : tuple of {"agm", "uniqueness"}, default=("agm", "uniqueness")
        Theory lines to draw over the cells (see :func:`sparsity_bound`):
        recovery is guaranteed below them (for ``"agm"``, up to a constant).
        The dimension is read from the ``n_features`` column of the table.
    aggregate : {"median", "mean", "min", "max"}, default="median"
        How the seeds of a setting are aggregated (see :func:`phase_grid`).
    annotate : bool, default=True
        Write the value in every cell.
    axes : array-like of matplotlib Axes, default=None
        One Axes per method; ``None`` makes a new figure with a row of them.

    Returns
    -------
    fig : matplotlib.figure.Figure
        The figure of the axes.

    Raises
    ------
    ImportError
        If matplotlib is not installed (it is an optional dependency).
    """
    plt = _import_pyplot()
    names = list(dict.fromkeys(np.asarray(table["method"], dtype=object).tolist()))
    methods = names if methods is None else list(methods)
    if axes is None:
        fig, axes = plt.subplots(
            1,
            len(methods),
            figsize=(3.2 * len(methods) + 1.0, 3.4),
            squeeze=False,
            constrained_layout=True,
        )
        axes = axes.ravel()
    else:
        axes = np.asarray(axes, dtype=object).ravel()
        fig = axes[0].figure
    if len(axes) != len(methods):
        raise ValueError(
            f"axes must hold one Axes per method ({len(methods)}), got {len(axes)}."
        )
    unit_range = value in ("recovery_rate", "median_error")
    n_features = int(np.asarray(table["n_features"])[0]) if bounds else None
    for ax, method in zip(axes, methods, strict=True):
        sparsities, coherences, grid = phase_grid(
            table, method, value=value, aggregate=aggregate
        )
        image = ax.imshow(
            grid,
            origin="lower",
            aspect="auto",
            cmap="viridis",
            vmin=0.0 if unit_range else None,
            vmax=1.0 if unit_range else None,
        )
        if annotate:
            for (i, j), v in np.ndenumerate(grid):
                colour = "k" if unit_range and v > 0.6 else "w"
                ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7,
                        color=colour)  # fmt: skip
        for rule in bounds:
            _draw_bound(ax, rule, sparsities, coherences, n_features)
        ax.set_xticks(range(len(coherences)), [f"{c:.2g}" for c in coherences])
        ax.set_yticks(range(len(sparsities)), [str(s) for s in sparsities])
        ax.set_xlim(-0.5, len(coherences) - 0.5)
        ax.set_ylim(-0.5, len(sparsities) - 0.5)
        ax.set_xlabel(r"mutual coherence $\mu$")
        ax.set_title(method, fontsize=10)
    axes[0].set_ylabel("non-zeros per sample $s$")
    if bounds:
        axes[0].legend(loc="upper right", fontsize=7, framealpha=0.5)
    fig.colorbar(image, ax=list(axes), label=value.replace("_", " "), shrink=0.9)
    return fig
