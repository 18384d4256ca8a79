"""Hosts that serve OpenAI's Chat Completions format, and the provider prefixes shoal loads.

A host's name is the provider prefix of its model names (`groq:llama-3.1-8b-instant`). Each host
reads its base URL from `base_url_env` when that is set, and its API key from `api_key_env`.
Cloud hosts are priced with the genai-prices provider id in `price_provider_id`. Self-hosted
servers (vLLM, Ollama, llama.cpp's server) have no token price, so their cost is None unless a
user prices file gives one.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Host:
    """An OpenAI-compatible host: where it listens, which key it takes and how it is priced."""

    name: str
    default_base_url: str
    base_url_env: str
    api_key_env: str
    # The genai-prices provider id, or None for a self-hosted server without token prices.
    price_provider_id: str | None
    # A self-hosted server accepts requests without a key unless it was started with one.
    key_required: bool = True

    @property
    def self_hosted(self) -> bool:
        return self.price_provider_id is None

    def base_url(self, environ: Mapping[str, str] | None = None) -> str:
        """Return the base URL from `base_url_env` if set, else the host's default."""
        env = os.environ if environ is None else environ
        return env.get(self.base_url_env) or self.default_base_url

    def api_key(self, environ: Mapping[str, str] | None = None) -> str | None:
        env = os.environ if environ is None else environ
        return env.get(self.api_key_env) or None


# Price provider ids were checked against the snapshot bundled in genai-prices 0.2.3; a test
# fails if one of them disappears. Base URLs are the hosts' documented OpenAI-compatible
# endpoints, to which OpenAICompatProvider appends /chat/completions.
# Alibaba's DashScope (Qwen) endpoint is left out: genai-prices 0.2.3 has no Alibaba
# provider, so its calls could not be priced. Qwen models are listed on other hosts instead.
HOSTS: dict[str, Host] = {
    host.name: host
    for host in (
        Host("openai", "https://api.openai.com/v1", "OPENAI_BASE_URL", "OPENAI_API_KEY", "openai"),
        Host("mistral", "https://api.mistral.ai/v1", "MISTRAL_BASE_URL", "MISTRAL_API_KEY", "mistral"),
        Host("deepseek", "https://api.deepseek.com", "DEEPSEEK_BASE_URL", "DEEPSEEK_API_KEY", "deepseek"),
        Host("groq", "https://api.groq.com/openai/v1", "GROQ_BASE_URL", "GROQ_API_KEY", "groq"),
        Host("together", "https://api.together.xyz/v1", "TOGETHER_BASE_URL", "TOGETHER_API_KEY", "together"),
        Host("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_BASE_URL", "OPENROUTER_API_KEY", "openrouter"),
        Host("fireworks", "https://api.fireworks.ai/inference/v1", "FIREWORKS_BASE_URL", "FIREWORKS_API_KEY", "fireworks"),
        Host("vllm", "http://127.0.0.1:8000/v1", "VLLM_BASE_URL", "VLLM_API_KEY", None, key_required=False),
        Host("ollama", "http://127.0.0.1:11434/v1", "OLLAMA_BASE_URL", "OLLAMA_API_KEY", None, key_required=False),
        Host("llamacpp-server", "http://127.0.0.1:8080/v1", "LLAMACPP_BASE_URL", "LLAMACPP_API_KEY", None, key_required=False),
    )
}  # fmt: skip

# Providers with their own wire format, and the alias that names one of them.
NATIVE_PROVIDERS = ("anthropic", "google")
PROVIDER_ALIASES = {"gemini": "google"}
# Replays a model's logged responses and costs (shoal.providers.replay); it calls no host.
REPLAY_PROVIDER = "replay"

# Every provider prefix a model name may start with, in the order error messages list them.
KNOWN_PROVIDERS: tuple[str, ...] = (
    "encoder",
    "local",
    "openai",
    *NATIVE_PROVIDERS,
    *PROVIDER_ALIASES,
    *sorted(name for name in HOSTS if name != "openai"),
    REPLAY_PROVIDER,
)


def canonical_provider(provider: str) -> str:
    """Return the provider an alias stands for ("gemini" gives "google"), else `provider`."""
    return PROVIDER_ALIASES.get(provider, provider)
