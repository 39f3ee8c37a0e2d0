"""The one config object: defaults, regimes, and one clear line for every bad value."""

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
