"""The guard that guards (issue 25 §3) and collapse wired through (§2), on hand-made results.

Every chooser takes :class:`ckt.data.Validated` numbers and refuses numbers measured on test or held-out data;
a results table with a collapsed run marks it in the rendered table and the figures, the chooser skips it, and
the sentence beside the choice names it. Every expected value is worked out by hand in the test's docstring.
"""

import re

import matplotlib
import numpy as np
import pandas as pd
import pytest

from ckt.book import notebook as nb
from ckt.data import Validated
from ckt.errors import CktError, DataError
from ckt.experiments.sweep import save_items
from ckt.verdicts import best_across_metrics, interior_peak, pick_on_validation
from ckt.verdicts.budget import pick_by_budget
from ckt.verdicts.erosion import pick_eroding

matplotlib.use("Agg")

HELD_OUT = ["test", "shift", "heldout", "held-out"]
PATCH = {m: np.array([v, v]) for m, v in {"refusal": 80.0, "jailbreak_refusal": 60.0, "over_refusal": 6.0,
                                         "helpfulness_loglik": -1.0}.items()}  # per validation prompt
BASE = {"over_refusal": np.array([6.0, 6.0]), "helpfulness_loglik": np.array([-1.0, -1.0])}
USER_FT = {2e-4: {"contaminated": {"refusal": np.zeros(30), "jailbreak_refusal": np.zeros(10)},
                  "oracle": {"refusal": np.full(30, 100.0), "jailbreak_refusal": np.full(10, 100.0)}}}


def refused(what, source):
    return "^" + re.escape(f"choosing {what} was handed numbers from the {source} data: choose on validation numbers "
                           f"and read {source} data only to report") + "$"


ITEMS = {w: np.full((2, 4), 70.0 + w) for w in (0.0, 1.0, 2.0)}  # test scores, read only after a choice
ARMS = {"ckt": {"accuracy": np.full((2, 4), 80.0)}, "ce": {"accuracy": np.full((2, 4), 78.0)}}

# Each chooser of the book, called as the chapters call it, on numbers from a given source.
CHOOSERS = {
    "pick_on_validation": (lambda src: pick_on_validation(Validated({"a": 1.0, "b": 2.0}, src)),
                           "a setting on validation means"),
    "interior_peak": (lambda src: interior_peak("accuracy", [0.0, 1.0, 2.0],
                                                Validated({0.0: 1.0, 1.0: 2.0, 2.0: 0.0}, src), ITEMS)[0],
                      "a setting on validation means"),
    "best_across_metrics": (lambda src: best_across_metrics("ckt", ARMS, Validated({a: {"accuracy": 1.0} for a in ARMS},
                                                                                   src), ["accuracy"])[0].label,
                            "a setting on validation means"),
    "pick_by_budget": (lambda src: pick_by_budget(Validated({"p": PATCH}, src), Validated(BASE, "validation"))[0],
                       "a fine-tune to ship"),
    "pick_by_budget (base)": (lambda src: pick_by_budget(Validated({"p": PATCH}, "validation"),
                                                         Validated(BASE, src))[0],
                              "a fine-tune to ship (the base model's scores)"),
    "pick_eroding": (lambda src: pick_eroding(Validated(USER_FT, src))[0], "the user's fine-tune"),
}
CHOSEN = {"pick_on_validation": "b", "interior_peak": 1.0, "best_across_metrics": "ckt vs ce",
          "pick_by_budget": "p", "pick_by_budget (base)": "p", "pick_eroding": 2e-4}


@pytest.mark.parametrize("source", HELD_OUT)
@pytest.mark.parametrize("chooser", list(CHOOSERS))
def test_every_chooser_refuses_test_and_held_out_numbers(chooser, source):
    call, what = CHOOSERS[chooser]
    with pytest.raises(DataError, match=refused(what, source)):
        call(source)


BARE = {"pick_on_validation": lambda: pick_on_validation({"a": 1.0}),
        "interior_peak": lambda: interior_peak("accuracy", [0.0, 1.0, 2.0], {0.0: 1.0, 1.0: 2.0, 2.0: 0.0}, ITEMS),
        "best_across_metrics": lambda: best_across_metrics("ckt", ARMS, {"ce": {"accuracy": 1}}, ["accuracy"]),
        "pick_by_budget": lambda: pick_by_budget({"p": PATCH}, Validated(BASE, "validation")),
        "pick_by_budget (base)": lambda: pick_by_budget(Validated({"p": PATCH}, "validation"), BASE),
        "pick_eroding": lambda: pick_eroding(USER_FT)}


