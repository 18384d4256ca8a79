"""The model catalogue, `shoal models` and the user prices file.

Prices are checked against genai-prices' own calculation on the bundled snapshot. No test
fetches newer prices: an autouse fixture makes any genai-prices download fail the test.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest
import typer
from typer.testing import CliRunner, Result

from shoal.catalogue import (
    BUNDLED_SNAPSHOT_DATE,
    CURATED_MODELS,
    PRICES_ENV,
    CatalogueEntry,
    build_catalogue,
    bundled_price_data,
    load_prices_file,
    user_price,
)
from shoal.catalogue.catalogue import ENTRY_KEYS, price_model, price_provider_id
from shoal.catalogue.command import models_command
from shoal.catalogue.curated import CuratedModel, curated_model
from shoal.errors import PriceNotFoundError, UserInputError
from shoal.pricing.api import PRICE_SOURCE, _bundled_snapshot  # pyright: ignore[reportPrivateUsage]

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
MILLION = 1_000_000


@pytest.fixture(autouse=True)
def no_price_download(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail_download(self: object) -> None:
        raise AssertionError("a test tried to download genai-prices data")

    monkeypatch.setattr(genai_prices.UpdatePrices, "fetch", fail_download)
    monkeypatch.delenv(PRICES_ENV, raising=False)


def run_models(*args: str) -> Result:
    app = typer.Typer()

    @app.callback()
    def root() -> None:
        """Register `models` as a subcommand, as in shoal's own CLI."""

    app.command("models")(models_command)
    return CliRunner().invoke(app, ["models", *args])


def json_models(*args: str) -> list[dict[str, object]]:
    result = run_models("--format", "json", *args)
    assert result.exit_code == 0, result.output
    models = json.loads(result.stdout)
    assert isinstance(models, list)
    return models


def genai_rate(provider_id: str, model_id: str, kind: str, at: datetime = NOW) -> Decimal:
    """Return genai-prices' charge for 1M tokens of `kind` ("input" or "output"): its rate."""
    snapshot = _bundled_snapshot()
    if kind == "input":
        usage = genai_prices.Usage(input_tokens=MILLION, output_tokens=0)
        return snapshot.calc(usage, model_id, provider_id, None, at).input_price
    usage = genai_prices.Usage(input_tokens=0, output_tokens=MILLION)
    return snapshot.calc(usage, model_id, provider_id, None, at).output_price


def entry_for(entries: list[CatalogueEntry], model: str) -> CatalogueEntry:
    [entry] = [entry for entry in entries if entry.model == model]
    return entry


