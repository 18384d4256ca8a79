"""Turning a model name, `provider:id`, into a provider.

Known providers:
- `encoder:minilm`: the embedded sentence encoder (trained on labelled examples before use);
- `local:<weight name or path to a .gguf file>`: llama.cpp in-process;
- `openai:<model id>`: any OpenAI-compatible chat-completions endpoint, configured with
  OPENAI_API_KEY and OPENAI_BASE_URL;
- `anthropic:<model id>`: Anthropic's Messages API (ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL);
- `google:<model id>` or `gemini:<model id>`: the Gemini API (GEMINI_API_KEY or GOOGLE_API_KEY,
  GEMINI_BASE_URL);
- `<host>:<model id>` for each OpenAI-compatible host in shoal.catalogue.hosts.HOSTS (mistral,
  deepseek, groq, together, openrouter, fireworks, and the self-hosted vllm, ollama and
  llamacpp-server), configured with the host's `<HOST>_API_KEY` and `<HOST>_BASE_URL`;
- `replay:<model>`: the responses and costs that model has logged, read from the logged outcomes
  at SHOAL_REPLAY (a RouterBench-style CSV file, a folder of them, or a shoal records.jsonl).
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from shoal.catalogue.hosts import (
    HOSTS,
    KNOWN_PROVIDERS,
    REPLAY_PROVIDER,
    Host,
    canonical_provider,
)
from shoal.errors import ModelNotFoundError, UserInputError
from shoal.pricing import DEFAULT_MACHINE, MachinePrice
from shoal.providers.encoder import EncoderClassifier, SentenceEncoder
from shoal.providers.local import LlamaCppProvider
from shoal.providers.openai_compat import API_KEY_ENV, BASE_URL_ENV, OpenAICompatProvider
from shoal.providers.replay import ReplayProvider
from shoal.weights import REGISTRY, resolve_weights

if TYPE_CHECKING:
    from shoal.providers.anthropic import AnthropicProvider
    from shoal.providers.gemini import GeminiProvider
    from shoal.simulate.outcomes import LoggedOutcomes

logger = logging.getLogger("shoal.models")

# Every provider prefix, "encoder", "local" and "openai" first.
PROVIDERS = KNOWN_PROVIDERS
ENCODERS = {"minilm": "minilm-int8"}
LOCAL_MODELS = ("qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
REPLAY_ENV = "SHOAL_REPLAY"


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
    # An alias becomes the provider it names, so `gemini:x` and `google:x` are the same model.
    return ModelName(canonical_provider(provider), model_id)


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
) -> LlamaCppProvider | OpenAICompatProvider | AnthropicProvider | GeminiProvider | ReplayProvider:
    """Return the provider for a generative model name, e.g. `local:...`, `groq:...`.

    Building a provider sends no request: API providers only read their base URL and key from
    the environment. A missing key raises UserInputError naming its environment variable.
    A `replay:` model reads the logs at SHOAL_REPLAY (once per path in a process).
    """
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
    if parsed.provider == "anthropic":
        return _load_anthropic(name, parsed)
    if parsed.provider == "google":
        return _load_gemini(name, parsed)
    if parsed.provider in HOSTS:
        return _load_host(name, parsed, HOSTS[parsed.provider])
    if parsed.provider == REPLAY_PROVIDER:
        return _load_replay(name, parsed)
    raise ModelNotFoundError(
        f"{name!r} cannot be an escalation tier; use a generative model, e.g. "
        "local:qwen2.5-coder-1.5b or openai:gpt-4o-mini (providers: "
        + ", ".join(provider for provider in PROVIDERS if provider != "encoder")
        + ")"
    )


def _load_host(name: str, parsed: ModelName, host: Host) -> OpenAICompatProvider:
    api_key = host.api_key()
    # A base URL set in the environment may point at a proxy that needs no key, as for openai.
    if host.key_required and not api_key and not os.environ.get(host.base_url_env):
        raise UserInputError(
            f"{name} needs an API key: set {host.api_key_env} (and {host.base_url_env} for a "
            f"host other than {host.default_base_url})"
        )
    return OpenAICompatProvider(
        parsed.model_id,
        base_url=host.base_url(),
        api_key=api_key,
        provider_id=host.name,
        # NOTE: self-hosted hosts have no genai-prices provider, so pricing falls back to the
        # host name, finds nothing and leaves the cost None (with one warning per model).
        price_provider_id=host.price_provider_id,
    )


def _load_anthropic(name: str, parsed: ModelName) -> AnthropicProvider:
    from shoal.providers import anthropic

    if not os.environ.get(anthropic.API_KEY_ENV) and not os.environ.get(anthropic.BASE_URL_ENV):
        raise UserInputError(
            f"{name} needs an API key: set {anthropic.API_KEY_ENV} (and "
            f"{anthropic.BASE_URL_ENV} for a host other than {anthropic.DEFAULT_BASE_URL})"
        )
    return anthropic.AnthropicProvider(parsed.model_id)


def _load_gemini(name: str, parsed: ModelName) -> GeminiProvider:
    from shoal.providers import gemini

    key_envs = (gemini.API_KEY_ENV, gemini.FALLBACK_API_KEY_ENV)
    if not any(os.environ.get(env) for env in key_envs) and not os.environ.get(
        gemini.BASE_URL_ENV
    ):
        raise UserInputError(
            f"{name} needs an API key: set {key_envs[0]} or {key_envs[1]} (and "
            f"{gemini.BASE_URL_ENV} for a host other than {gemini.DEFAULT_BASE_URL})"
        )
    return gemini.GeminiProvider(parsed.model_id)


def _load_replay(name: str, parsed: ModelName) -> ReplayProvider:
    value = os.environ.get(REPLAY_ENV, "").strip()
    if not value:
        raise UserInputError(
            f"{name} replays logged responses: set {REPLAY_ENV} to a RouterBench-style CSV "
            "file, a folder of them, or a shoal records.jsonl file"
        )
    path = Path(value).expanduser().resolve()
    if not path.exists():
        raise UserInputError(
            f"{REPLAY_ENV}={value} not found; set it to an existing CSV file, folder of CSV "
            "files or records.jsonl file"
        )
    return ReplayProvider(_replay_logs(str(path)), parsed.model_id)


@functools.cache
def _replay_logs(path: str) -> tuple[LoggedOutcomes, ...]:
    """Load the logged outcomes at `path`, cached so each file is read once per process."""
    # Imported here, so the log loaders are imported only when a replay model is used.
    from shoal.simulate.outcomes import (
        load_routerbench,
        load_routerbench_dir,
        load_shoal_records_per_model,
    )

    logs = Path(path)
    if logs.is_dir():
        return tuple(load_routerbench_dir(logs))
    if logs.suffix == ".csv":
        return (load_routerbench(logs),)
    if logs.suffix == ".jsonl":
        return tuple(load_shoal_records_per_model(logs))
    raise UserInputError(
        f"{REPLAY_ENV}={path} is neither a folder, a .csv file nor a .jsonl file; set it to a "
        "RouterBench-style CSV file, a folder of them, or a shoal records.jsonl file"
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