@pytest.mark.parametrize("chooser", list(CHOOSERS))
def test_every_chooser_refuses_numbers_without_provenance(chooser):
    """A bare mapping says nothing about where its numbers came from: refused, however plausible."""
    what = CHOOSERS[chooser][1]
    with pytest.raises(DataError, match=f"^choosing {re.escape(what)} was handed a bare dict of unknown provenance: "
                                        r"pass Validated\(values, source='val'\) built from validation numbers$"):
        BARE[chooser]()


@pytest.mark.parametrize("source", ["val", "validation"])
@pytest.mark.parametrize("chooser", list(CHOOSERS))
def test_the_same_numbers_from_validation_are_chosen_on(chooser, source):
    """The validation split ("val") and the LLM chapters' validation prompt sets and mixes ("validation"): the
    argmax, 2 > 1 ("b"; the interior 1.0); the only rival ("ce"); the only patch, inside its margins ("p")."""
    assert CHOOSERS[chooser][0](source) == CHOSEN[chooser]


def test_a_source_nobody_declared_is_an_error_when_the_numbers_are_labelled():
    with pytest.raises(DataError, match="^unknown source 'valid' for numbers a choice reads: name the split or prompt "
                                        "set they were measured on, one of val, validation, test, shift, heldout, "
                                        "held-out$"):
        Validated({"a": 1.0}, "valid")
    assert isinstance(DataError("x"), CktError)


def test_derived_numbers_keep_their_source_and_their_collapsed_settings():
    v = Validated({"a": 1.0, "b": 2.0, "c": 3.0}, "test", collapsed={"b", "c"})
    d = v.derive({"a": 1.0, "b": 2.0})
    assert (d.source, d.collapsed) == ("test", frozenset({"b"}))


def test_the_guard_still_stops_a_chooser_that_reads_the_test_split(benchmark):
    """Provenance is checked first; then, while choosing, reading the test split raises as before."""
    from ckt.data import load_split

    class Peeking(dict):
        def __iter__(self):
            load_split("test")
            return super().__iter__()

    with pytest.raises(DataError, match="test split was read while choosing a setting on validation means"):
        pick_on_validation(Validated(Peeking(a=1.0), "val"))


# --- a smoke-size results table with a seeded collapsed run ------------------------------------------------------

def results(tmp_path, collapse_at=1.0, split="val"):
    """Three weights × two seeds, as run_sweep returns them, with per-item scores on disk. Validation overall safety
    is 70 / 80 / 60 at w = 0 / 1 / 4 (w = 1 the argmax); seed 1 of w = ``collapse_at`` predicts one class on
    ``split`` (classes 1, macro-F1 = 100/3: F1 = 2/3 on the class predicted, 0 on the other)."""
    table = tmp_path / "sweep.csv"
    rows = []
    for w, val in ((0.0, 70.0), (1.0, 80.0), (4.0, 60.0)):
        for seed in (0, 1):
            rid = f"w{w:g}s{seed}"
            save_items(table, rid, {"overall_safety": np.full(4, val - 5.0), "accuracy": np.full(4, 75.0)})
            down = w == collapse_at and seed == 1
            row = {"run_id": rid, "p_w_kd": w, "seed": seed, "overall_safety": val - 5.0, "accuracy": 75.0,
                   "val_overall_safety": val, "val_macro_f1": 75.0, "val_predicted_classes": 2, "macro_f1": 75.0,
                   "predicted_classes": 2}
            if down:
                prefix = "val_" if split == "val" else ""
                row.update({f"{prefix}macro_f1": 100 / 3, f"{prefix}predicted_classes": 1})
            rows.append(row)
    return pd.DataFrame(rows), table


def test_the_rendered_table_marks_the_collapsed_run(tmp_path):
    """The w = 1 row reads "1 of 2 seeds" in a "collapsed" column of the HTML the book shows; the others are blank."""
    records, table = results(tmp_path)
    summary = nb.intervals(records, "p_w_kd", ["overall_safety"], table)
    assert list(summary["collapsed"]) == [0, 1, 0]
    shown = nb.ci_table(summary, ["p_w_kd"], ["overall_safety"])
    assert list(shown["collapsed"]) == ["", "1 of 2 seeds", ""]
    html = shown.to_html()
    assert "<th>collapsed</th>" in html and "<td>1 of 2 seeds</td>" in html
    assert html.index("<td>1.0</td>") < html.index("1 of 2 seeds") < html.index("<td>4.0</td>")  # on w = 1's row


