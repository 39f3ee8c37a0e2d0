"""Draw the method figure of book/method.md: python book/figures/method_figure.py (writes method.png beside it)."""

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - the backend is chosen first
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

BOXES = {  # name: (x, y, w, h, text, colour)
    "text": (0.2, 2.6, 1.5, 0.8, "sentence x", "#eeeeee"),
    "backbone": (2.2, 2.6, 2.0, 0.8, "frozen MiniLM\n(mean-pool, L2)", "#c6dbef"),
    "cache": (4.7, 2.6, 1.8, 0.8, "cached feature\nh(x), ‖h‖ = 1", "#c6dbef"),
    "delta": (4.5, 1.1, 2.2, 0.8, "h(x) + δ\n‖δ‖ ≤ ε (Gauss/FGSM/PGD)", "#fdd0a2"),
    "head": (7.0, 1.85, 1.6, 0.8, "student head f\n(trainable MLP)", "#c7e9c0"),
    "teacher": (2.2, 4.1, 2.0, 0.8, "teacher: MiniLM fully\nfine-tuned on the pool", "#dadaeb"),
    "soft": (4.7, 4.1, 1.8, 0.8, "soft labels\np_T = softmax(z_T/τ)", "#dadaeb"),
    "loss": (9.1, 1.45, 2.7, 1.6, "L = w_KD·L_KD (Eq. 3)\n+ L_NR (Eq. 4: α clean CE\n   + (1−α) perturbed CE)\n"
             "+ λ‖∇θ L_NR‖² (Eq. 5)\nthen clip ‖g‖ (Eq. 6)", "#fcbba1"),
}
ARROWS = [("text", "backbone"), ("backbone", "cache"), ("cache", "head"), ("cache", "delta"), ("delta", "head"),
          ("text", "teacher"), ("teacher", "soft"), ("soft", "loss"), ("head", "loss")]


def centre(name: str, side: str) -> tuple[float, float]:
    x, y, w, h, *_ = BOXES[name]
    return {"left": (x, y + h / 2), "right": (x + w, y + h / 2), "top": (x + w / 2, y + h),
            "bottom": (x + w / 2, y)}[side]


def main() -> Path:
    fig, ax = plt.subplots(figsize=(12, 4.6))
    for x, y, w, h, text, colour in BOXES.values():
        ax.add_patch(FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0.05", fc=colour, ec="#444444"))
        ax.text(x + w / 2, y + h / 2, text, ha="center", va="center", fontsize=9)
    for a, b in ARROWS:
        ax_, ay, aw, ah = BOXES[a][:4]
        bx, by, bw, bh = BOXES[b][:4]
        start = centre(a, "right") if bx > ax_ + aw - 0.01 else centre(a, "bottom" if by < ay else "top")
        end = centre(b, "left") if bx > ax_ + aw - 0.01 else centre(b, "top" if by < ay else "bottom")
        ax.add_patch(FancyArrowPatch(start, end, arrowstyle="-|>", mutation_scale=12, color="#444444",
                                     connectionstyle="arc3,rad=0.0"))
    ax.text(0.2, 0.35, "Computed once and cached: the features h(x) and the teacher's logits z_T. Trained: only the "
            "head "
            "(milliseconds per epoch). δ is added to the feature (feature space, the default) or to the token "
            "embeddings (embedding space).", fontsize=8.5, wrap=True)
    ax.set(xlim=(0, 12), ylim=(0, 5.2))
    ax.axis("off")
    out = Path(__file__).with_name("method.png")
    fig.savefig(out, dpi=130, bbox_inches="tight")
    return out


if __name__ == "__main__":
    print(main())
