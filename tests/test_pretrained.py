"""Students and teachers as Hugging Face-style folders: a saved student reloads bit-identically (head and
peft adapter), ``ckt predict`` reads a student folder, and an older run folder still loads or fails with
one line that names the fix."""

import json

import pytest
import torch
from safetensors.torch import load_file, save_file

from ckt.cli import load_run_student
from ckt.config import Config
from ckt.core.student import from_pretrained, make_student, save_pretrained, trainable_state
from ckt.errors import ModelError


def _randomise(module, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.copy_(torch.randn(p.shape, generator=gen))


def _same_weights(a, b):
    sa, sb = trainable_state(a), trainable_state(b)
    assert sa.keys() == sb.keys() and sa
    for name in sa:
        assert torch.equal(sa[name], sb[name]), name


def test_a_feature_student_reloads_bit_identically(tmp_path):
    cfg = Config(head_hidden=16)
    student = make_student(cfg, 384)
    _randomise(student)
    folder = save_pretrained(student, tmp_path / "student_seed0", cfg)
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors"}
    meta = json.loads((folder / "config.json").read_text())
    assert meta["architecture"] == "ckt-student" and meta["config"] == cfg.to_dict()
    again = from_pretrained(folder)
    _same_weights(student, again)
    x = torch.randn(5, 384)
    assert torch.equal(student.head(x), again.head(x))


@pytest.mark.slow
def test_a_lora_student_saves_its_adapter_with_peft_and_reloads_bit_identically(tmp_path):
    from peft import get_peft_model_state_dict

    cfg = Config(mode="lora", lora_rank=2, head_hidden=0)
    student = make_student(cfg, 384)
    _randomise(student)
    folder = save_pretrained(student, tmp_path / "s", cfg)
    adapter = load_file(str(folder / "adapter" / "adapter_model.safetensors"))
    expected = get_peft_model_state_dict(student.encoder.backbone)
    assert adapter.keys() == expected.keys() and all("lora_" in k for k in adapter)
    assert (folder / "adapter" / "adapter_config.json").is_file()
    again = from_pretrained(folder)
    _same_weights(student, again)
    texts = ["a fine film", "dreadful"]
    assert torch.equal(student.pooled(texts), again.pooled(texts))


def test_a_run_folder_from_before_student_folders_still_loads(tmp_path):
    cfg = Config(head_hidden=0, seeds=[4])
    student = make_student(cfg, 384)
    _randomise(student, 1)
    run = tmp_path / "old-run"
    run.mkdir()
    (run / "config.yaml").write_text(cfg.to_yaml())
    save_file(trainable_state(student), str(run / "student_seed4.safetensors"))
    loaded, seed = load_run_student(run, None)
    assert seed == 4
    _same_weights(student, loaded)


def test_an_old_file_with_other_weight_names_fails_with_one_line_naming_the_fix(tmp_path):
    cfg = Config(seeds=[0])
    (tmp_path / "config.yaml").write_text(cfg.to_yaml())
    save_file({"base_model.model.head.weight": torch.zeros(2, 2)}, str(tmp_path / "student_seed0.safetensors"))
    with pytest.raises(ModelError, match=r"retrain with `ckt train --save") as err:
        load_run_student(tmp_path, None)
    assert "\n" not in str(err.value)


def test_a_folder_that_is_not_a_student_is_refused(tmp_path):
    (tmp_path / "config.json").write_text('{"architecture": "bert"}')
    with pytest.raises(ModelError, match="not a saved ckt student"):
        from_pretrained(tmp_path)
