"""Training loop and experiment runner on the real benchmark, at smoke size."""

import pytest
import torch

from ckt.config import REGIMES
from ckt.core.student import make_student
from ckt.core.train import apply_step, fit
from ckt.errors import ConfigError, TrainingDiverged
from ckt.experiments import prepare_run, run, run_seed, summary

METRICS = ["accuracy", "macro_f1", "kd_alignment", "noise_robustness", "alignment_stability", "overall_safety"]


@pytest.fixture(scope="module")
def prep(smoke_cfg):
    return prepare_run(smoke_cfg, progress=False)


@pytest.mark.parametrize("regime", sorted(REGIMES))
def test_every_regime_trains_and_reports_every_metric(prep, smoke_cfg, regime):
    _, record = run_seed(prep, 0, smoke_cfg.replace(regime=regime))
    for m in METRICS:
        assert 0.0 <= record[m] <= 100.0
    assert record["steps"] == 2  # 64 examples, batch 128, 2 epochs
    assert record["overflow_steps"] == 0


def test_same_seed_same_numbers_different_seed_different_numbers(prep, smoke_cfg):
    _, a = run_seed(prep, 3, smoke_cfg)
    _, b = run_seed(prep, 3, smoke_cfg)
    _, c = run_seed(prep, 4, smoke_cfg)
    keys = [k for k in a if k != "train_seconds"]
    assert {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert a["final_total"] != c["final_total"]


def test_run_gives_one_row_per_seed_and_a_ci_summary(prep, smoke_cfg):
    df = run(smoke_cfg, progress=False, prep=prep)
    assert list(df["seed"]) == [0, 1]
    s = summary(df)
    assert s.loc[0, "n_seeds"] == 2 and s.loc[0, "accuracy_ci"] >= 0


def test_teacher_is_better_than_chance_and_cached(prep, smoke_cfg):
    assert prep.teacher["teacher_accuracy"] > 50.0
    again = prepare_run(smoke_cfg, progress=False)
    assert torch.equal(again.t_train, prep.t_train) and torch.equal(again.x_train, prep.x_train)


def test_bf16_autocast_trains(prep, smoke_cfg):
    _, record = run_seed(prep, 0, smoke_cfg.replace(precision="bf16"))
    assert record["overflow_steps"] == 0 and record["accuracy"] > 0


def test_fp16_on_cpu_is_refused(prep, smoke_cfg):
    if torch.cuda.is_available():
        pytest.skip("fp16 is allowed where CUDA is present")
    with pytest.raises(ConfigError, match="bf16 on CPU"):
        run_seed(prep, 0, smoke_cfg.replace(precision="fp16"))


def test_a_non_finite_step_is_skipped_and_leaves_weights_untouched():
    w = torch.nn.Parameter(torch.ones(3))
    opt = torch.optim.SGD([w], lr=0.1)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    assert not apply_step((w * float("nan")).sum(), [w], opt, scaler, 1.0)
    assert torch.equal(w.detach(), torch.ones(3))
    assert not apply_step((w * torch.tensor([1.0, float("inf"), 1.0])).sum() * 0 + (w * w).sum() * float("inf"), [w],
                          opt, scaler, 1.0)
    assert torch.equal(w.detach(), torch.ones(3))
    assert apply_step((w * w).sum(), [w], opt, scaler, 1.0)
    assert not torch.equal(w.detach(), torch.ones(3))


def test_diverging_training_stops_with_a_clear_message(prep, smoke_cfg):
    cfg = smoke_cfg.replace(epochs=20, regime="ce")
    student = make_student(cfg, prep.x_train.shape[1])
    x = prep.x_train.clone()
    x[::2] = float("nan")  # every batch sees NaN features
    with pytest.raises(TrainingDiverged, match="lower lr"):
        fit(student, cfg, y=prep.y_train, teacher_logits=prep.t_train, seed=0, x=x)


def test_gradient_clipping_bounds_the_update(prep, smoke_cfg):
    cfg = smoke_cfg.replace(regime="ce", epochs=1, max_grad_norm=1e-6, lr=1.0, weight_decay=0.0)
    student = make_student(cfg, prep.x_train.shape[1])
    before = [p.detach().clone() for p in student.parameters()]
    fit(student, cfg, y=prep.y_train, teacher_logits=prep.t_train, seed=0, x=prep.x_train)
    # AdamW normalises the step, so check the clip via the stored gradient norm of the last step
    grads = torch.cat([p.grad.flatten() for p in student.parameters() if p.grad is not None])
    assert grads.norm() <= 1e-6 * 1.01
    assert any(not torch.equal(a, b.detach()) for a, b in zip(before, student.parameters()))


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["embedding", "lora"])
def test_embedding_and_lora_students_train_through_the_backbone(prep, smoke_cfg, mode):
    cfg = smoke_cfg.replace(mode=mode, lora_rank=2, train_size=16, batch_size=8, epochs=1, eval_size=16, max_length=32)
    p = prepare_run(cfg, progress=False)
    student, record = run_seed(p, 0, cfg)
    assert record["steps"] == 2 and 0 <= record["overall_safety"] <= 100
    trained = [n for n, q in student.named_parameters() if q.requires_grad]
    if mode == "lora":
        assert any("lora_" in n for n in trained)
    else:
        assert all(n.startswith("head.") for n in trained)