def write_prices(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "prices.yaml"
    path.write_text(text, encoding="utf-8")
    return path


# The curated list


@pytest.mark.parametrize("curated", CURATED_MODELS, ids=lambda model: model.model)
def test_curated_model_is_priced(curated: CuratedModel) -> None:
    entry = price_model(curated, NOW, bundled_price_data())

    assert entry.input_usd_per_1m >= 0
    assert entry.output_usd_per_1m > 0
    assert entry.price_source == PRICE_SOURCE


def test_curated_models_unique() -> None:
    names = [model.model for model in CURATED_MODELS]

    assert len(names) == len(set(names))


def test_curated_covers_requested_models() -> None:
    names = {model.model for model in CURATED_MODELS}
    for required in (
        "openai:gpt-4o-mini",
        "openai:gpt-4.1-mini",
        "openai:gpt-4.1-nano",
        "openai:gpt-5-mini",
        "openai:gpt-5-nano",
        "openai:gpt-5",
        "openai:gpt-4.1",
        "anthropic:claude-haiku-4-5",
        "anthropic:claude-3-5-haiku-latest",
        "google:gemini-2.5-flash",
        "google:gemini-2.5-flash-lite",
        "google:gemini-2.5-pro",
        "deepseek:deepseek-chat",
        "deepseek:deepseek-reasoner",
    ):
        assert required in names


def test_curated_has_llama_mistral_qwen() -> None:
    ids = " ".join(model.model_id.lower() for model in CURATED_MODELS)

    for family in ("llama-3.2-1b", "llama-3.2-3b", "3.1-8b", "3.3-70b", "nemo", "small", "qwen"):
        assert family in ids


def test_curated_hosts_are_priced() -> None:
    for model in CURATED_MODELS:
        assert price_provider_id(model.host) is not None, model.model


def test_unpriceable_model_raises() -> None:
    missing = CuratedModel("groq:no-such-model-1b", "Nobody", logprobs=False, json_schema=False)

    with pytest.raises(PriceNotFoundError) as caught:
        build_catalogue(NOW, curated=[missing])

    assert "groq:no-such-model-1b" in str(caught.value)


def test_self_hosted_model_has_no_catalogue_price() -> None:
    local = CuratedModel("vllm:qwen2.5-7b", "Alibaba (Qwen)", logprobs=True, json_schema=True)

    with pytest.raises(PriceNotFoundError) as caught:
        build_catalogue(NOW, curated=[local])

    assert "prices file" in str(caught.value)


# Prices against genai-prices


@pytest.mark.parametrize(
    ("model", "provider_id", "model_id"),
    [
        ("openai:gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("anthropic:claude-haiku-4-5", "anthropic", "claude-haiku-4-5"),
        ("google:gemini-2.5-flash", "google", "gemini-2.5-flash"),
        ("groq:llama-3.1-8b-instant", "groq", "llama-3.1-8b-instant"),
        ("mistral:mistral-small-latest", "mistral", "mistral-small-latest"),
        ("openrouter:qwen/qwen3-14b", "openrouter", "qwen/qwen3-14b"),
    ],
)
def test_prices_match_genai_prices(model: str, provider_id: str, model_id: str) -> None:
    entry = entry_for(build_catalogue(NOW), model)

    assert entry.input_usd_per_1m == genai_rate(provider_id, model_id, "input")
    assert entry.output_usd_per_1m == genai_rate(provider_id, model_id, "output")


def test_cache_read_matches_genai_prices() -> None:
    entry = entry_for(build_catalogue(NOW), "openai:gpt-4o-mini")
    usage = genai_prices.Usage(input_tokens=MILLION, cache_read_tokens=MILLION, output_tokens=0)

    calculation = _bundled_snapshot().calc(usage, "gpt-4o-mini", "openai", None, NOW)

    assert entry.cache_read_usd_per_1m == calculation.input_price


def test_missing_cache_read_is_none() -> None:
    entry = entry_for(build_catalogue(NOW), "groq:llama-3.1-8b-instant")

    assert entry.cache_read_usd_per_1m is None


def test_tiered_price_shows_base_rate() -> None:
    entry = entry_for(build_catalogue(NOW), "google:gemini-2.5-pro")

    assert entry.input_usd_per_1m == Decimal("1.25")
    assert entry.output_usd_per_1m == Decimal(10)


def test_time_of_day_price_is_the_daytime_rate() -> None:
    night = datetime(2026, 12, 5, 20, 0, tzinfo=UTC)
    morning = datetime(2026, 12, 5, 10, 0, tzinfo=UTC)

    entry = entry_for(build_catalogue(night), "deepseek:deepseek-chat")

    # DeepSeek's standard rate applies 00:30-16:30 UTC, two thirds of the day.
    assert entry.input_usd_per_1m == genai_rate("deepseek", "deepseek-chat", "input", morning)
    assert entry.input_usd_per_1m != genai_rate("deepseek", "deepseek-chat", "input", night)


def test_dated_price_gives_its_start_date() -> None:
    entry = entry_for(build_catalogue(NOW), "mistral:mistral-small-latest")

    assert entry.price_date == date(2026, 3, 16)
    assert entry.input_usd_per_1m == Decimal("0.15")


def test_earlier_date_gives_earlier_price() -> None:
    before = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)

    entry = entry_for(build_catalogue(before), "mistral:mistral-small-latest")

    assert entry.input_usd_per_1m == genai_rate(
        "mistral", "mistral-small-latest", "input", before
    )
    assert entry.input_usd_per_1m == Decimal("0.1")
    assert entry.price_date == BUNDLED_SNAPSHOT_DATE


def test_undated_price_gives_snapshot_date() -> None:
    entry = entry_for(build_catalogue(NOW), "openai:gpt-4o-mini")

    assert entry.price_date == BUNDLED_SNAPSHOT_DATE


def test_naive_now_rejected() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        build_catalogue(datetime(2026, 12, 5, 12, 0))


# `shoal models`


def test_json_lists_models_and_vendors() -> None:
    models = json_models()

    assert len(models) >= 25
    assert len({model["vendor"] for model in models}) >= 7
    for model in models:
        assert tuple(model) == ENTRY_KEYS
        assert isinstance(model["input_usd_per_1m"], float)
        assert isinstance(model["output_usd_per_1m"], float)
        assert model["input_usd_per_1m"] >= 0
        assert model["output_usd_per_1m"] > 0
        assert date.fromisoformat(str(model["price_date"])) <= datetime.now(UTC).date()
        assert isinstance(model["logprobs"], bool)
        assert isinstance(model["json_schema"], bool)
        assert model["price_source"] == PRICE_SOURCE


def test_json_prices_match_catalogue() -> None:
    models = {model["model"]: model for model in json_models()}
    entries = build_catalogue()

    for entry in entries:
        assert models[entry.model] == entry.to_json()


def test_json_feature_claims() -> None:
    models = {model["model"]: model for model in json_models()}

    assert models["openai:gpt-4o-mini"]["logprobs"] is True
    assert models["openai:gpt-5-mini"]["logprobs"] is False
    assert models["anthropic:claude-haiku-4-5"]["logprobs"] is False
    assert models["groq:llama-3.1-8b-instant"]["logprobs"] is False
    assert models["deepseek:deepseek-chat"]["json_schema"] is False


def test_table_lists_models() -> None:
    result = run_models()

    assert result.exit_code == 0, result.output
    assert "openai:gpt-4o-mini" in result.stdout
    assert "Cache read" in result.stdout
    assert PRICE_SOURCE in result.stdout


def test_vendor_filter() -> None:
    models = json_models("--vendor", "qwen")

    assert models
    assert {model["vendor"] for model in models} == {"Alibaba (Qwen)"}


def test_unknown_vendor() -> None:
    result = run_models("--vendor", "nobody")

    assert isinstance(result.exception, UserInputError)
    assert "'nobody'" in str(result.exception)
    assert "Meta" in str(result.exception)


def test_invalid_format() -> None:
    result = run_models("--format", "csv")

    assert isinstance(result.exception, UserInputError)
    assert "--format 'csv'" in str(result.exception)


# The prices file

PRICES_YAML = """\
models:
  - model: openai:gpt-4o-mini
    input_usd_per_1m: 0.1
    output_usd_per_1m: 0.5
    price_date: 2026-12-01
  - model: vllm:qwen2.5-7b-instruct
    input_usd_per_1m: 0.02
    output_usd_per_1m: 0.04
    cache_read_usd_per_1m: 0.01
    price_date: "2026-11-20"
    vendor: Alibaba (Qwen)
    logprobs: true
    json_schema: true
"""


def test_prices_file_overrides_and_adds(tmp_path: Path) -> None:
    path = write_prices(tmp_path, PRICES_YAML)

    models = {model["model"]: model for model in json_models("--prices", str(path))}

    override = models["openai:gpt-4o-mini"]
    assert override["input_usd_per_1m"] == 0.1
    assert override["output_usd_per_1m"] == 0.5
    assert override["cache_read_usd_per_1m"] is None
    assert override["price_date"] == "2026-12-01"
    assert override["vendor"] == "OpenAI"
    assert override["logprobs"] is True
    assert override["price_source"] == f"prices file {path}"

    added = models["vllm:qwen2.5-7b-instruct"]
    assert added["host"] == "vllm"
    assert added["vendor"] == "Alibaba (Qwen)"
    assert added["cache_read_usd_per_1m"] == 0.01
    assert added["price_date"] == "2026-11-20"
    assert added["json_schema"] is True


def test_prices_file_keeps_other_entries(tmp_path: Path) -> None:
    path = write_prices(tmp_path, PRICES_YAML)

    models = json_models("--prices", str(path))

    assert len(models) == len(CURATED_MODELS) + 1
    assert models[-1]["model"] == "vllm:qwen2.5-7b-instruct"


def test_prices_file_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_prices(tmp_path, PRICES_YAML)
    monkeypatch.setenv(PRICES_ENV, str(path))

    models = {model["model"]: model for model in json_models()}

    assert models["openai:gpt-4o-mini"]["input_usd_per_1m"] == 0.1


def test_user_price_returns_override(tmp_path: Path) -> None:
    path = write_prices(tmp_path, PRICES_YAML)

    entry = user_price("vllm:qwen2.5-7b-instruct", path)

    assert entry is not None
    assert entry.input_usd_per_1m == Decimal("0.02")
    assert entry.output_usd_per_1m == Decimal("0.04")
    assert user_price("openai:gpt-5", path) is None


def test_user_price_from_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_prices(tmp_path, PRICES_YAML)
    monkeypatch.setenv(PRICES_ENV, str(path))

    entry = user_price("openai:gpt-4o-mini")

    assert entry is not None
    assert entry.input_usd_per_1m == Decimal("0.1")


def test_price_written_as_text(tmp_path: Path) -> None:
    path = write_prices(tmp_path, ENTRY_HEAD + VALID_REST.replace("0.1", "1e-3"))

    [entry] = load_prices_file(path)

    assert entry.input_usd_per_1m == Decimal("0.001")


def test_user_price_without_file() -> None:
    assert user_price("openai:gpt-4o-mini") is None


def test_user_price_rereads_changed_file(tmp_path: Path) -> None:
    path = write_prices(tmp_path, PRICES_YAML)
    assert user_price("openai:gpt-4o-mini", path) is not None

    write_prices(tmp_path, PRICES_YAML.replace("openai:gpt-4o-mini", "openai:gpt-4.1-nano"))

    assert user_price("openai:gpt-4o-mini", path) is None
    assert user_price("openai:gpt-4.1-nano", path) is not None


def test_gemini_alias_in_prices_file(tmp_path: Path) -> None:
    path = write_prices(
        tmp_path,
        "models:\n  - model: gemini:gemini-2.5-flash\n    input_usd_per_1m: 0.2\n"
        "    output_usd_per_1m: 2\n    price_date: 2026-12-01\n",
    )

    [entry] = load_prices_file(path)

    assert entry.model == "google:gemini-2.5-flash"
    assert curated_model(entry.model) is not None
    assert user_price("gemini:gemini-2.5-flash", path) == entry


ENTRY_HEAD = "models:\n  - model: openai:gpt-4o-mini\n"
VALID_REST = "    input_usd_per_1m: 0.1\n    output_usd_per_1m: 0.5\n    price_date: 2026-12-01\n"

BAD_FILES = [
    pytest.param(ENTRY_HEAD + VALID_REST + "    colour: blue\n", ["entry 1", "'colour'"], id="unknown-key"),
    pytest.param(
        ENTRY_HEAD + "    input_usd_per_1m: 0.1\n    output_usd_per_1m: 0.5\n",
        ["entry 1", "'price_date'", "missing"],
        id="missing-key",
    ),
    pytest.param(
        ENTRY_HEAD + VALID_REST.replace("0.5", "-0.5"),
        ["entry 1", "'output_usd_per_1m'", "-0.5", ">= 0"],
        id="negative-price",
    ),
    pytest.param(
        ENTRY_HEAD + VALID_REST.replace("0.1", "cheap"),
        ["entry 1", "'input_usd_per_1m'", "'cheap'", "not a number"],
        id="text-price",
    ),
    pytest.param(
        ENTRY_HEAD + VALID_REST.replace("0.1", "true"),
        ["entry 1", "'input_usd_per_1m'", "True"],
        id="bool-price",
    ),
    pytest.param(
        ENTRY_HEAD + VALID_REST.replace("0.1", "'-1e-3'"),
        ["entry 1", "'input_usd_per_1m'", "'-1e-3'", ">= 0"],
        id="negative-text-price",
    ),
    pytest.param(
        ENTRY_HEAD + VALID_REST.replace("0.1", ".nan"),
        ["entry 1", "'input_usd_per_1m'", "finite"],
        id="nan-price",
    ),
    pytest.param(
        ENTRY_HEAD + VALID_REST.replace("2026-12-01", "last week"),
        ["entry 1", "'price_date'", "YYYY-MM-DD"],
        id="bad-date",
    ),
    pytest.param(
        ENTRY_HEAD + VALID_REST.replace("2026-12-01", "2026-12-01T10:00:00Z"),
        ["entry 1", "'price_date'", "'2026-12-01T10:00:00+00:00'", "YYYY-MM-DD"],
        id="timestamp-date",
    ),
    pytest.param(
        ENTRY_HEAD + VALID_REST + "    logprobs: maybe\n",
        ["entry 1", "'logprobs'", "true or false"],
        id="bad-flag",
    ),
    pytest.param(
        ENTRY_HEAD + VALID_REST + "    vendor: ''\n",
        ["entry 1", "'vendor'"],
        id="empty-vendor",
    ),
    pytest.param(
        "models:\n  - model: gpt-4o-mini\n" + VALID_REST,
        ["entry 1", "'gpt-4o-mini'", "provider:id"],
        id="model-without-provider",
    ),
    pytest.param(
        "models:\n  - model: acme:m1\n" + VALID_REST,
        ["entry 1", "'acme'", "known providers"],
        id="unknown-provider",
    ),
    pytest.param(
        "models:\n  - " + VALID_REST.strip(),
        ["entry 1", "'model'"],
        id="missing-model",
    ),
    pytest.param(
        ENTRY_HEAD + VALID_REST + "  - model: openai:gpt-4o-mini\n" + VALID_REST,
        ["entry 2", "entry 1", "openai:gpt-4o-mini"],
        id="duplicate",
    ),
    pytest.param("models:\n  - just text\n", ["entry 1", "mapping"], id="entry-not-mapping"),
    pytest.param("- model: openai:gpt-4o-mini\n", ["'models'"], id="top-level-list"),
    pytest.param("models: []\n", ["'models'", "non-empty"], id="no-models"),
    pytest.param("", ["empty", "'models'"], id="empty-file"),
    pytest.param("models:\n  - model: [unclosed\n", ["YAML", "line"], id="yaml-syntax"),
]


@pytest.mark.parametrize(("text", "named"), BAD_FILES)
def test_bad_prices_file(tmp_path: Path, text: str, named: list[str]) -> None:
    path = write_prices(tmp_path, text)

    result = run_models("--prices", str(path))

    error = result.exception
    assert isinstance(error, UserInputError), result.output
    message = str(error)
    assert "\n" not in message
    assert str(path) in message
    for value in named:
        assert value in message


def test_missing_prices_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.yaml"

    result = run_models("--prices", str(missing))

    assert isinstance(result.exception, UserInputError)
    assert str(missing) in str(result.exception)
    assert "not found" in str(result.exception)


def test_user_price_bad_file_raises(tmp_path: Path) -> None:
    path = write_prices(tmp_path, ENTRY_HEAD + VALID_REST + "    colour: blue\n")

    with pytest.raises(UserInputError, match="'colour'"):
        user_price("openai:gpt-4o-mini", path)
