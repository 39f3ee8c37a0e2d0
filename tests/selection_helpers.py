"""What the selection tests share: a deterministic stand-in for the frozen backbone's features, and a small
harmful-prompt world patched into both modules that read it."""

import torch

POOLS = {"mix": [f"harmful mix {i}" for i in range(12)], "reference": [f"harmful ref {i}" for i in range(6)],
         "heldout": [f"harmful heldout {i}" for i in range(4)]}


def feature_of(text: str) -> torch.Tensor:
    """A deterministic 3-d feature per text (stands in for the frozen backbone)."""
    g = torch.Generator().manual_seed(sum(map(ord, text)) * 31 + len(text))
    return torch.randn(3, generator=g)


def patch_harmful_pools(monkeypatch) -> dict:
    """Serve :data:`POOLS` to ckt.sot.selection and ckt.sot.contamination; returns them."""
    from ckt.sot import contamination, selection

    monkeypatch.setattr(selection, "harmful_pools", lambda: POOLS)
    monkeypatch.setattr(contamination, "harmful_pools", lambda: POOLS)
    return POOLS
