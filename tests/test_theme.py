"""The book's look (ckt.book.notebook.theme): a colour-blind-safe palette, and a marker and a hatch per regime, so
no figure needs colour to be read."""

import matplotlib
import numpy as np
import pandas as pd

from ckt.book import notebook as nb
from ckt.book import style

matplotlib.use("Agg")


def test_each_line_gets_the_next_colour_and_its_own_marker():
    import matplotlib.pyplot as plt

    nb.theme()
    fig, ax = plt.subplots()
    lines = [ax.plot([0, 1], [i, i])[0] for i in range(3)]
    assert [matplotlib.colors.to_hex(line.get_color()) for line in lines] == [c.lower() for c in style.OKABE_ITO[:3]]
    assert [line.get_marker() for line in lines] == list(style.MARKERS[:3])
    assert len(set(style.OKABE_ITO)) == len(style.OKABE_ITO) == len(set(style.MARKERS)) == len(style.REGIMES)
    plt.close(fig)


def test_bars_give_each_regime_its_colour_and_hatch():
    import matplotlib.pyplot as plt

    summary = pd.DataFrame({"regime": ["ce", "ckt"], "acc_mean": [80.0, 82.0], "acc_lo": [79.0, 81.0],
                            "acc_hi": [81.0, 83.0]})
    fig, ax = plt.subplots()
    nb.bars(ax, summary, "regime", ["acc"])
    ce, ckt = ax.patches
    assert matplotlib.colors.to_hex(ce.get_facecolor()) == style.REGIME_COLOURS["ce"].lower()
    assert (ce.get_hatch() or "", ckt.get_hatch()) == (style.REGIME_HATCHES["ce"], style.REGIME_HATCHES["ckt"])
    assert style.REGIME_HATCHES["ce"] != style.REGIME_HATCHES["ckt"] and np.isclose(ckt.get_height(), 82.0)
    plt.close(fig)
