"""
====================================================
Planted dictionaries: coherence, Welch bound and RIP
====================================================

Whether sparse codes can be recovered at all depends on the geometry of the
dictionary, because atoms that look alike are easy to confuse.
:mod:`skunroll.datasets` plants three kinds of dictionaries, shown here with
256 unit-norm atoms in dimension 64:

- ``"gaussian"``: random atoms, the textbook case of compressed sensing;
- ``"dct"``: an overcomplete cosine dictionary, structured and smooth;
- ``"incoherent"``: atoms pushed apart until no two of them correlate more
  than a target ``coherence``.

We look at them through :mod:`skunroll.metrics`: the mutual coherence against
the Welch bound, the distribution of the correlations between atoms, and a
Monte-Carlo estimate of the restricted isometry constant.
"""

# %%
# Three dictionaries
# ------------------
import matplotlib.pyplot as plt
import numpy as np

from skunroll.datasets import make_dictionary
from skunroll.metrics import mutual_coherence, restricted_isometry_constant

n_components, n_features = 256, 64
dictionaries = {
    "gaussian": make_dictionary(n_components, n_features, random_state=0),
    "dct": make_dictionary(n_components, n_features, kind="dct"),
    "incoherent": make_dictionary(
        n_components, n_features, kind="incoherent", coherence=0.15, random_state=0
    ),
}
welch = np.sqrt((n_components - n_features) / (n_features * (n_components - 1)))
print(f"Welch bound: {welch:.3f}")
for kind, D in dictionaries.items():
    print(f"{kind:>10}: mutual coherence {mutual_coherence(D):.3f}")

# %%
# What DCT atoms look like
# ------------------------
# Atom ``k`` of the overcomplete DCT dictionary is a cosine of frequency
# ``pi * k / 256`` sampled at 64 points. There are four times more atoms than
# samples, so the frequencies of neighbouring atoms differ by a quarter of a
# DCT-II step. Over 64 samples such neighbours are almost the same curve, which
# explains the DCT dictionary's coherence of nearly 1. The closest pairs are
# at the two ends of the spectrum (atoms 0 and 1, and atoms 254 and 255).
D_dct = dictionaries["dct"]
neighbours = np.abs(np.einsum("ij,ij->i", D_dct[:-1], D_dct[1:]))
fig, ax = plt.subplots(figsize=(8, 3.6))
for offset, atoms in enumerate([(4, 5), (40, 41), (100,), (250,)]):
    for k, style in zip(atoms, ("-", "--"), strict=False):
        ax.plot(D_dct[k] - 0.5 * offset, style, marker=".", ms=4, color=f"C{offset}")
    name = " and ".join(str(k) for k in atoms)
    ax.text(65, -0.5 * offset, f"atom{'s' if len(atoms) > 1 else ''} {name}",
            va="center", fontsize=9)  # fmt: skip
ax.set(
    xlabel="feature (sample index)",
    xticks=range(0, 64, 16),
    yticks=[],
    xlim=(-1, 80),
    title=(
        "Overcomplete DCT atoms: neighbours correlate at "
        f"{neighbours.min():.2f} to {neighbours.max():.3f}"
    ),
)
for side in ("left", "right", "top"):
    ax.spines[side].set_visible(False)
ax.spines["bottom"].set_bounds(0, n_features - 1)
fig.tight_layout()
plt.show()

# %%
# Correlations between atoms, and restricted isometry
# ---------------------------------------------------
# Left: the histogram of :math:`|\langle d_i, d_j \rangle|` over all pairs of
# distinct atoms. The largest value is the mutual coherence, marked by a
# triangle. No dictionary of this size can have a mutual coherence below the
# Welch bound (dashed line). The incoherent dictionary piles its correlations
# up just below its target, 0.15, about 1.4 times the bound. The Gaussian one
# has a tail up to 0.5. The DCT one has clusters of nearly parallel neighbours.
#
# Right: the restricted isometry constant :math:`\delta_s`, the largest
# deviation from 1 of :math:`\|z D\|^2` over unit-norm ``s``-sparse codes
# ``z``. The smaller it is, the more every small set of atoms behaves like an
# orthonormal basis. It is estimated from random supports, so the estimate is
# a lower bound. If :math:`\delta_{2s} < \sqrt{2} - 1` (dotted line), l1
# minimisation recovers every ``s``-sparse code (Candès, 2008). Where an
# estimate crosses the line, that guarantee is certainly lost. Recovery itself
# can still succeed for most codes, as the other example shows with the
# Gaussian dictionary at ``s = 5``.
sparsities = [2, 3, 4, 6, 8, 12, 16, 24, 32]
rip = {
    kind: [
        restricted_isometry_constant(D, s, n_trials=300, random_state=0)
        for s in sparsities
    ]
    for kind, D in dictionaries.items()
}

fig, (ax_hist, ax_rip) = plt.subplots(1, 2, figsize=(11, 4.2))
bins = np.linspace(0, 1, 51)
for i, (kind, D) in enumerate(dictionaries.items()):
    pairs = np.abs(D @ D.T)[np.triu_indices(n_components, k=1)]
    ax_hist.hist(pairs, bins=bins, histtype="step", lw=2, color=f"C{i}", label=kind)
    ax_hist.plot(
        mutual_coherence(D),
        0.0,
        "v",
        color=f"C{i}",
        ms=10,
        clip_on=False,
        transform=ax_hist.get_xaxis_transform(),
    )
    ax_rip.plot(sparsities, rip[kind], marker="o", color=f"C{i}", label=kind)
ax_hist.axvline(welch, color="k", ls="--", label=f"Welch bound ({welch:.3f})")
ax_hist.plot([], [], "v", color="gray", ms=8, label="mutual coherence")
ax_hist.set(
    yscale="log",
    xlabel=r"$|\langle d_i, d_j \rangle|$",
    ylabel="number of pairs of atoms",
    title="Correlations between atoms",
)
ax_hist.legend()
ax_rip.axhline(np.sqrt(2) - 1, color="k", ls=":", label=r"$\sqrt{2} - 1$")
ax_rip.set(
    xlabel="sparsity s",
    ylabel=r"$\delta_s$ (Monte-Carlo lower bound)",
    title="Restricted isometry constant",
    ylim=(0, None),
)
ax_rip.grid(alpha=0.3)
ax_rip.legend()
fig.tight_layout()
plt.show()
