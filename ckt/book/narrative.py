"""The narrative pages' facts: every number or method statement on ``book/intro.md``, ``method.md``,
``rerun.md`` and ``exercises.md`` that the code decides, generated from the code.

A page writes ``{{ name }}`` (a MyST substitution) where such a fact belongs; ``python -m ckt.book.build
--sync`` writes the value of every name the page uses, from :func:`facts`, into the page's front matter
(``myst: substitutions:``), and the test suite checks that the committed pages are what a sync writes. So a
changed declaration (a chapter's seeds, a default, the interval rule) changes the page, or the tests fail.

:func:`stale_claims` greps a page's prose for claims a declaration contradicts, the kind that a hand-typed
sentence lets go stale: a seed count no chapter declares, a Student-t interval, an interval "over seeds"
(the book's intervals resample seeds and test items).
"""

from __future__ import annotations

import re

import yaml

from .chapters import CHAPTERS

PAGES = ("book/intro.md", "book/method.md", "book/rerun.md", "book/exercises.md")
GENERATED = "# written by `python -m ckt.book.build --sync` from ckt.book.narrative.facts(): edit that, not this block"
# what each form of Eq. 3 (ckt.core.losses.KD_FORMS) is, in words, when it is the default
KD_FORM_WORDS = {"hinton": "Hinton's form, τ²·KL(p_T ‖ p_S), not the paper's",
                 "paper": "the paper's form, KL(p_S ‖ p_T) without τ²"}
FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
USED = re.compile(r"\{\{\s*(\w+)\s*\}\}")
NUMBER_WORDS = {w: i for i, w in enumerate("zero one two three four five six seven eight nine ten".split())}


def _ranges(numbers: list[str]) -> str:
    """Chapter numbers as ranges: ["02", "03", "04", "05", "07"] → "02–05 and 07"."""
    runs: list[list[str]] = []
    for n in numbers:
        if runs and int(n) == int(runs[-1][-1]) + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    parts = [r[0] if len(r) == 1 else f"{r[0]}–{r[-1]}" for r in runs]
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def _count(knob) -> int:
    return len(knob.default) if isinstance(knob.default, list) else int(knob.default)


def seeds_per_chapter() -> str:
    """The experiment chapters' declared seeds, grouped: "10 seeds in chapters 02–05, 5 in chapter 06 (2 for its
    LLM fine-tunes) and 2 in chapter 07" (:mod:`ckt.book.chapters`: the ``seeds`` knob, and ``llm_seeds``)."""
    groups: list[tuple[tuple[int, int | None], list[str]]] = []
    for ch in CHAPTERS.values():
        if ch.part != "Experiments":
            continue
        sig = (_count(ch.knobs["seeds"]), _count(ch.knobs["llm_seeds"]) if "llm_seeds" in ch.knobs else None)
        if groups and groups[-1][0] == sig:
            groups[-1][1].append(ch.name[:2])
        else:
            groups.append((sig, [ch.name[:2]]))
    parts = []
    for i, ((n, llm), numbers) in enumerate(groups):
        where = f"chapter{'s' if len(numbers) > 1 else ''} {_ranges(numbers)}"
        llm_part = f" ({llm} for its LLM fine-tunes)" if llm else ""
        parts.append(f"{n}{' seeds' if i == 0 else ''} in {where}{llm_part}")
    return parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"


def declared_seed_counts() -> set[int]:
    """Every seed count an experiment or verdict chapter declares (its ``seeds``, and any ``*_seeds`` knob: a
    list's length or a count). The method chapters' walkthroughs are not studies and do not count."""
    return {_count(k) for ch in CHAPTERS.values() if ch.part in ("Experiments", "Verdict")
            for name, k in ch.knobs.items() if name.endswith("seeds")}


