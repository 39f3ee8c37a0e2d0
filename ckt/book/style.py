"""The book's look: one colour-blind-safe palette, and a marker and a hatch per colour, in every chapter."""

from __future__ import annotations

from ..config import REGIMES as CONFIG_REGIMES

# Okabe & Ito's colour-blind-safe palette, and one marker per colour: a line or bar differs without colour too.
OKABE_ITO = ("#E69F00", "#56B4E9", "#009E73", "#D55E00", "#CC79A7", "#0072B2", "#F0E442", "#000000")
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
HATCHES = ("", "//", "\\\\", "..", "oo", "++", "--", "||")
REGIMES = list(CONFIG_REGIMES)  # ckt.config.REGIMES, in its order
REGIME_COLOURS = dict(zip(REGIMES, OKABE_ITO))  # one colour, one marker, one hatch per regime
REGIME_HATCHES = dict(zip(REGIMES, HATCHES))


def theme() -> None:
    """The book's look in every chapter: seaborn's whitegrid, and matplotlib's cycle of :data:`OKABE_ITO` colours
    each with its own marker (:data:`MARKERS`), so the n-th line of a plot has the n-th colour and marker."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib import cycler  # matplotlib's own re-export of the cycler package

    sns.set_theme(style="whitegrid", context="notebook", palette=list(OKABE_ITO))
    plt.rcParams["axes.prop_cycle"] = cycler(color=list(OKABE_ITO)) + cycler(marker=list(MARKERS))
