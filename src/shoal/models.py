"""Turning a model name, `provider:id`, into a provider.

Known providers:
- `encoder:minilm`: the embedded sentence encoder (trained on labelled examples before use);
- `local:<weight name or path to a .gguf file>`: llama.cpp in-process;
- `openai:<model id>`: any OpenAI-compatible chat-completions endpoint, configured with
  OPENAI_API_KEY and OPENAI_BASE_URL.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from shoal.errors import ModelNotFoundError, UserInputError
from shoal.pricing import DEFAULT_MACHINE, MachinePrice
from shoal.providers.encoder import EncoderClassifier, SentenceEncoder
from shoal.providers.local import LlamaCppProvider
from shoal.providers.openai_compat import API_KEY_ENV, BASE_URL_ENV, OpenAICompatProvider
from shoal.weights import REGISTRY, resolve_weights

logger = logging.getLogger("shoal.models")

PROVIDERS = ("encoder", "local", "openai")
ENCODERS = {"minilm": "minilm-int8"}
LOCAL_MODELS = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")


@dataclass(frozen=True)
class ModelName:
    provider: str
    model_id: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model_id}"


def parse_model(name: str) -> ModelName:
    """Split `provider:id`; an unknown provider raises ModelNotFoundError."""
    provider, sep, model_id = name.partition(":")
    if not sep or not model_id:
        raise ModelNotFoundError(
            f"invalid model name {name!r}: write provider:id, e.g. local:qwen2.5-coder-1.5b "
            f"(providers: {', '.join(PROVIDERS)})"
        )
    if provider not in PROVIDERS:
        raise ModelNotFoundError(
            f"unknown provider {provider!r} in {name!r}; known providers: {', '.join(PROVIDERS)}"
        )
    return ModelName(provider, model_id)


def load_encoder(
    name: str = "encoder:minilm",
    *,
    machine: MachinePrice = DEFAULT_MACHINE,
    allow_download: bool = False,
) -> EncoderClassifier:
    """Load an untrained encoder classifier (call `fit` before it classifies)."""
    parsed = parse_model(name)
    if parsed.provider != "encoder":
        raise ModelNotFoundError(
            f"{name!r} is not an encoder; tier 0 needs one of: "
            + ", ".join(f"encoder:{known}" for known in ENCODERS)
        )
    if parsed.model_id in ENCODERS:
        path = resolve_weights(ENCODERS[parsed.model_id], allow_download=allow_download)
    elif Path(parsed.model_id).expanduser().is_file():
        path = resolve_weights(parsed.model_id)
    else:
        raise ModelNotFoundError(
            f"unknown encoder {name!r}; known: "
            + ", ".join(f"encoder:{known}" for known in ENCODERS)
            + ", or encoder:PATH to a MiniLM-compatible .onnx file"
        )
    return EncoderClassifier(SentenceEncoder(path), model=str(parsed), machine=machine)


def load_provider(
    name: str,
    *,
    machine: MachinePrice = DEFAULT_MACHINE,
    allow_download: bool = False,
) -> LlamaCppProvider | OpenAICompatProvider:
    """Return the provider for a generative model name (`local:...` or `openai:...`)."""
    parsed = parse_model(name)
    if parsed.provider == "local":
        return _load_local(parsed, machine=machine, allow_download=allow_download)
    if parsed.provider == "openai":
        if not os.environ.get(API_KEY_ENV) and not os.environ.get(BASE_URL_ENV):
            raise UserInputError(
                f"{name} needs an API key: set {API_KEY_ENV} (and {BASE_URL_ENV} for a host "
                "other than api.openai.com)"
            )
        return OpenAICompatProvider(parsed.model_id)
    raise ModelNotFoundError(
        f"{name!r} cannot be an escalation tier; use a local: or openai: model"
    )


def _load_local(
    parsed: ModelName, *, machine: MachinePrice, allow_download: bool
) -> LlamaCppProvider:
    if parsed.model_id in REGISTRY and parsed.model_id in LOCAL_MODELS:
        path = resolve_weights(parsed.model_id, allow_download=allow_download)
    elif parsed.model_id.endswith(".gguf") or Path(parsed.model_id).expanduser().exists():
        if not Path(parsed.model_id).expanduser().is_file():
            raise UserInputError(
                f"model file {parsed.model_id} not found; give the path of an existing .gguf file"
            )
        path = resolve_weights(parsed.model_id)
    else:
        raise ModelNotFoundError(
            f"unknown local model {str(parsed)!r}; known: "
            + ", ".join(f"local:{known}" for known in LOCAL_MODELS)
            + ", or local:PATH to a .gguf file"
        )
    return LlamaCppProvider(path, model=str(parsed), machine=machine)
