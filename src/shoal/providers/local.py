"""`local:<name>`: a GGUF model run in-process by llama.cpp (llama-cpp-python).

Classification does not generate text. Each candidate label is scored as the whole
assistant answer: the log-probability of the label's tokens followed by the end-of-turn
token, so a label that is a prefix of another (`card` and `card_arrival`) is not favoured.
The label-set-normalised probabilities are the softmax of those scores over the candidates.
The prompt is decoded once per item. The key-value cache keeps the messages before the last
one (the instruction) between items, so a fixed instruction is decoded only once per run.

A request with `scored_text` is scored the other way round: the log-probability of the text
after each candidate's own plain-text prompt. The text's tokens are the same under every
prompt, so the scores compare fairly whatever the labels' lengths.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from shoal.errors import UserInputError, WeightsError
from shoal.pricing import DEFAULT_MACHINE, MachinePrice, compute_cost
from shoal.providers.base import Message, Request, Response, TokenLogprob, Usage
from shoal.providers.llama_params import load_params, use_extra_buffers

logger = logging.getLogger("shoal.providers.local")

DEFAULT_CONTEXT_TOKENS = 2048


def _log_softmax(logits: NDArray[np.float32]) -> NDArray[np.float64]:
    shifted = logits.astype(np.float64) - float(np.max(logits))
    return shifted - float(np.log(np.exp(shifted).sum()))


def normalise_scores(scores: dict[str, float]) -> dict[str, float]:
    """Turn per-label log-probabilities into probabilities that sum to 1 over the labels."""
    values = np.array(list(scores.values()), dtype=np.float64)
    probs = np.exp(values - values.max())
    probs /= probs.sum()
    return dict(zip(scores, probs.tolist(), strict=True))


class LlamaCppProvider:
    """An in-process llama.cpp model, loaded on first use, using every core by default."""

    def __init__(
        self,
        model_path: Path,
        *,
        model: str,
        n_threads: int | None = None,
        n_ctx: int = DEFAULT_CONTEXT_TOKENS,
        machine: MachinePrice = DEFAULT_MACHINE,
    ) -> None:
        self.model = model
        self.model_path = model_path
        # llama-cpp-python defaults to half the cores, which was measurably slower here.
        self.n_threads = n_threads or os.cpu_count() or 1
        self.n_ctx = n_ctx
        self.machine = machine
        self._llama: Any = None
        # Re-entrant, because a call holds it while timing and the scoring and generation
        # methods it calls take it too.
        self._lock = threading.RLock()
        self._cached_tokens: list[int] = []
        self._formatters: dict[bool, Any] = {}  # by add_generation_prompt
        # Whether llama-cpp-python's record of the key-value cache matches the cache, which
        # label scoring changes behind its back.
        self._generation_record_valid = False

    def load(self) -> None:
        """Load the GGUF file; a file llama.cpp cannot read raises WeightsError."""
        if self._llama is not None:
            return
        from llama_cpp import Llama

        started = time.perf_counter()
        try:
            with load_params(extra_buffers=use_extra_buffers()):
                self._llama = Llama(
                    model_path=str(self.model_path),
                    n_ctx=self.n_ctx,
                    n_threads=self.n_threads,
                    n_threads_batch=self.n_threads,
                    logits_all=False,
                    verbose=False,
                )
        except (ValueError, RuntimeError, OSError) as exc:
            raise WeightsError(
                f"llama.cpp cannot load {self.model_path} for {self.model}: {exc}; "
                "check that the file is a complete GGUF model (an embedded model's file is "
                "rebuilt from its weight packages when deleted from the cache)"
            ) from exc
        self._end_of_turn = self._end_of_turn_token()
        logger.info(
            "loaded %s from %s in %.1f s with %d threads",
            self.model, self.model_path, time.perf_counter() - started, self.n_threads,
        )

    def _end_of_turn_token(self) -> int:
        import llama_cpp

        vocab = llama_cpp.llama_model_get_vocab(self._llama._model.model)
        token = int(llama_cpp.llama_vocab_eot(vocab))
        return token if token >= 0 else int(self._llama.token_eos())

    def render_prompt(
        self, messages: Sequence[Message], add_generation_prompt: bool = True
    ) -> str:
        """Render messages with the model's own chat template, by default ready for the answer."""
        formatter = self._formatter(add_generation_prompt)
        rendered = formatter(messages=[{"role": m.role, "content": m.content} for m in messages])
        return str(rendered.prompt)

    def _formatter(self, add_generation_prompt: bool) -> Any:
        """Return the chat formatter, compiling the model's template on first use."""
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        if add_generation_prompt in self._formatters:
            return self._formatters[add_generation_prompt]
        self.load()
        template = self._llama.metadata.get("tokenizer.chat_template")
        if not template:
            raise WeightsError(
                f"{self.model_path} has no chat template; use an instruct GGUF model"
            )
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=self._llama.detokenize([self._llama.token_eos()], special=True).decode(),
            bos_token=self._llama.detokenize([self._llama.token_bos()], special=True).decode(),
            add_generation_prompt=add_generation_prompt,
        )
        self._formatters[add_generation_prompt] = formatter
        return formatter

    def _tokenize(self, text: str) -> list[int]:
        return list(self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=True))

    def score_candidates(
        self, messages: Sequence[Message], candidates: Sequence[str]
    ) -> tuple[dict[str, float], int, int]:
        """Return each candidate's log-probability as the whole answer, and token counts.

        The counts are the prompt tokens decoded for this item (after the reused prefix) and
        the candidate tokens decoded.
        """
        with self._lock:
            self.load()
            prompt = self._tokenize(self.render_prompt(messages))
            if len(prompt) >= self.n_ctx:
                raise ValueError(
                    f"the prompt has {len(prompt)} tokens, more than the context of {self.n_ctx}"
                )
            prefix: list[int] = []
            if len(messages) > 1:
                prefix = self._tokenize(self.render_prompt(messages[:-1], False))
            last_logits, decoded = self._decode_prompt(prompt, prefix)
            first_token_logprobs = _log_softmax(last_logits)

            scores: dict[str, float] = {}
            candidate_tokens = 0
            for label in candidates:
                tokens = self._llama.tokenize(label.encode("utf-8"), add_bos=False, special=False)
                tokens.append(self._end_of_turn)
                scores[label] = self._score_continuation(prompt, tokens, first_token_logprobs)
                candidate_tokens += len(tokens) - 1
            return scores, decoded, candidate_tokens

    def score_text(
        self, prompts: Sequence[str], text: str
    ) -> tuple[list[float], int, int]:
        """Return the log-probability of `text` written after each prompt, and token counts.

        The counts are the prompt tokens and the text tokens decoded, over all prompts. Each
        prompt is decoded from an empty cache in the same batches every time, so a score
        does not depend on what was scored before.
        """
        with self._lock:
            self.load()
            text_tokens = self._llama.tokenize(text.encode("utf-8"), add_bos=False, special=False)
            if not text_tokens:
                raise ValueError("cannot score an empty text")
            scores, prompt_total = [], 0
            for prompt in prompts:
                tokens = self._llama.tokenize(prompt.encode("utf-8"), add_bos=False, special=False)
                if len(tokens) + len(text_tokens) >= self.n_ctx:
                    raise ValueError(
                        f"a prompt and text of {len(tokens) + len(text_tokens)} tokens exceed "
                        f"the context of {self.n_ctx}"
                    )
                last_logits, decoded = self._decode_prompt(tokens, [])
                first = _log_softmax(last_logits)
                scores.append(self._score_continuation(tokens, list(text_tokens), first))
                prompt_total += decoded
            return scores, prompt_total, len(text_tokens) * len(prompts)

    def _decode_prompt(
        self, prompt: list[int], prefix: list[int]
    ) -> tuple[NDArray[np.float32], int]:
        """Decode the prompt, reusing a cached `prefix`; return the last logits and tokens decoded.

        llama.cpp's logits depend slightly on how a sequence is split into decode batches,
        so the prompt is always split at the end of `prefix` (the messages before the last).
        Scores then do not depend on which item was scored before.
        """
        ctx = self._llama._ctx
        batch = self._llama._batch
        boundary = len(prefix) if prompt[: len(prefix)] == prefix else 0
        if boundary >= len(prompt):
            boundary = 0
        reused = boundary if self._cached_tokens[:boundary] == prompt[:boundary] else 0
        ctx.kv_cache_seq_rm(0, reused, -1)

        n_batch = self._llama.n_batch
        for start, stop in ((reused, boundary), (max(reused, boundary), len(prompt))):
            for chunk_start in range(start, stop, n_batch):
                chunk = prompt[chunk_start : min(chunk_start + n_batch, stop)]
                batch.set_batch(chunk, n_past=chunk_start, logits_all=False)
                ctx.decode(batch)
        self._cached_tokens = list(prompt[:boundary])
        self._generation_record_valid = False
        n_vocab = self._llama.n_vocab()
        logits = np.ctypeslib.as_array(ctx.get_logits_ith(-1), shape=(n_vocab,)).copy()
        return logits, len(prompt) - reused

    def _score_continuation(
        self, prompt: list[int], tokens: list[int], first_logprobs: NDArray[np.float64]
    ) -> float:
        return math.fsum(self._continuation_logprobs(prompt, tokens, first_logprobs))

    def _continuation_logprobs(
        self, prompt: list[int], tokens: list[int], first_logprobs: NDArray[np.float64]
    ) -> list[float]:
        """Return each token's log-probability after the decoded prompt and the tokens before it."""
        ctx = self._llama._ctx
        batch = self._llama._batch
        logprobs = [float(first_logprobs[tokens[0]])]
        if len(tokens) > 1:
            batch.set_batch(tokens[:-1], n_past=len(prompt), logits_all=True)
            ctx.decode(batch)
            n_vocab = self._llama.n_vocab()
            for i, next_token in enumerate(tokens[1:]):
                logits = np.ctypeslib.as_array(ctx.get_logits_ith(i), shape=(n_vocab,))
                logprobs.append(float(_log_softmax(logits)[next_token]))
            ctx.kv_cache_seq_rm(0, len(prompt), -1)
        return logprobs

    def generate(self, request: Request) -> tuple[str, int, int, list[TokenLogprob] | None]:
        """Generate a reply; with `request.logprobs`, also each reply token's log-probability.

        The log-probabilities are the model's own, without the grammar that a JSON schema
        adds. Consecutive generations reuse the key-value cache of their shared prompt prefix
        (the system prompt), which llama-cpp-python tracks. Label scoring in between makes
        that record stale, so the cache is reset first then.
        """
        with self._lock:
            self.load()
            if not self._generation_record_valid:
                self._llama.reset()
            self._cached_tokens = []
            options: dict[str, Any] = {}
            if request.json_schema is not None:
                # llama.cpp turns the schema into a grammar, so the output always parses.
                options["response_format"] = {
                    "type": "json_object",
                    "schema": json.loads(request.json_schema),
                }
            try:
                result = self._llama.create_chat_completion(
                    messages=[{"role": m.role, "content": m.content} for m in request.messages],
                    max_tokens=request.max_tokens,
                    temperature=request.temperature,
                    **options,
                )
            except ValueError as exc:
                if "context window" not in str(exc):
                    raise
                # NOTE: documents are not split into chunks; a longer one is rejected.
                raise UserInputError(
                    f"the prompt for {self.model} does not fit its context of {self.n_ctx} "
                    f"tokens ({exc}); shorten the document or split it into parts"
                ) from exc
            self._generation_record_valid = True
            usage = result["usage"]
            token_logprobs = None
            if request.logprobs:
                token_logprobs = self._generated_logprobs(int(usage["prompt_tokens"]))
        text = result["choices"][0]["message"]["content"] or ""
        return text, int(usage["prompt_tokens"]), int(usage["completion_tokens"]), token_logprobs

    def _generated_logprobs(self, prompt_length: int) -> list[TokenLogprob]:
        """Score the tokens just generated, re-decoding them with logits for every position.

        llama-cpp-python keeps the evaluated tokens (prompt, then reply) in `input_ids`. The
        last prompt token and the reply are decoded again in one batch, so position i gives
        the distribution of reply token i. The record stays as it was, so the next
        generation still reuses the prompt prefix.
        """
        llama = self._llama
        evaluated = [int(token) for token in llama.input_ids[: llama.n_tokens]]
        reply = evaluated[prompt_length:]
        if not reply or prompt_length < 1:
            return []
        start = prompt_length - 1
        tokens = evaluated[start:]
        llama._ctx.kv_cache_seq_rm(0, start, -1)
        n_vocab = llama.n_vocab()
        values: list[float] = []
        for chunk_start in range(0, len(tokens), llama.n_batch):
            chunk = tokens[chunk_start : chunk_start + llama.n_batch]
            llama._batch.set_batch(chunk, n_past=start + chunk_start, logits_all=True)
            llama._ctx.decode(llama._batch)
            for i in range(len(chunk)):
                position = chunk_start + i
                if position >= len(reply):
                    break
                logits = np.ctypeslib.as_array(llama._ctx.get_logits_ith(i), shape=(n_vocab,))
                values.append(float(_log_softmax(logits)[reply[position]]))
        llama.n_tokens = start + len(tokens)
        llama._requires_eval = True
        return [
            TokenLogprob(
                token=llama.detokenize([token]).decode("utf-8", errors="replace"),
                logprob=value,
            )
            for token, value in zip(reply, values, strict=True)
        ]

    def _score_request(self, request: Request) -> tuple[dict[str, float], int, int]:
        candidates = request.candidates or ()
        if request.scored_text is None:
            return self.score_candidates(request.messages, candidates)
        prompts = request.candidate_prompts or ()
        if len(prompts) != len(candidates):
            raise ValueError(
                f"{len(candidates)} candidates need as many prompts, got {len(prompts)}"
            )
        values, prompt_tokens, text_tokens = self.score_text(prompts, request.scored_text)
        return dict(zip(candidates, values, strict=True)), prompt_tokens, text_tokens

    def _complete_sync(
        self, request: Request
    ) -> tuple[str, dict[str, float] | None, list[TokenLogprob] | None, Usage]:
        # The clock starts once the model is free, so time spent waiting for another call is
        # not charged as compute.
        with self._lock:
            started = time.perf_counter()
            token_logprobs = None
            if request.candidates:
                scores, prompt_tokens, scored_tokens = self._score_request(request)
                label_probs = normalise_scores(scores)
                text = max(label_probs, key=label_probs.__getitem__)
                usage_tokens = (prompt_tokens, scored_tokens)
            else:
                text, prompt_tokens, reply_tokens, token_logprobs = self.generate(request)
                label_probs = None
                usage_tokens = (prompt_tokens, reply_tokens)
            seconds = time.perf_counter() - started
        usage = Usage(
            input_tokens=usage_tokens[0], output_tokens=usage_tokens[1], compute_seconds=seconds
        )
        return text, label_probs, token_logprobs, usage

    async def complete(self, request: Request) -> Response:
        created_at = datetime.now(UTC)
        text, label_probs, token_logprobs, usage = await asyncio.to_thread(
            self._complete_sync, request
        )
        return Response(
            model=self.model,
            text=text,
            usage=usage,
            latency_s=usage.compute_seconds,
            created_at=created_at,
            cost=compute_cost(usage.compute_seconds, self.machine, created_at),
            label_probs=label_probs,
            token_logprobs=token_logprobs,
        )
