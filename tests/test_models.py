"""load_provider for every provider prefix: class, base URL, key variable and pricing.

No test sends a request to a vendor: provider objects are only built, and the requests that are
sent go to the fake Chat Completions server on 127.0.0.1, through each host's base URL variable.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from urllib.parse import urlsplit

import pytest
from fake_openai import FakeOpenAI

from shoal.catalogue.hosts import HOSTS, KNOWN_PROVIDERS, Host
from shoal.errors import ModelNotFoundError, UserInputError
from shoal.models import load_provider, parse_model
from shoal.pricing.api import _bundled_snapshot  # pyright: ignore[reportPrivateUsage]
from shoal.providers.anthropic import AnthropicProvider
from shoal.providers.base import Message, Request
from shoal.providers.gemini import GeminiProvider
from shoal.providers.openai_compat import OpenAICompatProvider

CLOUD_HOSTS = sorted(name for name, host in HOSTS.items() if not host.self_hosted)
SELF_HOSTED = sorted(name for name, host in HOSTS.items() if host.self_hosted)
OTHER_ENV = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "GEMINI_BASE_URL",
)
REQUEST = Request(messages=(Message("user", "Where is my card?"),), max_tokens=4)

# A model id each cloud host's genai-prices provider prices, for the cost check.
PRICED_MODEL_IDS = {
    "openai": "gpt-4o-mini",
    "mistral": "mistral-small-latest",
    "deepseek": "deepseek-chat",
    "groq": "llama-3.1-8b-instant",
    "together": "meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo",
    "openrouter": "meta-llama/llama-3.2-3b-instruct",
    "fireworks": "accounts/fireworks/models/llama-v3p1-8b-instruct",
}


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Remove every key and base URL variable, so only what a test sets is seen."""
    for host in HOSTS.values():
        monkeypatch.delenv(host.api_key_env, raising=False)
        monkeypatch.delenv(host.base_url_env, raising=False)
    for name in OTHER_ENV:
        monkeypatch.delenv(name, raising=False)


def send(provider: OpenAICompatProvider) -> object:
    return asyncio.run(provider.complete(REQUEST))


# OpenAI-compatible hosts


