"""The LLM chapters' fine-tune cache (ckt.llm.runcache): a rerun trains nothing that it has measured,
gives the same numbers, and a change to anything a fine-tune depends on trains it again."""

from __future__ import annotations

import json
import shutil
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from ckt.config import Config
from ckt.experiments import sweep
from ckt.llm import runcache
from ckt.llm.measure import Measurement
from ckt.llm.sets import PromptSets
from ckt.safety_patch import protocol
from ckt.sot_llm import study as sot_study
from ckt.sot_llm.user_finetune import user_key


@pytest.fixture(scope="module")
def tiny(smollm_tokenizer, make_tiny_llama):
    return make_tiny_llama(smollm_tokenizer, sharpen=20.0, eos_token_id=smollm_tokenizer.eos_token_id)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path))
    return tmp_path


CFG = Config(patch_train_examples=4, gen_tokens=3, patch_rank=2)


def _counting(monkeypatch, module, name):
    """Replace ``module.name`` by a wrapper that records each call's arguments."""
    real, calls = getattr(module, name), []

    def wrapper(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(module, name, wrapper)
    return calls


def _refuse(*_):
    raise AssertionError("a rerun trained a model it had measured")


def _same(a: Measurement, b: Measurement):
    assert a.replies == b.replies and a.items.keys() == b.items.keys()
    for k in a.items:
        np.testing.assert_array_equal(a.items[k], b.items[k])
    assert a.perplexity == b.perplexity or (np.isnan(a.perplexity) and np.isnan(b.perplexity))


# --- keys ------------------------------------------------------------------------------------------------------

def test_finetune_key_changes_with_every_input_it_names_and_with_nothing_else(tiny, tmp_path, monkeypatch):
    args = dict(method="lora", lr=1e-3, seed=0, rank=2, targets=("q_proj", "v_proj"), epochs=1, batch_size=4,
                precision="bf16", room="safety_patch")
    prompts, responses = ["p1", "p2"], ["r1", "r2"]
    key = runcache.finetune_key(tiny, prompts, responses, **args)
    same = dict(args, targets=["q_proj", "v_proj"])  # a list or a tuple of the same names
    assert runcache.finetune_key(tiny, list(prompts), list(responses), **same) == key
    changed = [runcache.finetune_key(tiny, prompts, responses, **dict(args, **{k: v}))
               for k, v in [("method", "full"), ("lr", 2e-3), ("seed", 1), ("rank", 4), ("targets", ("q_proj",)),
                            ("epochs", 2), ("batch_size", 8), ("precision", "fp32"), ("weights", [1.0, 1.0]),
                            ("room", "sot_llm")]]
    changed.append(runcache.finetune_key(tiny, prompts, responses, **dict(args, weights=[1.0, 2.0])))
    changed.append(runcache.finetune_key(tiny, ["p1", "p2 "], responses, **args))
    changed.append(runcache.finetune_key(tiny, prompts, ["r1", "r3"], **args))
    changed.append(runcache.finetune_key(tiny, ["p2", "p1"], ["r2", "r1"], **args))  # order is the batches' order
    other = type(tiny)(tiny.config)
    other.load_state_dict(tiny.state_dict())
    with torch.no_grad():
        other.model.layers[1].self_attn.q_proj.weight[0, 0] += 1e-3  # one weight of one layer
    changed.append(runcache.finetune_key(other, prompts, responses, **args))
    copied = _copied_source(tmp_path, monkeypatch)
    assert runcache.finetune_key(tiny, prompts, responses, **args) == key  # the same source, copied
    _edit(copied / "safety_patch" / "patch.py")
    changed.append(runcache.finetune_key(tiny, prompts, responses, **args))
    _edit(copied / "llm" / "sft.py")  # the kit keys every room's fine-tunes
    changed.append(runcache.finetune_key(tiny, prompts, responses, **args))
    assert len(set(changed)) == len(changed) and key not in changed


def _copied_source(tmp_path, monkeypatch) -> Path:
    """A copy of the ckt package that the LLM cache's and the results table's code hashes read instead."""
    copied = tmp_path / "ckt"
    shutil.copytree(runcache.SRC, copied, ignore=shutil.ignore_patterns("__pycache__"))
    monkeypatch.setattr(runcache, "SRC", copied)
    return copied


def _edit(path: Path) -> None:
    path.write_text(path.read_text() + "\n# an edit\n")


def test_an_edit_to_one_llm_chapters_room_leaves_the_other_chapters_keys_unchanged(tiny, smollm_tokenizer,
                                                                                     tiny_sets, tmp_path,
                                                                                     monkeypatch):
    """Chapter 07's fine-tunes (the patch room) and chapter 06's (the SOT study's room) each hash the kit and
    their own room only."""
    settings = protocol.candidates([1e-3], [1e-4], [0, 1])
    pairs = pd.DataFrame({"prompt": ["a", "b"], "response": ["x", "y"]})

    def keys():
        return ([protocol.protocol_key(tiny, tiny_sets, s, CFG, seed) for s in settings for seed in (0, 1)],
                [user_key(tiny, pairs, CFG, seed, w) for seed in (0, 1) for w in (None, [1.0, 2.0])])

    patch0, study0 = keys()
    copied = _copied_source(tmp_path, monkeypatch)
    assert keys() == (patch0, study0)
    for module in ("study.py", "mix.py", "user_finetune.py"):  # an edit to the SOT study ...
        _edit(copied / "sot_llm" / module)
        patch1, study1 = keys()
        assert patch1 == patch0 and not set(study1) & set(study0)  # ... re-keys chapter 06 only
        study0 = study1
    for module in ("protocol.py", "patch.py"):  # an edit to the patch room ...
        _edit(copied / "safety_patch" / module)
        patch1, study1 = keys()
        assert study1 == study0 and not set(patch1) & set(patch0)  # ... re-keys chapter 07 only
        patch0 = patch1


def test_an_edit_to_llm_only_code_leaves_every_ckt_run_key_unchanged(tmp_path, monkeypatch):
    """The CKT results rows are keyed by the subpackages that compute them (``sweep.ROW_CODE``); the LLM kit and
    both LLM rooms are not among them, while an edit to SOT's weights (used by the CKT chapters) is."""
    cfg = Config()
    before = sweep.run_id(cfg, 0)
    copied = _copied_source(tmp_path, monkeypatch)
    monkeypatch.setattr(sweep, "SRC", copied)
    sweep.code_version.cache_clear()
    try:
        assert sweep.run_id(cfg, 0) == before
        for path in (copied / "llm" / "measure.py", copied / "sot_llm" / "mix.py",
                     copied / "safety_patch" / "patch.py"):
            _edit(path)
            sweep.code_version.cache_clear()
            assert sweep.run_id(cfg, 0) == before, path
        _edit(copied / "sot" / "weights.py")
        sweep.code_version.cache_clear()
        assert sweep.run_id(cfg, 0) != before
    finally:
        sweep.code_version.cache_clear()


def test_measurement_key_changes_with_each_prompt_gen_tokens_and_precision(tiny_sets):
    sets = tiny_sets.validation
    key = runcache.measurement_key("trained", sets, 3, "bf16")
    others = [runcache.measurement_key(*args) for args in [("trained2", sets, 3, "bf16"), ("trained", sets, 4, "bf16"),
                                                           ("trained", sets, 3, "fp32")]]
    for field in ("harmful", "jailbreak", "benign", "helpful", "references", "sentiment"):
        texts = list(getattr(sets, field))
        texts[-1] += "!"
        others.append(runcache.measurement_key("trained", PromptSets(**{**sets.__dict__, field: texts}), 3, "bf16"))
    others.append(runcache.measurement_key("trained", PromptSets(**{**sets.__dict__, "sentiment_labels": [0, 0, 0, 0]}),
                                           3, "bf16"))
    assert len(set(others)) == len(others) and key not in others


def test_cached_measurement_computes_once_and_recomputes_a_broken_or_foreign_entry(cache):
    made = []

    def compute():
        made.append(1)
        return Measurement({"refusal": np.array([100.0, 0.0])}, {"harmful": ["No.", "Sure"]}), {"stats": {"steps": 2}}

    m, extra, hit = runcache.cached_measurement("kind", "k1", compute)
    assert not hit and len(made) == 1 and extra == {"stats": {"steps": 2}}
    again, extra2, hit2 = runcache.cached_measurement("kind", "k1", compute)
    assert hit2 and len(made) == 1 and extra2 == extra
    _same(again, m)
    path = cache / "kind" / "k1.json"
    path.write_text("{not json")
    assert not runcache.cached_measurement("kind", "k1", compute)[2] and len(made) == 2
    doc = json.loads(path.read_text())
    path.write_text(json.dumps({**doc, "key": "k2"}))  # an entry that names another key is not this one
    assert not runcache.cached_measurement("kind", "k1", compute)[2] and len(made) == 3


# --- the protocol, the patched start and the user's fine-tunes, rerun -------------------------------------------

def _choose_lr(lr):
    return lambda val, base: next((s for s in val.values if s.lr == lr), max(val.values, key=lambda s: s.lr))


@pytest.mark.slow
def test_a_protocol_rerun_trains_nothing_it_measured_and_gives_the_same_results(tiny, smollm_tokenizer, tiny_sets,
                                                                                 cache, monkeypatch):
    sets, settings = tiny_sets, protocol.candidates([1e-3, 1e-2], [1e-4], [1])
    first = protocol.run_protocol(tiny, smollm_tokenizer, sets, CFG, [0, 1], settings, _choose_lr(1e-2),
                                  log=lambda _: None)
    monkeypatch.setattr(protocol, "finetune", _refuse)
    again = protocol.run_protocol(tiny, smollm_tokenizer, sets, CFG, [0, 1], settings, _choose_lr(1e-2),
                                  log=lambda _: None)
    assert again.chosen == first.chosen and again.validation.keys() == first.validation.keys()
    for s in first.validation:
        _same(again.validation[s], first.validation[s])
    assert again.heldout.keys() == first.heldout.keys()
    for k in first.heldout:
        _same(again.heldout[k], first.heldout[k])
    pd.testing.assert_frame_equal(pd.DataFrame(again.ortho), pd.DataFrame(first.ortho))
    assert again.patch_dir == first.patch_dir and again.stats == first.stats  # the log of the run that trained

    monkeypatch.undo()
    monkeypatch.setenv("CKT_CACHE_DIR", str(cache))
    calls = _counting(monkeypatch, protocol, "finetune")  # another LoRA rate chosen: only it is trained, per seed
    other = protocol.run_protocol(tiny, smollm_tokenizer, sets, CFG, [0, 1], settings, _choose_lr(1e-3),
                                  log=lambda _: None)
    assert [(c[3].lr, c[5]) for c in calls] == [(1e-3, 0), (1e-3, 1)]
    _same(other.heldout[("full FT 1:1", 1)], first.heldout[("full FT 1:1", 1)])
    assert other.patch_dir != first.patch_dir

    shutil.rmtree(other.patch_dir)  # a measurement without its adapter: the adapter alone is trained again
    calls.clear()
    last = protocol.run_protocol(tiny, smollm_tokenizer, sets, CFG, [0, 1], settings, _choose_lr(1e-3),
                                 log=lambda _: None)
    assert [(c[3].lr, c[5]) for c in calls] == [(1e-3, 0)] and last.patch_dir == other.patch_dir
    assert runcache.find_adapter(Path(other.patch_dir).name) == Path(other.patch_dir)


@pytest.mark.slow
def test_the_patched_start_from_the_cached_adapter_has_the_trained_weights(tiny, smollm_tokenizer, tiny_sets, cache,
                                                                           monkeypatch):
    cfg = Config(patch_train_examples=4, gen_tokens=3, patch_rank=2)
    calls = _counting(monkeypatch, protocol, "finetune")
    trained, chosen, _ = protocol.patched_start(tiny, smollm_tokenizer, tiny_sets, cfg, [1e-3, 1e-2],
                                                _choose_lr(1e-2), log=lambda _: None)
    assert chosen == protocol.Setting("lora", 1e-2) and [(c[3].lr, c[5]) for c in calls] == [(1e-3, 0), (1e-2, 0)]
    monkeypatch.setattr(protocol, "finetune", _refuse)  # a rerun reads every measurement and the adapter
    cached, chosen_again, _ = protocol.patched_start(tiny, smollm_tokenizer, tiny_sets, cfg, [1e-3, 1e-2],
                                                     _choose_lr(1e-2), log=lambda _: None)
    assert chosen_again == chosen
    a, b = trained.state_dict(), cached.state_dict()
    assert a.keys() == b.keys() and not any(torch.equal(a[k], tiny.state_dict()[k]) for k in a if "q_proj" in k)
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=0)


@pytest.mark.slow
def test_a_rerun_of_the_users_fine_tunes_trains_only_what_changed(tiny, smollm_tokenizer, tiny_sets, cache,
                                                                  monkeypatch):
    sets, arms = tiny_sets, ("none", "sot")  # SOT's arm carries per-pair weights

    def embed(texts):  # a fixed vector per text
        return np.stack([np.random.default_rng(zlib.crc32(t.encode())).normal(size=8) for t in texts])

    def run(cfg):
        return sot_study.run_user_finetunes(tiny, smollm_tokenizer, sets, cfg, [0], embed=embed, n_clean=10,
                                            rate=0.1, safe_size=5, harm_size=5, arms=arms, log=lambda _: None)

    first = run(CFG)
    calls = _counting(monkeypatch, sot_study, "user_finetune")
    again = run(CFG)
    assert calls == [] and again.heldout.keys() == first.heldout.keys()
    for k in first.heldout:
        _same(again.heldout[k], first.heldout[k])
    pd.testing.assert_frame_equal(again.selections, first.selections)
    run(Config(patch_train_examples=4, gen_tokens=3, patch_rank=2, user_lr=1e-3))  # the user's rate: all again
    assert len(calls) == len(arms)
