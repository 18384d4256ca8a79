"""Vectorised agreement cascades over many model orders, for multiple-choice tasks.

`cascades.agreement_cascade` simulates one order item by item. Searching over every order of
two or three cheap models needs thousands of such runs, so this module extracts each logged
response's option letter once and runs a cascade as array operations.

A cascade here runs cheap models in `order` and accepts an answer as soon as enough of the
models run so far agree with it (see `AgreementRule`). Otherwise the `final` model answers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from shoal.simulate.cascades import extract_choice
from shoal.simulate.outcomes import LoggedOutcomes

NO_CHOICE = -1


@dataclass(frozen=True)
class AgreementRule:
    """Cheap models run in `order`, then `final` when no answer was accepted.

    After the second cheap model, its answer is accepted when it equals the first one's.
    After the third, an answer given by two of the three is accepted. A missing choice never
    agrees with anything.
    """

    order: tuple[str, ...]
    final: str

    def __str__(self) -> str:
        return " + ".join(self.order) + f" -> {self.final}"


def choice_matrix(outcomes: LoggedOutcomes) -> np.ndarray:
    """Return each response's option letter as 0-4 (A-E), or NO_CHOICE, shape [items, models]."""
    if outcomes.responses is None:
        raise ValueError(f"{outcomes.source} has no response text, which agreement needs")
    letters = {letter: index for index, letter in enumerate("ABCDE")}
    return np.array(
        [
            [letters.get(extract_choice(response) or "", NO_CHOICE) for response in row]
            for row in outcomes.responses
        ],
        dtype=np.int8,
    ).reshape(len(outcomes), len(outcomes.models))


def choice_rate(choices: np.ndarray) -> float:
    """Return the share of responses that name an option, 0 for no responses."""
    return float((choices != NO_CHOICE).mean()) if choices.size else 0.0


def run_agreement(
    outcomes: LoggedOutcomes, choices: np.ndarray, rule: AgreementRule
) -> tuple[float, float, float]:
    """Return (accuracy, mean cost per item in USD, escalated share) of `rule` on `outcomes`.

    The accepted answer's score is the logged score of a cheap model that gave it, and the
    cost is the sum of the logged costs of every model run.
    """
    if len(rule.order) not in (2, 3):
        raise ValueError(f"an agreement rule needs 2 or 3 cheap models, got {list(rule.order)}")
    columns = [outcomes.models.index(model) for model in rule.order]
    final = outcomes.models.index(rule.final)
    picked = choices[:, columns]
    scores = outcomes.scores[:, columns]
    costs = outcomes.costs[:, columns]

    first_pair = (picked[:, 0] == picked[:, 1]) & (picked[:, 1] != NO_CHOICE)
    score = np.where(first_pair, scores[:, 1], outcomes.scores[:, final])
    cost = costs[:, 0] + costs[:, 1]
    escalated = ~first_pair
    if len(columns) == 3:
        third = picked[:, 2]
        joins = ((third == picked[:, 0]) | (third == picked[:, 1])) & (third != NO_CHOICE)
        accepted_third = ~first_pair & joins
        score = np.where(accepted_third, scores[:, 2], score)
        cost = cost + np.where(first_pair, 0.0, costs[:, 2])
        escalated = ~first_pair & ~joins
    cost = cost + np.where(escalated, outcomes.costs[:, final], 0.0)
    return float(score.mean()), float(cost.mean()), float(escalated.mean())


def candidate_rules(cheap: Sequence[str], final: str, max_cheap: int = 3) -> list[AgreementRule]:
    """Return every rule of 2 to `max_cheap` of the `cheap` models, keeping their order.

    Pass `cheap` from cheapest to dearest, so each rule runs its cheapest models first. The
    search stays small: for 10 cheap models and `max_cheap` 3 there are 45 pairs and 120
    triples.
    """
    rules = []
    for size in range(2, max_cheap + 1):
        for group in combinations(cheap, size):
            rules.append(AgreementRule(order=tuple(group), final=final))
    return rules
