"""The one config object: defaults, regimes, and one clear line for every bad value."""

import re
from dataclasses import fields

import pytest

from ckt.config import Config, describe, parse_sets
from ckt.errors import ConfigError


def test_defaults_are_valid_and_match_the_yaml():
    cfg = Config.from_yaml("configs/default.yaml")
    assert cfg == Config()


@pytest.mark.parametrize("regime, expected", [
    ("ce", {"w_kd": 0.0, "alpha": 1.0, "lam": 0.0, "smart": 0.0}),
    ("kd", {"w_kd": 1.0, "alpha": 1.0, "lam": 0.0, "smart": 0.0}),
    ("adv", {"w_kd": 0.0, "alpha": 0.5, "lam": 0.0, "smart": 0.0}),
    ("ckt", {"w_kd": 1.0, "alpha": 0.5, "lam": 0.01, "smart": 0.0}),
    ("ckt-no-kd", {"w_kd": 0.0, "alpha": 0.5, "lam": 0.01, "smart": 0.0}),
    ("ckt-no-nr", {"w_kd": 1.0, "alpha": 1.0, "lam": 0.01, "smart": 0.0}),
    ("ckt-no-reg", {"w_kd": 1.0, "alpha": 0.5, "lam": 0.0, "smart": 0.0}),
    ("smart", {"w_kd": 0.0, "alpha": 1.0, "lam": 0.0, "smart": 1.0}),
])
def test_regimes_switch_terms(regime, expected):
    assert Config(regime=regime).terms() == expected


@pytest.mark.parametrize("bad, words", [
    ({"alpha": 1.5}, ["alpha", "[0.0, 1.0]"]),
    ({"alpha": -0.1}, ["alpha", "out of range"]),
    ({"eps": -0.01}, ["eps", "out of range"]),
    ({"tau": 0.0}, ["tau", "out of range"]),
    ({"lam": -1.0}, ["lam"]),
    ({"perturb": "pgdd"}, ["perturb", "did you mean 'pgd'"]),
    ({"norm": "l3"}, ["norm", "l2, linf"]),
    ({"regime": "kd-only"}, ["regime", "choose one of"]),
    ({"epoch": 3}, ["unknown parameter 'epoch'", "did you mean 'epochs'"]),
    ({"alpha": "half"}, ["alpha", "must be a float"]),
    ({"epochs": 2.5}, ["epochs", "must be a int"]),
    ({"seeds": []}, ["seeds is empty"]),
    ({"seeds": [0, 0]}, ["duplicates"]),
    ({"domains": ["moviez"]}, ["moviez", "movies"]),
    ({"precision": "fp8"}, ["precision", "bf16"]),
])
def test_bad_values_give_one_line_naming_the_problem(bad, words):
    with pytest.raises(ConfigError) as info:
        Config.from_dict(bad)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_bools_are_not_numbers():
    with pytest.raises(ConfigError):
        Config(epochs=True)


