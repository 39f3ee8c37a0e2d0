"""The paper's numbers and the words a verdict may use.

Every verdict is one of :data:`VERDICTS`: the five outcomes of
:func:`~ckt.verdicts.decide.claim_verdict` ("reproduced", "partly reproduced", "not reproduced",
"inconclusive", "not enough seeds for a verdict") or "not testable" (the paper gives nothing ckt can
compare with). How each claim's comparisons are made is in :mod:`ckt.verdicts.claims`.
"""

from __future__ import annotations

from .decide import CLAIM_VERDICTS, HIGHER_SMALL, LOWER_SMALL

# CKT paper, Table I (their ~1K MultiTask Sentiment Classification set)
PAPER_NUMBERS = {"kd_alignment": 86.8, "noise_robustness": 82.5, "overall_safety": 84.7}
VERDICTS = (*CLAIM_VERDICTS, "not testable")


UNDECIDED = "not distinguishable, at this sample size,"  # an inconclusive difference test, in every sentence
SLIGHT = "by less than the declared margin"  # a significant difference smaller than the margin
TOO_FEW = "not comparable (fewer than two seeds, or no scored items)"  # "not enough seeds", naming its causes


def compared(outcome: str, higher: str = "higher than", lower: str = "lower than") -> str:
    """The words between two things compared by a difference test: "higher than", "lower than" (or the
    caller's words for a direction, e.g. "wider than"; "higher than (but by less than the declared margin)" for a
    significant difference smaller than the margin), "not distinguishable, at this sample size, from" ..."""
    words = {"higher": higher, "lower": lower, HIGHER_SMALL: f"{higher} (but {SLIGHT})",
             LOWER_SMALL: f"{lower} (but {SLIGHT})", "equivalent": "equivalent (within the declared margin) to",
             "different": "different from", "inconclusive": f"{UNDECIDED} from", "not enough seeds": f"{TOO_FEW} with"}
    return words[outcome]


# words after which a name is a phrase ("ce after 20 epochs", "CKT without L_KD"): "'s" would land on its tail
_PHRASE_WORDS = frozenset("after without with on in at of from for under over to by".split())


def is_phrase(name: str) -> bool:
    """True when ``name`` takes no possessive "'s": it holds a preposition ("ce after 20 epochs") or is
    already a possessive inside ("the paper's form")."""
    words = name.split()
    return any(w in _PHRASE_WORDS for w in words[1:]) or any(w.endswith("'s") for w in words[:-1])


def possessive(name: str) -> str:
    """"ckt" → "ckt's", "the tweets" → "the tweets'", "Hinton's" → "Hinton's" (already one)."""
    if name.endswith(("'s", "'")):
        return name
    return f"{name}'" if name.endswith("s") else f"{name}'s"


def said(outcome: str, a: str, b: str, metric: str, test: str = "beats") -> str:
    """A comparison's outcome in words: "ckt's accuracy is higher than ce's", "… is equivalent to …", "… is
    higher than ce's, but by less than the declared margin".

    A name that is a phrase (:func:`is_phrase`) is not made possessive: "the accuracy of ce after 20 epochs
    is higher than that of ce after 5", "full CKT's accuracy is higher than that of CKT without L_KD".
    An inconclusive difference test is "not distinguishable, at this sample size"; an inconclusive
    equivalence test (``test="equivalent"``) is "not shown to be within the declared margin": it must
    not read as "kept". "not enough seeds" names its causes (one seed, no scored items, or NaN)."""
    m = metric.replace("_", " ")
    left = f"the {m} of {a}" if is_phrase(a) else f"{possessive(a)} {m}"
    right = f"that of {b}" if is_phrase(b) else possessive(b)
    if outcome == "inconclusive" and test == "equivalent":
        return f"{left} is not shown, at this sample size, to be within the declared margin of {right}"
    if outcome in (HIGHER_SMALL, LOWER_SMALL):
        return f"{left} is {compared(outcome.split(',')[0])} {right}, but {SLIGHT}"
    return f"{left} is {compared(outcome)} {right}"


def said_count(outcomes: list[str], a: str, b: str, things: str) -> str:
    """Several paired comparisons of one kind, counted by outcome: "CKT is higher than cross-entropy on
    2 of the 3 unseen domains, lower on 0 and not distinguishable, at this sample size, on 1" (a count
    "equivalent (within the declared margin)" only when some comparison is, "(1 of them by less than the declared
    margin)" after a direction only when some significant difference was smaller than the margin, and "not
    comparable" only when some comparison lacked seeds or items)."""
    kinds = ("higher", HIGHER_SMALL, "lower", LOWER_SMALL, "equivalent", "inconclusive", "not enough seeds")
    count = {o: sum(x == o for x in outcomes) for o in kinds}

    def direction(word, small):
        slight = f" ({count[small]} of them {SLIGHT})" if count[small] else ""
        return f"{count[word] + count[small]}{slight}"

    parts = [f"higher than {b} on {direction('higher', HIGHER_SMALL)} of the {len(outcomes)} {things}",
             f"lower on {direction('lower', LOWER_SMALL)}"]
    if count["equivalent"]:
        parts.append(f"equivalent (within the declared margin) on {count['equivalent']}")
    parts.append(f"{UNDECIDED} on {count['inconclusive']}")
    if count["not enough seeds"]:
        parts.append(f"{TOO_FEW} on {count['not enough seeds']}")
    return f"{a} is {', '.join(parts[:-1])} and {parts[-1]}"
