"""The narrative pages (intro, method, rerun, exercises) say only what the code declares (issue 25 §5).

Every fact the code decides is pasted from :func:`ckt.book.narrative.facts` through the page's front matter,
and the committed pages are what ``--sync`` writes; a stale claim typed by hand (a seed count no chapter
declares, a Student-t interval, an interval over seeds alone) is caught by :func:`stale_claims`, shown here
on the very sentences the book used to print. Expected strings are written by hand."""

from dataclasses import replace

import pytest

from ckt.book import narrative
from ckt.book.chapters import CHAPTERS, ROOT, Chapter, Knob
from ckt.core.losses import KD_FORMS

PAGES = [ROOT / page for page in narrative.PAGES]


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_each_narrative_page_is_what_a_sync_writes(path):
    text = path.read_text(encoding="utf-8")
    assert narrative.synced_page(text) == text, "run: python -m ckt.book.build --sync"


@pytest.mark.parametrize("path", [*PAGES, *(ch.path for ch in CHAPTERS.values())], ids=lambda p: p.name)
def test_no_narrative_page_nor_chapter_prose_makes_a_stale_claim(path):
    assert narrative.stale_claims(path.read_text(encoding="utf-8")) == []


# the sentences the book printed before (issue 25): each is caught
@pytest.mark.parametrize("sentence, caught", [
    ("| statistics | every number is a mean with a 95% Student-t confidence interval over seeds | every chapter |",
     ["Student-t", "interval over seeds"]),
    ("- The experiment chapters each run one study of the paper at 4 seeds.", ["4 seeds"]),
    ("add `-p seeds \"[0]\"` for a quicker first look, then go back to four seeds before drawing a conclusion.",
     ["four seeds"]),
    ("Five seeds are enough here.", []),  # chapter 06 declares 5
    ("With one seed there is no interval.", []),  # one seed is the no-interval case, not a declaration
    ("The intervals over seeds and test items are wide.", []),  # seeds *and* items: the book's intervals
    ("Run `-p seeds \"[0, 1, 2, 3]\"` (4 seeds is `[0, 1, 2, 3]`)", ["4 seeds"]),  # code is skipped, prose is not
])
def test_stale_claims_catches_the_old_sentences(sentence, caught):
    found = narrative.stale_claims(sentence)
    assert len(found) == len(caught) and all(c in f for c, f in zip(caught, found))


def test_a_stale_sentence_seeded_into_a_page_is_caught():
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    seeded = intro.replace("## How to read this book", "Chapters run at 4 seeds.\n\n## How to read this book")
    assert seeded != intro
    assert narrative.stale_claims(seeded) == [
        "'4 seeds': no experiment chapter declares 4 seeds (ckt.book.chapters: [2, 5, 10]); paste "
        "{{ seeds_per_chapter }}"]


def test_chapter_numbers_as_ranges():
    assert narrative._ranges(["02"]) == "02"
    assert narrative._ranges(["02", "03", "04", "05"]) == "02–05"
    assert narrative._ranges(["02", "03", "05"]) == "02–03 and 05"
    assert narrative._ranges(["01", "03", "04", "07"]) == "01, 03–04 and 07"


def test_seeds_per_chapter_from_the_declarations(monkeypatch):
    assert narrative.seeds_per_chapter() == (
        "10 seeds in chapters 02–05, 5 in chapter 06 (2 for its LLM fine-tunes) and 2 in chapter 07")

    def declared(name, part, seeds, **knobs):
        return Chapter(name, name, part, {"seeds": Knob(list(range(seeds)), "seeds"), **knobs})

    made_up = {c.name: c for c in [
        declared("01_walk", "The method", 3),  # not a study: neither listed nor counted
        declared("02_a", "Experiments", 4), declared("03_b", "Experiments", 4),
        declared("04_c", "Experiments", 1, llm_seeds=Knob([0, 1, 2], "llm")),
        declared("09_v", "Verdict", 6)]}
    monkeypatch.setattr(narrative, "CHAPTERS", made_up)
    assert narrative.seeds_per_chapter() == "4 seeds in chapters 02–03 and 1 in chapter 04 (3 for its LLM fine-tunes)"
    assert narrative.declared_seed_counts() == {4, 1, 3, 6}


def test_a_changed_declaration_makes_the_committed_page_stale(monkeypatch):
    """Ten seeds become twelve in chapter 02: the intro a sync writes changes, so the committed one fails above."""
    intro = (ROOT / "book" / "intro.md").read_text(encoding="utf-8")
    chapters = dict(CHAPTERS)
    ch = chapters["02_kd_weight"]
    chapters["02_kd_weight"] = replace(ch, knobs={**ch.knobs, "seeds": Knob(list(range(12)), "seeds")})
    monkeypatch.setattr(narrative, "CHAPTERS", chapters)
    synced = narrative.synced_page(intro)
    assert synced != intro and "12 seeds in chapter 02, 10 in chapters 03–05, 5 in chapter 06" in synced


def test_the_facts_by_hand():
    facts = narrative.facts()
    assert facts["seeds_per_chapter"] == narrative.seeds_per_chapter()
    assert facts["paper_kd_alignment"] == "86.8" and facts["paper_overall_safety"] == "84.7"
    assert facts["train_size"] == "1,000" and facts["epochs"] == "20" and facts["eval_pgd_steps"] == "10"
    assert facts["default_perturbation"] == "PGD (3 steps) in L2 on the frozen backbone's pooled feature"
    assert facts["intervals"] == (
        "every number is a mean with its 95% interval from a bootstrap that resamples seeds and test items together "
        "(`ckt.verdicts.interval`); A against B is the 95% interval of their paired difference, and *equivalent* "
        "means that its 90% interval lies inside a declared margin (TOST)")
    assert facts["kd_default"] == "Hinton's form, τ²·KL(p_T ‖ p_S), not the paper's (`kd_form = \"hinton\"`)"
    assert facts["misspelled_error"] == (
        "`ConfigError: unknown parameter 'epoch' for notebook 02_kd_weight: did you mean 'epochs'?`")
    assert facts["error_exit"] == "2"
    assert set(narrative.KD_FORM_WORDS) == set(KD_FORMS)  # every form of Eq. 3 has its words


def test_synced_page_writes_the_used_facts_only_and_refuses_an_unknown_one():
    known = {"a": "one", "b": "two: with a colon"}
    page = "# Title\n\nSee {{ b }} and {{a}}, then {{ b }} again.\n"
    synced = narrative.synced_page(page, known)
    assert synced == (f"---\n{narrative.GENERATED}\nmyst:\n  substitutions:\n    b: 'two: with a colon'\n"
                      "    a: one\n---\n\n# Title\n\nSee {{ b }} and {{a}}, then {{ b }} again.\n")
    assert narrative.synced_page(synced, known) == synced  # a second sync changes nothing
    assert narrative.synced_page(synced, {"a": "uno", "b": "dos"}).count("uno") == 1
    assert narrative.synced_page("# Plain\n", known) == "# Plain\n"  # no fact used: no front matter
    with pytest.raises(KeyError, match=r"\{\{ c \}\} is not a fact: add it to ckt.book.narrative.facts\(\)"):
        narrative.synced_page("{{ c }}", known)
