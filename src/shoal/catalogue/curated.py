"""The curated model list behind `shoal models`: small and frontier models, with API features.

Prices are not stored here: they are looked up in genai-prices when the catalogue is built, and a
test fails for any entry genai-prices cannot price. Each `model` is the name shoal loads
(`host:id`, with the id the host's API takes).

`logprobs` is true when the host's API returns token log-probabilities for the model, and
`json_schema` is true when it can constrain the output to a given JSON schema. Sources of the
claims, per host:

- OpenAI: Chat Completions returns logprobs for non-reasoning models (gpt-4o, gpt-4.1 families).
  The gpt-5 reasoning models reject `logprobs` with "Unsupported parameter: 'logprobs' is not
  supported with this model" (reported in sashabaranov/go-openai#1061, 2025-08). Structured
  Outputs (`response_format` json_schema) works with gpt-4o-mini-2024-07-18 and later models
  (OpenAI's guide, as quoted in PipedreamHQ/pipedream#13707).
- Anthropic: the Messages API has no logprobs. Structured outputs (`output_config.format`) are
  generally available for Claude Haiku 4.5, Sonnet 4.5 and Opus 4.5 and later, not for Claude
  3.5 Haiku (Anthropic's structured outputs guide).
- Google: logprobs were reported to work for gemini-2.0-flash on the Gemini API
  (mscraftsman/generative-ai#135, 2026-05) and for gemini-2.0-flash-lite-001 on Vertex AI
  (vercel/ai#5418), while the Gemini API rejects `responseLogprobs` on the 2.5 models with
  "Logprobs is not enabled for models/gemini-2.5-..." (googleapis/python-genai#1921, 2026-01).
  That issue also reports 2.0 logprobs failing at times. All listed Gemini models take a
  response JSON schema.
- Groq: `logprobs` and `top_logprobs` return HTTP 400 (console.groq.com/docs/openai). JSON
  schema output is offered for gpt-oss, Kimi K2 and Llama 4 only
  (console.groq.com/docs/structured-outputs).
- Together: logprobs are returned (docs.together.ai/docs/logprobs), and JSON mode with a schema
  covers its Llama 3.1 and 3.3 Turbo models (docs.together.ai/docs/json-mode).
- Fireworks: the chat completion response carries `logprobs`, and `response_format` json_schema
  works with every Fireworks language model (fireworks.ai structured-response docs).
- OpenRouter: logprobs and structured outputs depend on the upstream provider a request is
  routed to, so neither is promised here.
- Mistral: custom structured outputs are available for all models (Mistral release note,
  2025-01-28).
- DeepSeek: deepseek-chat returns logprobs, deepseek-reasoner raises an error for `logprobs`
  (DeepSeek's reasoning-model guide).

NOTE: two claims are unchecked against a vendor source: Mistral returning no logprobs, and
DeepSeek offering `json_object` output only, without a schema.

NOTE: Together and Fireworks return logprobs as `tokens`/`token_logprobs` lists rather than
OpenAI's `logprobs.content`, which OpenAICompatProvider reads, so shoal gets no label
probabilities from them yet.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CuratedModel:
    """A catalogue model without its price: who made it and what its host's API returns."""

    model: str  # `host:id`
    vendor: str  # who trained the model, which may differ from the host that serves it
    logprobs: bool
    json_schema: bool

    @property
    def host(self) -> str:
        return self.model.partition(":")[0]

    @property
    def model_id(self) -> str:
        return self.model.partition(":")[2]