def test_fgsm_from_the_clean_pass_equals_a_separate_fgsm(prep, smoke_cfg):
    """loss_terms reuses the clean forward for FGSM; the result must equal ckt.core.perturb.fgsm_delta's."""
    import torch.nn.functional as F

    from ckt.core.losses import noise_robust_loss
    from ckt.core.perturb import PerturbSpec, make_delta
    from ckt.core.train import loss_terms, train_spec

    cfg = smoke_cfg.replace(perturb="fgsm", regime="adv")
    torch.manual_seed(0)
    student = make_student(cfg, prep.x_train.shape[1])
    batch = {"x": prep.x_train[:32], "y": prep.y_train[:32], "t": prep.t_train[:32]}
    terms = loss_terms(student, batch, cfg, train_spec(cfg), torch.Generator().manual_seed(0))
    spec = PerturbSpec("fgsm", cfg.eps, cfg.norm)
    delta = make_delta(spec, batch["x"], lambda xp: F.cross_entropy(student.head(xp), batch["y"]))
    expected = noise_robust_loss(student.head(batch["x"]), student.head(batch["x"] + delta), batch["y"], cfg.alpha)
    assert torch.allclose(terms["nr"], expected, atol=1e-6)


@pytest.mark.parametrize("perturb, random_start", [("fgsm", True), ("pgd", False), ("pgd", True)])
@pytest.mark.parametrize("norm", ["l2", "linf"])
def test_smart_term_is_not_zero_whatever_the_ascent_starts_from(perturb, random_start, norm):
    """At δ = 0 the symmetric KL has zero gradient: an ascent from 0 never moves and SMART would be plain CE.

    SMART (Jiang et al. 2020) always starts from a random δ, so its term is positive under FGSM and PGD alike.
    """
    from ckt.config import Config
    from ckt.core.perturb import PerturbSpec
    from ckt.core.train import loss_terms, smart_spec

    cfg = Config.from_dict({"regime": "smart", "perturb": perturb, "norm": norm, "eps": 0.1})
    spec = PerturbSpec(perturb, cfg.eps, norm, steps=cfg.pgd_steps, random_start=random_start)
    assert smart_spec(spec).kind == "pgd" and smart_spec(spec).random_start
    torch.manual_seed(0)
    student = make_student(cfg, 16)
    gen = torch.Generator().manual_seed(0)
    batch = {"x": torch.randn(32, 16, generator=gen), "y": torch.randint(0, 2, (32,), generator=gen),
             "t": torch.randn(32, 2, generator=gen)}
    terms = loss_terms(student, batch, cfg, spec, torch.Generator().manual_seed(0))
    assert terms["smart"].item() > 0
    assert terms["total"].item() > terms["nr"].item()  # the SMART term really enters the objective


def test_smart_spec_leaves_gaussian_and_none_alone():
    from ckt.core.perturb import PerturbSpec
    from ckt.core.train import smart_spec

    for kind in ("gaussian", "none"):
        assert smart_spec(PerturbSpec(kind, 0.1, "l2")) == PerturbSpec(kind, 0.1, "l2")
    fgsm = smart_spec(PerturbSpec("fgsm", 0.3, "linf"))
    assert (fgsm.steps, fgsm.eta, fgsm.eps, fgsm.norm) == (1, 0.3, 0.3, "linf")  # one FGSM-sized step