@pytest.mark.parametrize("name", sorted(HOSTS))
def test_host_builds_openai_compat_provider(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    host = HOSTS[name]
    monkeypatch.setenv(host.api_key_env, "test-key")

    provider = load_provider(f"{name}:some-model")

    assert isinstance(provider, OpenAICompatProvider)
    assert provider.model == f"{name}:some-model"
    assert provider.model_id == "some-model"
    assert provider.base_url == host.default_base_url
    assert provider.price_provider_id == (host.price_provider_id or name)


@pytest.mark.parametrize("name", CLOUD_HOSTS)
def test_cloud_host_without_key(name: str) -> None:
    host = HOSTS[name]

    with pytest.raises(UserInputError) as caught:
        load_provider(f"{name}:some-model")

    message = str(caught.value)
    assert host.api_key_env in message
    assert f"{name}:some-model" in message
    assert "\n" not in message


@pytest.mark.parametrize("name", CLOUD_HOSTS)
def test_cloud_host_price_provider_exists(name: str) -> None:
    provider_id = HOSTS[name].price_provider_id
    assert provider_id is not None

    known = {provider.id for provider in _bundled_snapshot().providers}

    assert provider_id in known


@pytest.mark.parametrize("name", CLOUD_HOSTS)
def test_cloud_host_key_and_base_url_env(
    name: str, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    host = HOSTS[name]
    monkeypatch.setenv(host.base_url_env, fake_openai.base_url)
    monkeypatch.setenv(host.api_key_env, fake_openai.api_key)
    model_id = PRICED_MODEL_IDS[name]

    provider = load_provider(f"{name}:{model_id}")
    response = send(provider)

    [received] = fake_openai.requests
    assert received.headers["Authorization"] == f"Bearer {fake_openai.api_key}"
    assert received.body["model"] == model_id
    assert response.cost is not None
    assert response.cost.amount > Decimal(0)


def test_every_host_has_a_priced_model_id() -> None:
    assert sorted(PRICED_MODEL_IDS) == CLOUD_HOSTS


@pytest.mark.parametrize("name", SELF_HOSTED)
def test_self_hosted_defaults_to_localhost(name: str) -> None:
    provider = load_provider(f"{name}:qwen2.5-0.5b")

    assert isinstance(provider, OpenAICompatProvider)
    assert urlsplit(provider.base_url).hostname == "127.0.0.1"
    assert provider.base_url == HOSTS[name].default_base_url


@pytest.mark.parametrize(
    ("name", "url"),
    [
        ("vllm", "http://127.0.0.1:8000/v1"),
        ("ollama", "http://127.0.0.1:11434/v1"),
        ("llamacpp-server", "http://127.0.0.1:8080/v1"),
    ],
)
def test_self_hosted_default_urls(name: str, url: str) -> None:
    assert HOSTS[name].default_base_url == url


@pytest.mark.parametrize(
    ("name", "variable"),
    [("vllm", "VLLM_BASE_URL"), ("ollama", "OLLAMA_BASE_URL"), ("llamacpp-server", "LLAMACPP_BASE_URL")],
)
def test_self_hosted_base_url_variable(name: str, variable: str) -> None:
    assert HOSTS[name].base_url_env == variable


@pytest.mark.parametrize("name", SELF_HOSTED)
def test_self_hosted_cost_is_none(
    name: str, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_openai.api_key = ""
    monkeypatch.setenv(HOSTS[name].base_url_env, fake_openai.base_url)

    response = send(load_provider(f"{name}:gpt-4o-mini"))

    [received] = fake_openai.requests
    assert "Authorization" not in received.headers
    assert response.text == "ok"
    assert response.cost is None


def test_self_hosted_optional_key_sent(
    fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_BASE_URL", fake_openai.base_url)
    monkeypatch.setenv("VLLM_API_KEY", fake_openai.api_key)

    send(load_provider("vllm:qwen2.5-0.5b"))

    [received] = fake_openai.requests
    assert received.headers["Authorization"] == f"Bearer {fake_openai.api_key}"


def test_host_base_url_method_prefers_env() -> None:
    host = Host("example", "http://127.0.0.1:9/v1", "EXAMPLE_BASE_URL", "EXAMPLE_API_KEY", None)

    assert host.base_url({}) == "http://127.0.0.1:9/v1"
    assert host.base_url({"EXAMPLE_BASE_URL": "http://127.0.0.1:10/v1"}) == "http://127.0.0.1:10/v1"
    assert host.api_key({}) is None
    assert host.api_key({"EXAMPLE_API_KEY": "k"}) == "k"


# OpenAI keeps its earlier behaviour


def test_openai_without_key_message() -> None:
    with pytest.raises(UserInputError) as caught:
        load_provider("openai:gpt-4o-mini")

    assert str(caught.value) == (
        "openai:gpt-4o-mini needs an API key: set OPENAI_API_KEY (and OPENAI_BASE_URL for a "
        "host other than api.openai.com)"
    )


def test_openai_with_base_url_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8000/v1")

    provider = load_provider("openai:gpt-4o-mini")

    assert isinstance(provider, OpenAICompatProvider)
    assert provider.base_url == "http://127.0.0.1:8000/v1"


# Anthropic and Google


def test_anthropic_provider(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")

    provider = load_provider("anthropic:claude-haiku-4-5")

    assert isinstance(provider, AnthropicProvider)
    assert provider.model == "anthropic:claude-haiku-4-5"
    assert provider.base_url == "https://api.anthropic.com"


def test_anthropic_without_key() -> None:
    with pytest.raises(UserInputError) as caught:
        load_provider("anthropic:claude-haiku-4-5")

    assert "ANTHROPIC_API_KEY" in str(caught.value)


def test_anthropic_base_url_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:8001")

    provider = load_provider("anthropic:claude-haiku-4-5")

    assert isinstance(provider, AnthropicProvider)
    assert provider.base_url == "http://127.0.0.1:8001"


@pytest.mark.parametrize("prefix", ["google", "gemini"])
@pytest.mark.parametrize("variable", ["GEMINI_API_KEY", "GOOGLE_API_KEY"])
def test_gemini_provider(prefix: str, variable: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(variable, "test-key")

    provider = load_provider(f"{prefix}:gemini-2.5-flash")

    assert isinstance(provider, GeminiProvider)
    assert provider.model == "google:gemini-2.5-flash"
    assert provider.base_url == "https://generativelanguage.googleapis.com"


def test_gemini_without_key() -> None:
    with pytest.raises(UserInputError) as caught:
        load_provider("gemini:gemini-2.5-flash")

    message = str(caught.value)
    assert "GEMINI_API_KEY" in message
    assert "GOOGLE_API_KEY" in message


def test_gemini_alias_parses_to_google() -> None:
    assert str(parse_model("gemini:gemini-2.5-flash")) == "google:gemini-2.5-flash"


# Names that load nothing


def test_unknown_provider_lists_known() -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        load_provider("acme:model-1")

    message = str(caught.value)
    assert "'acme'" in message
    for provider in KNOWN_PROVIDERS:
        assert provider in message


def test_known_providers_cover_hosts() -> None:
    for name in [*HOSTS, "anthropic", "google", "gemini", "local", "encoder"]:
        assert name in KNOWN_PROVIDERS


def test_encoder_is_not_a_tier() -> None:
    with pytest.raises(ModelNotFoundError) as caught:
        load_provider("encoder:minilm")

    assert "'encoder:minilm' cannot be an escalation tier" in str(caught.value)