def test_a_table_without_collapse_is_unchanged(tmp_path):
    records, table = results(tmp_path, collapse_at=None)
    summary = nb.intervals(records, "p_w_kd", ["overall_safety"], table)
    assert list(nb.ci_table(summary, ["p_w_kd"], ["overall_safety"]).columns) == ["p_w_kd", "overall_safety"]


def test_the_figures_mark_the_collapsed_point_and_bar(tmp_path):
    """plot_ci: one red ✕ at (1, 75), the w = 1 mean on test, labelled for the legend; bars: w = 1 hatched."""
    import matplotlib.pyplot as plt

    records, table = results(tmp_path)
    summary = nb.intervals(records, "p_w_kd", ["overall_safety", "accuracy"], table)
    fig, ax = plt.subplots()
    nb.plot_ci(ax, summary, "p_w_kd", "overall_safety")
    nb.plot_ci(ax, summary, "p_w_kd", "accuracy")
    marks = [c for c in ax.collections if c.get_label().lstrip("_") == nb.COLLAPSED]
    assert [m.get_offsets().tolist() for m in marks] == [[[1.0, 75.0]], [[1.0, 75.0]]]
    assert [m.get_label() for m in marks] == [nb.COLLAPSED, "_" + nb.COLLAPSED]  # one legend entry
    fig2, ax2 = plt.subplots()
    nb.bars(ax2, summary.assign(p_w_kd=summary["p_w_kd"].astype(str)), "p_w_kd", ["overall_safety", "accuracy"])
    hatches = {c.get_label(): {p.get_hatch() for p in c.patches} for c in ax2.containers if hasattr(c, "patches")}
    assert hatches == {"0.0": {None}, "1.0 (collapsed)": {"xx"}, "4.0": {None}}
    plt.close(fig), plt.close(fig2)


def test_the_chooser_skips_the_setting_that_collapsed_on_validation(tmp_path):
    """w = 1 has the best validation mean (80) but a run collapsed there: the choice is w = 0 (70 > 60)."""
    records, _ = results(tmp_path)
    val = nb.val_means(records, "p_w_kd", "overall_safety")
    assert (val.values, val.source, val.collapsed) == ({0.0: 70.0, 1.0: 80.0, 4.0: 60.0}, "val", {1.0})
    assert pick_on_validation(val) == 0.0
    clean, _ = results(tmp_path / "clean", collapse_at=None)
    assert pick_on_validation(nb.val_means(clean, "p_w_kd", "overall_safety")) == 1.0  # without it: the argmax


def test_collapse_on_test_alone_is_marked_but_never_read_by_a_choice(tmp_path):
    """Seed 1 of w = 1 collapses on the test split only: the table marks it, the sentence says "test split only",
    and the choice, which reads validation numbers, still takes w = 1."""
    records, table = results(tmp_path, split="test")
    assert list(nb.intervals(records, "p_w_kd", ["accuracy"], table)["collapsed"]) == [0, 1, 0]
    assert pick_on_validation(nb.val_means(records, "p_w_kd", "overall_safety")) == 1.0
    assert nb.collapse_sentence(records, "p_w_kd", "w_KD = {:g}") == (
        "runs collapsed to a single predicted class (or macro-F1 at or below chance) at w_KD = 1 (1 of 2 seeds, on the "
        "test split only); a setting with a run collapsed on validation is never chosen")


def test_the_sentence_names_the_collapsed_setting(tmp_path):
    records, _ = results(tmp_path)
    assert nb.collapse_sentence(records, "p_w_kd", "w_KD = {:g}") == (
        "runs collapsed to a single predicted class (or macro-F1 at or below chance) at w_KD = 1 (1 of 2 seeds); a "
        "setting with a run collapsed on validation is never chosen")
    clean, _ = results(tmp_path / "clean", collapse_at=None)
    assert nb.collapse_sentence(clean, "p_w_kd") == "no run collapsed to a single predicted class"


def test_numbers_read_from_the_test_columns_carry_test_provenance(tmp_path):
    """split_means reads ``overall_safety`` (test) instead of ``val_overall_safety`` and says so: refused."""
    records, _ = results(tmp_path)
    test = nb.split_means(records, "p_w_kd", "overall_safety", "test")
    assert (test.values, test.source) == ({0.0: 65.0, 1.0: 75.0, 4.0: 55.0}, "test")
    with pytest.raises(DataError, match=refused("a setting on validation means", "test")):
        pick_on_validation(test)
    nested = nb.val_means(records, "p_w_kd", ["overall_safety", "macro_f1"])
    assert nested.values[1.0] == {"overall_safety": 80.0, "macro_f1": (75.0 + 100 / 3) / 2}
