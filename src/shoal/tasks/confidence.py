"""Confidence of an extracted object, from the signals the models give.

Signals, each in [0, 1]:
- `valid`: 1 when the object validates against the schema, else 0 (and the confidence is 0);
- `token`: the weakest field's token probability. A field's probability is the geometric
  mean of the probabilities of the reply tokens that write its value, so long values are
  not penalised for their length;
- `agreement`: the share of fields on which a second model (or a second sample) gives the
  same value.

The item's confidence is the geometric mean of the signals other than `valid`, or 1.0 for a
valid object with no other signal. Thresholds on it are fitted on labelled data.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

from shoal.providers.base import TokenLogprob


def value_spans(text: str, value: Mapping[str, Any]) -> dict[str, tuple[int, int]]:
    """Return the character span of each top-level field's value in a JSON reply."""
    decoder = json.JSONDecoder()
    spans: dict[str, tuple[int, int]] = {}
    for key in value:
        match = re.search(re.escape(json.dumps(key)) + r"\s*:\s*", text)
        if match is None:
            continue
        try:
            _, end = decoder.raw_decode(text, match.end())
        except json.JSONDecodeError:
            continue
        spans[key] = (match.end(), end)
    return spans


def field_confidences(
    text: str, token_logprobs: Sequence[TokenLogprob], value: Mapping[str, Any]
) -> dict[str, float]:
    """Return each field's token probability (geometric mean over its value's tokens).

    Returns {} when the tokens do not spell out `text`, because the spans could not be
    matched to tokens then.
    """
    if "".join(token.token for token in token_logprobs) != text:
        return {}
    starts, position = [], 0
    for token in token_logprobs:
        starts.append(position)
        position += len(token.token)
    confidences = {}
    for key, (start, end) in value_spans(text, value).items():
        inside = [
            token.logprob
            for token, token_start in zip(token_logprobs, starts, strict=True)
            if token_start < end and token_start + len(token.token) > start
        ]
        if inside:
            confidences[key] = math.exp(math.fsum(inside) / len(inside))
    return confidences


def agreement(
    first: Mapping[str, Any], second: Mapping[str, Any] | None, fields: Sequence[str]
) -> float:
    """Return the share of `fields` whose values are equal after case and white-space folding."""
    if second is None or not fields:
        return 0.0
    same = sum(_folded(first.get(name)) == _folded(second.get(name)) for name in fields)
    return same / len(fields)


def _folded(value: Any) -> Any:
    if isinstance(value, str):
        return " ".join(value.split()).casefold() or None
    if isinstance(value, list):
        return sorted(str(_folded(item)) for item in value)
    return value


def item_confidence(signals: Mapping[str, float]) -> float:
    """Combine signals into one confidence: 0 when invalid, else their geometric mean."""
    if signals.get("valid", 1.0) <= 0.0:
        return 0.0
    others = [value for name, value in signals.items() if name != "valid"]
    if not others:
        return 1.0
    if min(others) <= 0.0:
        return 0.0
    return math.exp(math.fsum(math.log(value) for value in others) / len(others))
