"""Calibrated escalation: a learned confidence that a pair of cheap models answered right.

Two cheap models answer every item. The pair's answer is the one of the model the router
predicts more likely right (the same answer when they agree). A logistic regression, fitted
on the train split, turns four signals into the probability that this answer is right:

- whether the two option letters agree;
- the router's predicted score of each model (out of fold on train);
- the larger prediction when they agree, and 0 otherwise.

The item goes to the reference model when that probability is below a threshold. Pairs,
routers and thresholds are chosen on train, as for every family in `strategies`.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import combinations

import numpy as np
from sklearn.linear_model import LogisticRegression

from shoal.simulate.agreement import NO_CHOICE, choice_matrix, choice_rate
from shoal.simulate.frontier import StrategyPoint
from shoal.simulate.outcomes import LoggedOutcomes
from shoal.simulate.routers import Router
from shoal.simulate.strategies import (
    Splits,
    StrategyResult,
    cheap_models,
    escalation_points,
    family_result,
    router_predictions,
)

THRESHOLDS = np.concatenate(([np.inf], np.linspace(1.0, 0.0, 201)))


def pair_features(
    choices: np.ndarray, predicted: np.ndarray, pair: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Return the features [items, 4] and, per item, the column of the model whose answer is used."""
    first, second = pair
    agree = (choices[:, first] == choices[:, second]) & (choices[:, first] != NO_CHOICE)
    pair_predicted = predicted[:, [first, second]]
    answering = np.where(pair_predicted[:, 0] >= pair_predicted[:, 1], first, second)
    features = np.column_stack([
        agree.astype(float),
        pair_predicted,
        np.where(agree, pair_predicted.max(axis=1), 0.0),
    ])
    return features, answering


def _pair_points(
    name: str,
    outcomes: LoggedOutcomes,
    features: np.ndarray,
    answering: np.ndarray,
    pair: tuple[int, int],
    classifier: LogisticRegression,
    reference: int,
) -> list[StrategyPoint]:
    rows = np.arange(len(outcomes))
    confidence = classifier.predict_proba(features)[:, list(classifier.classes_).index(1.0)]
    return escalation_points(
        name,
        confidence,
        outcomes.scores[rows, answering],
        outcomes.costs[:, list(pair)].sum(axis=1),
        outcomes.scores[:, reference],
        outcomes.costs[:, reference],
        THRESHOLDS,
    )


def calibrated_family(
    splits: Splits, name: str, make_router: Callable[[], Router]
) -> StrategyResult | None:
    """Search pairs of cheap models and thresholds; return None without option letters.

    Also returns None when no pair has both right and wrong answers on train to learn from.
    """
    if splits.train.responses is None or splits.test.responses is None:
        return None
    train_choices, test_choices = choice_matrix(splits.train), choice_matrix(splits.test)
    if choice_rate(train_choices) < 0.5:
        return None
    train_predicted, test_predicted = router_predictions(splits, make_router)
    reference = splits.reference_column
    columns = [splits.train.models.index(model) for model in cheap_models(splits)]

    settings: list[str] = []
    train_points: list[StrategyPoint] = []
    test_points: list[StrategyPoint] = []
    for pair in combinations(columns, 2):
        train_features, train_answering = pair_features(train_choices, train_predicted, pair)
        right = splits.train.scores[np.arange(len(splits.train)), train_answering] >= 0.5
        if right.all() or not right.any():
            continue
        classifier = LogisticRegression().fit(train_features, right.astype(float))
        test_features, test_answering = pair_features(test_choices, test_predicted, pair)
        train_points += _pair_points(
            name, splits.train, train_features, train_answering, pair, classifier, reference
        )
        test_points += _pair_points(
            name, splits.test, test_features, test_answering, pair, classifier, reference
        )
        models = " + ".join(splits.train.models[column] for column in pair)
        settings += [f"{models}, escalate below {t:.3f}" for t in THRESHOLDS]
    if not settings:
        return None
    return family_result(
        name, "cascade", settings, train_points, test_points, splits
    )
