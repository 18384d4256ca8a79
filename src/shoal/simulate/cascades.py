"""Threshold cascades on logged outcomes, with answer agreement as the confidence.

For multiple-choice tasks a cascade runs models from cheap to expensive and stops as soon as
enough of the models run so far give the same option letter. No model is called: the logged
responses give each model's choice, and the logged scores and costs give what the accepted
answer is worth and what the models run cost. `two_model_agreement_cascade` is the plainest
such strategy: run two cheap models, keep their choice when they agree, and otherwise pay for
an expensive one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from shoal.simulate.outcomes import LoggedOutcomes

_LETTERS = "ABCDE"

# "answer is (B)", "Answer: b", "the correct answer is option C." A lowercase letter counts only
# when punctuation or the end of the text follows it, so "the answer is a guess" is no choice.
_MARKED = re.compile(
    r"(?i:\banswer\s*(?:is|:|-|=)?\s*(?:option\s+|choice\s+)?)"
    r"(?:\((?P<bracketed>[A-Ea-e])\)|(?P<upper>[A-E])(?![A-Za-z'])|(?P<lower>[a-e])(?=\s*(?:$|[).,:;])))"
)
# A response that starts with the letter: "B", "B.", "A) dry palms", "(C)", "D: text".
_LEADING = re.compile(r"^\(?(?P<letter>[A-E])(?:[).:\]]|\s*$|\s+-)")
# A response that is only a lowercase letter, with optional brackets or a full stop: "b", "(b)".
_LONE_LOWER = re.compile(r"^\(?(?P<letter>[a-e])\)?\.?$")
# Elsewhere in the text: "(B)", "option B", "choice B".
_MENTIONED = re.compile(r"\((?P<bracketed>[A-E])\)|\b(?:option|choice)\s+(?P<named>[A-E])\b")


def extract_choice(response: str | None) -> str | None:
    """Return the option letter A-E that a response chooses, in upper case, or None.

    The rules, tried in this order: the letter after "answer" ("The answer is (B)", "answer: b";
    the last such phrase wins); a response that starts with the letter ("B.", "A) dry palms");
    a response that is one lowercase letter ("b"); and letters mentioned as "(B)", "option B" or
    "choice B", used only when they all name the same letter. Returns None when no rule applies,
    as for refusals like "I don't know".
    """
    if response is None:
        return None
    text = response.strip()
    if not text:
        return None

    marked = list(_MARKED.finditer(text))
    if marked:
        last = marked[-1]
        letter = last.group("bracketed") or last.group("upper") or last.group("lower")
        return letter.upper()

    for pattern in (_LEADING, _LONE_LOWER):
        match = pattern.match(text)
        if match:
            return match.group("letter").upper()

    mentioned = {
        match.group("bracketed") or match.group("named") for match in _MENTIONED.finditer(text)
    }
    if len(mentioned) == 1:
        return mentioned.pop()
    return None


class CascadeResult(NamedTuple):
    """Accuracy (mean score of the accepted answers) and mean cost in USD per item."""

    accuracy: float
    mean_cost: float


class TwoModelCascadeResult(NamedTuple):
    """Accuracy, mean cost in USD per item, and the share of items sent to the expensive model."""

    accuracy: float
    mean_cost: float
    escalation_share: float


def agreement_cascade(
    outcomes: LoggedOutcomes, order: Sequence[str], thresholds: Sequence[float]
) -> CascadeResult:
    """Simulate an agreement cascade over the models in `order`, cheapest first.

    Per item, tiers 0 and 1 always run. After tier i has run (i >= 1, and not the last tier),
    its agreement is the share of the cheaper tiers 0..i-1 whose extracted choice equals tier
    i's choice. Tier i's answer is accepted when its choice is not None and that share is at
    least `thresholds[i - 1]`. Otherwise the next tier runs. The last tier's answer is always
    accepted. So `thresholds` has len(order) - 2 entries, and with three models a threshold of
    1.0 means "accept when the two cheapest agree". The item's score is the accepted tier's
    logged score, and its cost is the sum of the logged costs of every tier run.

    Raises ValueError when `order` has fewer than two models, a model repeats, `thresholds` has
    the wrong length, `outcomes` has no responses, or a score or cost needed is NaN.
    Raises KeyError naming a model that is not in `outcomes`.
    """
    accepted_tier, cost = _run_agreement_cascade(outcomes, order, thresholds)
    accepted_scores = _accepted_scores(outcomes, order, accepted_tier)
    return CascadeResult(float(accepted_scores.mean()), float(cost.mean()))


def two_model_agreement_cascade(
    outcomes: LoggedOutcomes, cheap_a: str, cheap_b: str, expensive: str
) -> TwoModelCascadeResult:
    """Run `cheap_a` and `cheap_b`, keep `cheap_b`'s choice when the two agree, else `expensive`.

    Every item pays for both cheap models, and an escalated item also pays for `expensive`.
    Returns accuracy, mean cost in USD per item, and the share of items escalated.
    """
    order = [cheap_a, cheap_b, expensive]
    accepted_tier, cost = _run_agreement_cascade(outcomes, order, [1.0])
    accepted_scores = _accepted_scores(outcomes, order, accepted_tier)
    return TwoModelCascadeResult(
        float(accepted_scores.mean()), float(cost.mean()), float((accepted_tier == 2).mean())
    )


def _run_agreement_cascade(
    outcomes: LoggedOutcomes, order: Sequence[str], thresholds: Sequence[float]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the accepted tier per item and the cost per item of all tiers run."""
    _check_cascade(outcomes, order, thresholds)
    chosen = outcomes.subset(list(order))
    assert chosen.responses is not None  # checked above
    choices = [[extract_choice(response) for response in row] for row in chosen.responses]

    last = len(order) - 1
    accepted_tier = np.full(len(outcomes), last)
    cost = np.zeros(len(outcomes))
    for item, item_choices in enumerate(choices):
        for tier in range(1, last):
            choice = item_choices[tier]
            agreeing = sum(1 for earlier in item_choices[:tier] if earlier == choice)
            if choice is not None and agreeing / tier >= thresholds[tier - 1]:
                accepted_tier[item] = tier
                break
        tiers_run = chosen.costs[item, : accepted_tier[item] + 1]
        if np.isnan(tiers_run).any():
            raise ValueError(
                f"a model run has no logged cost on item {outcomes.item_ids[item]!r} of "
                f"{outcomes.source}; call `complete()` or fill in the costs"
            )
        cost[item] = tiers_run.sum()
    return accepted_tier, cost


def _accepted_scores(
    outcomes: LoggedOutcomes, order: Sequence[str], accepted_tier: np.ndarray
) -> np.ndarray:
    scores = outcomes.subset(list(order)).scores
    accepted = scores[np.arange(len(outcomes)), accepted_tier]
    if np.isnan(accepted).any():
        raise ValueError(
            f"an accepted model has no logged score on some items of {outcomes.source}; "
            "call `complete()` first"
        )
    return accepted


def _check_cascade(
    outcomes: LoggedOutcomes, order: Sequence[str], thresholds: Sequence[float]
) -> None:
    if len(order) < 2:
        raise ValueError(f"a cascade needs at least two models, got {list(order)}")
    if len(set(order)) != len(order):
        raise ValueError(f"cascade order names a model twice: {list(order)}")
    if len(thresholds) != len(order) - 2:
        raise ValueError(
            f"{len(order)} models need {len(order) - 2} thresholds (one per tier from the "
            f"second to the second last), got {len(thresholds)}"
        )
    if outcomes.responses is None:
        raise ValueError(
            f"{outcomes.source} has no response text, which agreement cascades need"
        )