CURATED_MODELS: tuple[CuratedModel, ...] = (
    # OpenAI: small models, then frontier models.
    CuratedModel("openai:gpt-4o-mini", "OpenAI", logprobs=True, json_schema=True),
    CuratedModel("openai:gpt-4.1-mini", "OpenAI", logprobs=True, json_schema=True),
    CuratedModel("openai:gpt-4.1-nano", "OpenAI", logprobs=True, json_schema=True),
    CuratedModel("openai:gpt-5-mini", "OpenAI", logprobs=False, json_schema=True),
    CuratedModel("openai:gpt-5-nano", "OpenAI", logprobs=False, json_schema=True),
    CuratedModel("openai:gpt-4.1", "OpenAI", logprobs=True, json_schema=True),
    CuratedModel("openai:gpt-5", "OpenAI", logprobs=False, json_schema=True),
    CuratedModel("groq:openai/gpt-oss-20b", "OpenAI", logprobs=False, json_schema=True),
    # Anthropic
    CuratedModel("anthropic:claude-haiku-4-5", "Anthropic", logprobs=False, json_schema=True),
    CuratedModel("anthropic:claude-3-5-haiku-latest", "Anthropic", logprobs=False, json_schema=False),
    CuratedModel("anthropic:claude-sonnet-4-5", "Anthropic", logprobs=False, json_schema=True),
    CuratedModel("anthropic:claude-opus-4-5", "Anthropic", logprobs=False, json_schema=True),
    # Google
    CuratedModel("google:gemini-2.0-flash-lite", "Google", logprobs=True, json_schema=True),
    CuratedModel("google:gemini-2.0-flash", "Google", logprobs=True, json_schema=True),
    CuratedModel("google:gemini-2.5-flash-lite", "Google", logprobs=False, json_schema=True),
    CuratedModel("google:gemini-2.5-flash", "Google", logprobs=False, json_schema=True),
    CuratedModel("google:gemini-2.5-pro", "Google", logprobs=False, json_schema=True),
    # Meta Llama, on several hosts.
    CuratedModel("openrouter:meta-llama/llama-3.2-1b-instruct", "Meta", logprobs=False, json_schema=False),
    CuratedModel("openrouter:meta-llama/llama-3.2-3b-instruct", "Meta", logprobs=False, json_schema=False),
    CuratedModel("groq:llama-3.1-8b-instant", "Meta", logprobs=False, json_schema=False),
    CuratedModel("together:meta-llama/Meta-Llama-3.1-8B-Instruct-Turbo", "Meta", logprobs=True, json_schema=True),
    CuratedModel("fireworks:accounts/fireworks/models/llama-v3p1-8b-instruct", "Meta", logprobs=True, json_schema=True),
    CuratedModel("groq:llama-3.3-70b-versatile", "Meta", logprobs=False, json_schema=False),
    CuratedModel("together:meta-llama/Llama-3.3-70B-Instruct-Turbo", "Meta", logprobs=True, json_schema=True),
    # Mistral AI
    CuratedModel("mistral:open-mistral-nemo", "Mistral AI", logprobs=False, json_schema=True),
    CuratedModel("openrouter:mistralai/mistral-nemo", "Mistral AI", logprobs=False, json_schema=False),
    CuratedModel("mistral:mistral-small-latest", "Mistral AI", logprobs=False, json_schema=True),
    CuratedModel("mistral:mistral-large-2512", "Mistral AI", logprobs=False, json_schema=True),
    # DeepSeek
    CuratedModel("deepseek:deepseek-chat", "DeepSeek", logprobs=True, json_schema=False),
    CuratedModel("deepseek:deepseek-reasoner", "DeepSeek", logprobs=False, json_schema=False),
    # Alibaba Qwen
    CuratedModel("openrouter:qwen/qwen3-8b", "Alibaba (Qwen)", logprobs=False, json_schema=False),
    CuratedModel("openrouter:qwen/qwen3-14b", "Alibaba (Qwen)", logprobs=False, json_schema=False),
    CuratedModel("groq:qwen/qwen3-32b", "Alibaba (Qwen)", logprobs=False, json_schema=False),
    CuratedModel("fireworks:accounts/fireworks/models/qwen3-235b-a22b", "Alibaba (Qwen)", logprobs=True, json_schema=True),
    # Moonshot AI
    CuratedModel("groq:moonshotai/kimi-k2-instruct", "Moonshot AI", logprobs=False, json_schema=True),
)  # fmt: skip


def curated_model(model: str) -> CuratedModel | None:
    """Return the curated entry named exactly `model`, or None."""
    return next((entry for entry in CURATED_MODELS if entry.model == model), None)
