"""Safety Optimal Transport (SOT, arXiv 2601.07200): push-pull data weighting and Top-K selection.

A fine-tuning set may hold harmful or mislabelled examples. SOT learns one weight per example,
``w`` on the probability simplex Δ_n, so that the weighted set is *pulled* towards a small
trusted safe reference S and *pushed* away from a harmful reference H, then keeps the Top-K::

    min_{w ∈ Δ_n}  J(w) = OT_ε(w, S) − γ · OT_ε(w, H) + ρ · KL(w ‖ 1/n)

- ``OT_ε(w, R)`` is the entropic optimal-transport cost between the weighted training points
  and the uniform reference points, with cost C_ij = ‖z_i − r_j‖² (scaled so that the mean
  cost to the safe reference is 1, making ε, γ and ρ scale-free); solved by POT's log-domain
  Sinkhorn;
- the pull term alone (γ = 0) is the "pull-only" ablation;
- ρ · KL(w ‖ uniform) keeps the weights from collapsing onto a handful of examples.

The gradient of ``OT_ε(w, R)`` with respect to ``w`` is the Sinkhorn dual potential ``f`` of the
source (defined up to a constant, which the simplex ignores), so the weights follow exponentiated
gradient (mirror descent on the simplex), with the KL term taken implicitly so that any step
size η is stable::

    log w ← (log w − η · (f_S − γ f_H)) / (1 + η ρ),   then renormalise.

Its fixed point is w ∝ exp(−(f_S − γ f_H) / ρ): smaller ρ, sharper weights.

Samples are embedded as (x, y) pairs, as SOT embeds (prompt, response) pairs:
``z = [feature(x), β · onehot(y)]`` with the unit-norm frozen-backbone feature, so a text with
the wrong label is far from its correctly labelled twin (distance² 2β²).
"""

from __future__ import annotations

import numpy as np
import ot

from ..errors import ConfigError

INNER_ITERATIONS = 20  # Sinkhorn iterations per weight step (warm-started)
MIN_LOG_WEIGHT = -500.0  # e^-500 ≈ 1e-217: "no mass", yet finite in log-domain Sinkhorn


def pair_embedding(features: np.ndarray, labels: np.ndarray, label_scale: float = 1.0) -> np.ndarray:
    """``[feature, β · onehot(label)]`` per row: the label-aware embedding of an (x, y) pair."""
    features = np.asarray(features, dtype=np.float64)
    onehot = np.eye(2)[np.asarray(labels, dtype=int)]
    return np.hstack([features, label_scale * onehot])


def sq_cost(z: np.ndarray, r: np.ndarray) -> np.ndarray:
    """C_ij = ‖z_i − r_j‖² (the transport cost)."""
    return np.maximum((z * z).sum(1)[:, None] + (r * r).sum(1)[None, :] - 2.0 * z @ r.T, 0.0)


def entropic_ot(a: np.ndarray, b: np.ndarray, cost: np.ndarray, reg: float, warm: tuple | None = None,
                max_iter: int = 2000) -> tuple[float, np.ndarray, np.ndarray, tuple]:
    """Entropic OT between histograms ``a`` (n) and ``b`` (m), by POT's log-domain Sinkhorn.

    Returns ``(value, plan, f, scalings)``: value = ⟨P, C⟩ + ε Σ P (log P − 1) at the optimal plan
    P; ``f`` = ε log u, the source dual potential centred to mean 0 — the gradient of the value
    with respect to ``a`` along the simplex; ``scalings`` = (log u, log v), to warm-start the next
    solve when ``a`` has changed a little (then a few iterations suffice).
    """
    plan, log = ot.sinkhorn(a, b, cost, reg, method="sinkhorn_log", numItermax=max_iter, stopThr=1e-7, warn=False,
                            log=True, warmstart=warm)
    nz = plan > 0
    value = float((plan * cost).sum() + reg * (plan[nz] * (np.log(plan[nz]) - 1.0)).sum())
    f = reg * log["log_u"]
    return value, plan, f - f.mean(), (log["log_u"], log["log_v"])


def sot_weights(z: np.ndarray, safe: np.ndarray, harm: np.ndarray | None, push: float = 1.0,
                reg: float = 0.05, entropy: float = 0.05, steps: int = 100, lr: float = 1.0,
                inner: int = INNER_ITERATIONS) -> tuple[np.ndarray, list[float]]:
    """Minimise J(w) (module docstring) over the simplex; returns ``(w, objective per step)``.

    ``harm=None`` or ``push=0`` gives the pull-only weights. Each step runs at most ``inner``
    Sinkhorn iterations, warm-started from the previous step's scalings: the potentials are
    refined along with the weights instead of being solved to convergence for every iterate.
    """
    if reg <= 0 or entropy < 0 or steps < 1 or lr <= 0 or push < 0:
        raise ConfigError(f"SOT needs reg > 0, entropy ≥ 0, steps ≥ 1, lr > 0, push ≥ 0 "
                          f"(got reg={reg}, entropy={entropy}, steps={steps}, lr={lr}, push={push})")
    n = len(z)
    c_safe = sq_cost(z, safe)
    scale = c_safe.mean() or 1.0
    c_safe = c_safe / scale
    c_harm = sq_cost(z, harm) / scale if harm is not None and push > 0 else None
    b_safe = np.full(len(safe), 1.0 / len(safe))
    b_harm = np.full(len(harm), 1.0 / len(harm)) if c_harm is not None else None
    log_w = np.full(n, -np.log(n))
    history, warm_safe, warm_harm = [], None, None
    for _ in range(steps):
        w = np.exp(log_w)
        value, _, grad, warm_safe = entropic_ot(w, b_safe, c_safe, reg, warm_safe, inner)
        if c_harm is not None:
            v_harm, _, f_harm, warm_harm = entropic_ot(w, b_harm, c_harm, reg, warm_harm, inner)
            value, grad = value - push * v_harm, grad - push * f_harm
        history.append(value + entropy * float((w * (log_w + np.log(n))).sum()))
        log_w = (log_w - lr * grad) / (1.0 + lr * entropy)
        log_w = np.maximum(log_w - np.logaddexp.reduce(log_w), MIN_LOG_WEIGHT)  # no exact zeros for Sinkhorn
        log_w -= np.logaddexp.reduce(log_w)
    return np.exp(log_w), history


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Boolean mask of the ``k`` highest scores (ties broken by index, deterministically)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    keep = np.zeros(len(scores), dtype=bool)
    keep[order[:k]] = True
    return keep


def selection_metrics(kept: np.ndarray, contaminant: np.ndarray) -> dict[str, float]:
    """How well a selection removed the contaminants (all in %).

    - harmful recall = |kept ∩ C| / |C|: the contaminants that survive (lower is better; SOT's
      "harmful recall" — it reports 0.093 at its scale);
    - removal precision = |removed ∩ C| / |removed|;
    - removal recall = |removed ∩ C| / |C| = 100 − harmful recall.
    """
    kept, c = np.asarray(kept, bool), np.asarray(contaminant, bool)
    removed = ~kept
    n_c = int(c.sum())
    return {
        "harmful_recall": 100.0 * float((kept & c).sum()) / n_c if n_c else float("nan"),
        "removal_precision": 100.0 * float((removed & c).sum() / removed.sum()) if removed.any() else float("nan"),
        "removal_recall": 100.0 * float((removed & c).sum()) / n_c if n_c else float("nan"),
        "kept": int(kept.sum()),
    }