def facts() -> dict[str, str]:
    """Every fact a narrative page may paste with ``{{ name }}``, generated from the code that decides it."""
    from ..config import Config
    from ..core.evaluate import EVAL_PGD_STEPS
    from ..errors import ConfigError
    from ..verdicts import ALPHA, PAPER_NUMBERS
    from .notebook import parameters

    c = Config()
    where = {"feature": "the frozen backbone's pooled feature", "embedding": "the token embeddings",
             "lora": "the token embeddings"}[c.mode]
    try:  # the line a misspelled papermill parameter stops at
        parameters({"epoch": 3}, "02_kd_weight")
    except ConfigError as err:
        misspelled = f"{type(err).__name__}: {err}"
    else:
        raise RuntimeError("notebook.parameters accepted the misspelled parameter 'epoch'")
    confidence, equivalence = round(100 * (1 - ALPHA)), round(100 * (1 - 2 * ALPHA))
    return {
        **{f"paper_{k}": f"{v:g}" for k, v in PAPER_NUMBERS.items()},
        "train_size": f"{c.train_size:,}",
        "epochs": str(c.epochs),
        "default_perturbation": f"{c.perturb.upper()} ({c.pgd_steps} steps) in {c.norm.upper()} on {where}",
        "seeds_per_chapter": seeds_per_chapter(),
        "intervals": (f"every number is a mean with its {confidence}% interval from a bootstrap that resamples seeds "
                      f"and test items together (`ckt.verdicts.interval`); A against B is the {confidence}% interval "
                      f"of their paired difference, and *equivalent* means that its {equivalence}% interval lies "
                      "inside a declared margin (TOST)"),
        "kd_default": f"{KD_FORM_WORDS[c.kd_form]} (`kd_form = \"{c.kd_form}\"`)",
        "eval_pgd_steps": str(EVAL_PGD_STEPS),
        "misspelled_error": f"`{misspelled}`",
        "error_exit": str(ConfigError.exit_code),
    }


def _prose(text: str) -> str:
    """A page without its front matter, fenced code blocks, inline code and substitutions."""
    text = FRONT_MATTER.sub("", text, count=1)
    text = re.sub(r"^(```|~~~).*?^\1", "", text, flags=re.S | re.M)
    return USED.sub("", re.sub(r"`[^`\n]*`", "", text))


def stale_claims(text: str) -> list[str]:
    """The sentences of a page's prose that a declaration contradicts (empty: none found)."""
    prose = _prose(text)
    found = []
    counts = declared_seed_counts()
    for m in re.finditer(r"\b(\d+|" + "|".join(NUMBER_WORDS) + r")\s+seeds?\b", prose, re.I):
        word = m.group(1).lower()
        n = int(word) if word.isdigit() else NUMBER_WORDS[word]
        if n >= 2 and n not in counts:  # one seed is the no-interval case, never a chapter's declaration
            found.append(f"'{m.group(0)}': no experiment chapter declares {n} seeds (ckt.book.chapters: "
                         f"{sorted(counts)}); paste {{{{ seeds_per_chapter }}}}")
    for m in re.finditer(r"Student[- ]t\b[^.\n]*", prose):
        found.append(f"'{m.group(0)}': the book's intervals are the bootstrap of ckt.verdicts.interval; paste "
                     "{{ intervals }}")
    for m in re.finditer(r"intervals? over (?:the )?seeds\b(?! and)", prose):
        found.append(f"'{m.group(0)}': the book's intervals resample seeds and test items; paste {{{{ intervals }}}}")
    return found


def synced_page(text: str, known: dict[str, str] | None = None) -> str:
    """A narrative page as ``--sync`` writes it: its front matter holds the value of every ``{{ name }}`` it uses."""
    known = facts() if known is None else known
    body = FRONT_MATTER.sub("", text, count=1).lstrip("\n")
    names = list(dict.fromkeys(USED.findall(body)))
    unknown = [n for n in names if n not in known]
    if unknown:
        raise KeyError(f"{{{{ {unknown[0]} }}}} is not a fact: add it to ckt.book.narrative.facts(), or fix the name")
    if not names:
        return body
    front = yaml.safe_dump({"myst": {"substitutions": {n: known[n] for n in names}}}, allow_unicode=True,
                           sort_keys=False, width=10**6)
    return f"---\n{GENERATED}\n{front}---\n\n{body}"
