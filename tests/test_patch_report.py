"""The LoRA chapter's tables and claim rows (ckt.book.patch_report) on a hand-built protocol result, where
every arm's per-prompt scores are set so that each verdict is known in advance."""

import numpy as np
import pytest

from ckt.book import patch_report as R
from ckt.llm.measure import Measurement
from ckt.safety_patch.protocol import ProtocolResult, Setting

N, SEEDS = 200, [0, 1]  # 200 prompts: an arm equal to the base on every prompt is within ±1.5 points (90%)
RNG = np.random.default_rng(0)


def scores(refusal, jailbreak, over, help_shift=0.0, sentiment=None):
    """Per-prompt items: refusal rates as exact shares of N prompts, helpfulness = base + shift."""
    def rate(p):
        x = np.zeros(N)
        x[: round(p * N / 100)] = 100.0
        return x

    items = {"refusal": rate(refusal), "jailbreak_refusal": rate(jailbreak), "over_refusal": rate(over),
             "helpfulness_loglik": BASE_HELP + help_shift + 0.001 * RNG.standard_normal(N),  # no two arms equal
             "sentiment_accuracy": rate(sentiment if sentiment is not None else 50)}
    for m in ("refusal", "jailbreak_refusal", "over_refusal"):
        items[f"{m}_classifier"] = items[m].copy()
        items[f"{m}_trained_style"] = rate(round(items[m].mean()) // 2)  # half the refusals in a trained style
    return Measurement(items, {"harmful": [], "jailbreak": [], "benign": []}, 20.0)


BASE_HELP = -2.0 + 0.3 * RNG.standard_normal(N)


def ortho_rows(arm, method, overlap, ratio):
    return [{"arm": arm, "method": method, "seed": s, "layer": layer, "module": "q_proj",
             "left": overlap + 0.001 * layer * (method == "lora"),  # LoRA's gap to full FT varies by matrix
             "right": overlap, "random_left": 0.01, "random_right": 0.01, "projection_ratio": ratio + 0.01 * layer,
             "amplification": 5.0, "relative_norm": 0.01} for s in SEEDS for layer in range(4)]


@pytest.fixture
def result():
    lora, full0, full4 = Setting("lora", 2e-4), Setting("full", 1e-5, 0.0), Setting("full", 1e-5, 4.0)
    base = scores(10, 20, 0)
    val = {lora: scores(60, 60, 0), full0: scores(100, 100, 80, -0.5, 0), full4: scores(50, 50, 0)}
    held = {("LoRA (safety only)", s): scores(60, 70, 0) for s in SEEDS}
    held |= {("full FT 1:0", s): scores(100, 100, 80, -0.5, 0) for s in SEEDS}
    held |= {("full FT 1:4", s): scores(60, 70, 0) for s in SEEDS}
    ortho = ortho_rows("LoRA (safety only)", "lora", 0.012, 1.0) + ortho_rows("full FT 1:0", "full", 0.05, 3.0)
    return ProtocolResult(base, base, val, {s.arm: s for s in (lora, full0, full4)}, held, ortho)


def test_tables_list_every_arm_with_its_means(result):
    table = R.heldout_table(result, SEEDS).set_index("arm")
    assert list(table.index) == ["base", "LoRA (safety only)", "full FT 1:0", "full FT 1:4"]
    assert table.loc["LoRA (safety only)", "refusal_mean"] == pytest.approx(60.0)
    assert table.loc["full FT 1:0", "over_refusal_mean"] == pytest.approx(80.0)
    assert table.loc["base", "perplexity"] == 20.0
    assert table.loc["LoRA (safety only)", "refusal_trained_style_mean"] == pytest.approx(30.0)
    # a share that no prompt moves (every seed the same) still gets an interval: the exact bound of a 0/100 score
    base_style = table.loc["base", ["refusal_trained_style_lo", "refusal_trained_style_hi"]]
    assert base_style.notna().all() and base_style.iloc[0] <= 5.0 <= base_style.iloc[1]
    val = R.validation_table(result).set_index("setting")
    full0 = val.loc["full FT 1:0, lr 1e-05"]
    assert full0["over_refusal"] == pytest.approx(80.0) and full0["over_rise_upper"] >= 80.0
    assert not full0["admissible"] and full0["excess"] >= 80 / 5 - 1  # a rise of 80 points, budget 5
    assert full0["help_change_lower"] == pytest.approx(-0.5, abs=0.05)  # about 0.5 nats lower on every prompt
    lora = val.loc["LoRA, lr 0.0002"]
    assert lora["chosen"] == "✓" and lora["admissible"] and lora["over_rise_upper"] == 0.0
    assert lora["refusal_mean"] == pytest.approx(60.0)
    assert lora["refusal_lo"] < 60.0 < lora["refusal_hi"]  # a 95% interval over the 60 validation prompts
    assert val.loc["base model", "refusal_trained_style"] == pytest.approx(5.0)


def test_best_ratio_is_chosen_on_validation(result):
    assert R.best_ratio(result) == "full FT 1:4"  # 1:0 over-refuses on validation; 1:4 is inside the budget


def test_corrected_rates_divide_by_the_judges_sensitivity(result, monkeypatch):
    truth = np.r_[np.ones(80, bool), np.zeros(80, bool)]
    pred = np.r_[np.ones(40, bool), np.zeros(120, bool)]  # Se = 0.5, Sp = 1: every rate doubles
    monkeypatch.setattr(R, "human_agreement", lambda: (truth, pred))
    table = R.corrected_table(result, SEEDS).set_index(["arm", "metric"])
    assert table.loc[("LoRA (safety only)", "refusal"), "raw"] == pytest.approx(60.0)
    assert table.loc[("LoRA (safety only)", "refusal"), "corrected"] == pytest.approx(100.0)  # 120, clipped
    assert table.loc[("base", "refusal"), "corrected"] == pytest.approx(20.0)
    row = table.loc[("base", "jailbreak_refusal")]
    assert row["corrected"] == pytest.approx(40.0) and row["corrected_lo"] < 40.0 < row["corrected_hi"]


def test_claims_follow_the_planted_effects(result):
    rows, cmp = R.patch_claims(result, SEEDS, detach_diff=0.0)
    verdict = {r["claim"].split(": ", 1)[1]: r["verdict"] for r in rows}
    assert cmp["lora"]["refusal"].outcome == "higher" and cmp["lora"]["over_refusal"].outcome == "equivalent"
    assert verdict["refusal SFT on safety data alone adds refusal"] == "reproduced"
    assert verdict["safety added with general ability kept"] == "reproduced"
    assert verdict["on safety data alone it matches full fine-tuning at its searched mixing ratio"] == "reproduced"
    assert verdict["full fine-tuning on safety data alone loses general ability"] == "reproduced"
    assert verdict["ΔW nearly orthogonal to W0"] == "reproduced"
    assert verdict["detach restores the base model"] == "reproduced"


def test_a_patch_that_over_refuses_does_not_keep_ability(result):
    for s in SEEDS:
        result.heldout[("LoRA (safety only)", s)] = scores(100, 100, 90, 0.0, 0)
    rows, cmp = R.patch_claims(result, SEEDS, detach_diff=1e-3)
    verdict = {r["claim"].split(": ", 1)[1]: r["verdict"] for r in rows}
    assert cmp["lora"]["over_refusal"].outcome == "different"
    assert verdict["safety added with general ability kept"] in ("partly reproduced", "not reproduced")
    assert verdict["detach restores the base model"] == "not reproduced"


def test_judge_disagreement_counts_replies_judged_differently(result):
    result.base_test.items["refusal_classifier"][:] = 0.0  # the classifier calls none of the 20 keyword refusals
    table = R.judge_disagreement(result, SEEDS).set_index(["arm", "metric"])
    assert table.loc[("base", "refusal"), "replies judged differently (%)"] == pytest.approx(10.0)
    assert table.loc[("base", "refusal"), "classifier"] == 0.0


def test_plan_counts_every_candidate_once_and_every_arm_per_further_seed():
    """LoRA at 2 rates × 2 ratios (4 candidates, 2 arms), full FT at 3 rates × 1 ratio (3 candidates, 1 arm),
    3 seeds: LoRA 4 + 2·2 = 8 fine-tunes, full 3 + 2·1 = 5; 7 validation and 3·3 = 9 held-out measurements."""
    from ckt.safety_patch.protocol import plan

    assert plan([1e-4, 3e-4], [1e-6, 1e-5, 1e-4], [0.0], [0.0, 1.0], 3) == {
        "lora": 8, "full": 5, "validation": 7, "heldout": 9}
    assert plan([1e-4], [], [], [0.0], 1) == {"lora": 1, "full": 0, "validation": 1, "heldout": 1}


def test_planned_seconds_by_hand():
    """LoRA trains in 10 and 20 s (mean 15), full FT in 30 s; validation measurements take 4 and 6 s (mean 5),
    held-out ones 3 s, here on half the prompts of the plan (scale 2 → 6 s); the base model 7 s (→ 14).
    counts: 2 LoRA + 1 full + 3 validation + 4 held-out = 30 + 30 + 15 + 24, + 14 = 113 s."""
    from types import SimpleNamespace

    res = SimpleNamespace(
        stats=[{"method": "lora", "train_seconds": 10.0, "measure_seconds": 4.0},
               {"method": "lora", "train_seconds": 20.0, "measure_seconds": 6.0},
               {"method": "full", "train_seconds": 30.0}],
        timings=[{"measure_seconds": 3.0}, {"measure_seconds": 3.0}], seconds={"base": 7.0})
    counts = {"lora": 2, "full": 1, "validation": 3, "heldout": 4}
    assert R.planned_seconds(counts, res, heldout_scale=2.0) == pytest.approx(113.0)
    assert np.isnan(R.planned_seconds(dict(counts, full=1), SimpleNamespace(**{**vars(res), "stats": res.stats[:2]})))
    assert R.planned_seconds(dict(counts, full=0), SimpleNamespace(**{**vars(res), "stats": res.stats[:2]}),
                             2.0) == pytest.approx(83.0)
    assert R.planned_seconds(counts, res, 2.0, train_scale=2.0) == pytest.approx(113.0 + 60.0)  # training doubled


def test_scale_cost_prices_another_grid_from_this_runs_times():
    """This run: one LoRA rate, one seed, 240 pairs, 332 held-out prompts; LoRA trains in 10 s, a validation
    measurement takes 5 s, a held-out one 3 s, the base model 7 s. The paper scale: 2 rates × 3 seeds (plan: 2 + 2
    LoRA fine-tunes, 2 validation and 3 held-out measurements), 480 pairs (training × 2) and 614 held-out prompts
    (× 614/332): 4·10·2 + 2·5 + (3·3 + 7)·614/332 = 90 + 16·614/332 s."""
    from types import SimpleNamespace

    from ckt.config import Config

    res = SimpleNamespace(stats=[{"method": "lora", "train_seconds": 10.0, "measure_seconds": 5.0}],
                          timings=[{"measure_seconds": 3.0}], seconds={"base": 7.0})
    knobs = {"lora_lrs": [1e-4], "full_lrs": [], "ratios": [], "lora_ratios": [0.0], "seeds": [0]}
    cfg = Config(patch_train_examples=240, patch_epochs=1, eval_harmful=100, eval_jailbreak=50, eval_benign=100,
                 eval_helpful=50, eval_sentiment=32)
    paper = {"lora_lrs": [1e-4, 3e-4], "seeds": [0, 1, 2], "patch_train_examples": 480, "eval_harmful": 200,
             "eval_jailbreak": 100, "eval_benign": 150, "eval_helpful": 100, "eval_sentiment": 64}
    counts, seconds = R.scale_cost(res, knobs, cfg, paper)
    assert counts == {"lora": 4, "full": 0, "validation": 2, "heldout": 3}
    assert seconds == pytest.approx(90 + 16 * 614 / 332)