def test_sets_parse_yaml_values():
    assert parse_sets(["eps=0.2", "seeds=[0, 1]", "regime=ce"]) == {"eps": 0.2, "seeds": [0, 1], "regime": "ce"}
    with pytest.raises(ConfigError, match="key=value"):
        parse_sets(["eps"])


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        Config.from_yaml(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("alpha: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        Config.from_yaml(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        Config.from_yaml(listy)


def test_replace_validates_and_round_trips():
    cfg = Config().replace(eps=0.3)
    assert cfg.eps == 0.3 and Config.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        cfg.replace(eps=-1.0)


def test_describe_covers_every_field():
    rows = describe()
    assert {r["name"] for r in rows} == set(Config().to_dict())
    assert all(r["help"] and r["valid"] for r in rows)


# ---------------------------------------------------------------- sections and run keys
def _changed(value):
    """Some other valid value of a field (for key tests)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, float):
        return value / 2 if value else 0.5
    if isinstance(value, int):
        return value + 1
    return value


def test_every_field_belongs_to_exactly_one_declared_section():
    from dataclasses import fields

    from ckt.config import SECTIONS

    for f in fields(Config):
        assert f.metadata["section"] in SECTIONS, f.name
    covered = [name for s in SECTIONS for name in Config().section(s)]
    assert sorted(covered) == sorted(f.name for f in fields(Config))


def test_a_lora_patch_setting_leaves_every_ckt_run_key_unchanged():
    from ckt.experiments.sweep import run_id

    base = Config()
    meta = {f.name: f.metadata for f in fields(Config)}
    for name, value in base.section("llm_patch").items():
        choices, span = meta[name]["choices"], meta[name]["range"]
        if isinstance(value, list):
            other = value[:1]
        elif choices:
            other = next(c for c in choices if c != value)
        elif isinstance(value, str):
            other = "/some/other/llm"
        elif isinstance(value, int) and span and value + 1 > span[1]:
            other = value - 1  # at the top of its range
        else:
            other = _changed(value)
        for regime in ("ce", "kd", "ckt"):
            cfg = base.replace(regime=regime)
            assert run_id(cfg.replace(**{name: other}), 0) == run_id(cfg, 0), name


def test_every_keyed_field_of_a_ckt_run_changes_its_key_and_the_seed_list_does_not():
    from ckt.experiments.sweep import RUN_SECTIONS, run_id

    base = Config()
    for section in RUN_SECTIONS:
        for name, value in base.section(section, keyed_only=True).items():
            if isinstance(value, (list, str)):
                continue  # choices and lists are covered by the cases below
            assert run_id(base.replace(**{name: _changed(value)}), 0) != run_id(base, 0), name
    for name, value in {"regime": "kd", "perturb": "fgsm", "norm": "linf", "mode": "embedding", "precision": "bf16",
                        "domains": ["movies"], "dataset": "x.csv", "backbone": "/other", "device": "auto"}.items():
        assert run_id(base.replace(**{name: value}), 0) != run_id(base, 0), name
    assert run_id(base.replace(seeds=[7, 8]), 0) == run_id(base, 0)
    assert run_id(base, 1) != run_id(base, 0)


def test_sot_settings_enter_the_key_only_of_runs_that_select_data():
    from ckt.experiments.sweep import run_id

    base = Config()
    assert run_id(base.replace(sot_push=4.0), 0) == run_id(base, 0)
    sot = base.replace(contamination=0.1, selector="sot")
    assert run_id(sot.replace(sot_push=4.0), 0) != run_id(sot, 0)


def test_ints_and_floats_are_the_same_run():
    from ckt.book.notebook import parameters
    from ckt.experiments.sweep import run_id

    assert Config(w_kd=1).w_kd == 1.0 and isinstance(Config(w_kd=1).w_kd, float)
    assert run_id(Config(w_kd=1, eps=0), 0) == run_id(Config(w_kd=1.0, eps=0.0), 0)
    # papermill -p weights "[0, 1, 4]" reuses the rows of the default [0.0, 1.0, 4.0]
    knobs, base = parameters({"weights": "[0, 1, 4]"}, "02_kd_weight")
    assert knobs["weights"] == [0.0, 1.0, 4.0] and all(isinstance(w, float) for w in knobs["weights"])
    ids = [run_id(base.replace(w_kd=w), 0) for w in knobs["weights"]]
    assert ids == [run_id(Config(w_kd=w), 0) for w in (0.0, 1.0, 4.0)]


def test_exponent_without_a_dot_is_a_number_in_a_list_knob():
    """YAML 1.1 reads ``2e-5`` as a string; ``-p full_lrs "[2e-5, 1E-4, 3.0e-6]"`` means three numbers."""
    from ckt.book.notebook import parameters

    knobs, _ = parameters({"full_lrs": "[2e-5, 1E-4, 3.0e-6]"}, "07_lora_patch")
    assert knobs["full_lrs"] == [2e-5, 1e-4, 3e-6]
    with pytest.raises(ConfigError, match="full_lrs"):
        parameters({"full_lrs": "[2e-5, fast]"}, "07_lora_patch")


@pytest.mark.parametrize("typed, meant", [
    ("epsilon", "eps"), ("Epsilon", "eps"), ("temperature", "tau"), ("learning_rate", "lr"),
    ("learning-rate", "lr"), ("lambda", "lam"), ("kd_weight", "w_kd"), ("grad_clip", "max_grad_norm"),
    ("num_epochs", "epochs"), ("batch", "batch_size"),
    ("epoch", "epochs"), ("aplha", "alpha"),  # no alias: the nearest spelling, as before
])
def test_an_unknown_key_suggests_its_alias_before_a_near_spelling(typed, meant):
    """`--set epsilon=0.2` means eps, but difflib's ratio 2M/(len a + len b) prefers 'precision': it shares 'e', 'si'
    and 'on' with 'epsilon' (M = 5, 2·5/16 = 0.625), 'eps' only 'eps' (M = 3, 2·3/10 = 0.6). The alias answers first."""
    import difflib

    if typed == "epsilon":
        assert difflib.SequenceMatcher(None, "epsilon", "precision").ratio() == 10 / 16
        assert difflib.SequenceMatcher(None, "epsilon", "eps").ratio() == 6 / 10
        assert difflib.get_close_matches("epsilon", list(Config().to_dict()), n=1) == ["precision"]
    with pytest.raises(ConfigError, match=rf"^unknown parameter '{typed}': did you mean '{meant}'\?$"):
        Config.from_dict({typed: 1})


def test_every_alias_names_a_field_and_no_field_is_an_alias():
    from ckt.config import ALIASES

    names = set(Config().to_dict())
    assert set(ALIASES.values()) <= names
    assert not set(ALIASES) & names


@pytest.mark.parametrize("field, typed, meant", [
    ("precision", "float16", "fp16"), ("precision", "bfloat16", "bf16"), ("device", "gpu", "cuda"),
    ("norm", "l_inf", "linf"), ("perturb", "gauss", "gaussian"), ("perturb", "pgdd", "pgd"),
])
def test_a_bad_choice_suggests_its_alias(field, typed, meant):
    with pytest.raises(ConfigError, match=rf"^{field}='{typed}' is not valid \(did you mean '{meant}'\?\)"):
        Config.from_dict({field: typed})


def test_an_unrelated_key_lists_the_valid_keys_instead():
    with pytest.raises(ConfigError, match=r"^unknown parameter 'zzzqqq': valid keys: dataset, train_size"):
        Config.from_dict({"zzzqqq": 1})


@pytest.mark.parametrize("changes, message", [
    ({"precision": "fp16", "device": "cpu"}, "precision=fp16 needs a CUDA device but device=cpu: use precision=bf16 "
                                            "on CPU, or device=cuda/auto"),
    ({"eval_harmful": 10, "eval_jailbreak": 11}, "eval_jailbreak=11 > eval_harmful=10: the jailbreak prompts are "
                                                 "held-out harmful prompts wrapped in a template, so lower "
                                                 "eval_jailbreak or raise eval_harmful"),
])
def test_settings_valid_alone_but_not_together_fail_in_validate_before_anything_runs(changes, message):
    with pytest.raises(ConfigError, match="^" + re.escape(message) + "$"):
        Config(**changes)
    # the neighbours of the boundary are fine
    Config(precision="fp16", device="auto")
    Config(precision="bf16", device="cpu")
    Config(eval_harmful=10, eval_jailbreak=10)


def test_the_user_fine_tune_has_its_own_section_and_no_ckt_run_reads_it():
    from ckt.experiments.sweep import run_id

    assert set(Config().section("sot_llm")) == {"user_lr", "user_epochs"}
    base = Config()
    assert run_id(base.replace(user_lr=1e-3, user_epochs=2), 0) == run_id(base, 0)
