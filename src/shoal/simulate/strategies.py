"""Strategy families fitted on a train split and scored on a test split of logged outcomes.

Each family has settings (a router's cost weight, a cascade's models or threshold). Its
operating point is chosen on the train split alone: the cheapest setting whose train accuracy
is within `tolerance` of the reference model's, or the most accurate setting when none is.
That setting is then scored on the test split. Learned routers are judged on train with
out-of-fold predictions, so a setting is never chosen on predictions for items the router saw.
Every setting's test point is kept as the family's curve, for AIQ and plots.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from shoal.simulate.agreement import (
    AgreementRule,
    candidate_rules,
    choice_matrix,
    choice_rate,
    run_agreement,
)
from shoal.simulate.frontier import StrategyPoint
from shoal.simulate.outcomes import LoggedOutcomes
from shoal.simulate.routers import KnnRouter, LinearRouter, Router, choose_models

# A cascade's cheap models cost at most this share of the reference per item on train.
CHEAP_COST_SHARE = 0.5
# Cost weights of the routers' utility, predicted score - lam * cost / largest cost.
LAMS = np.concatenate(([0.0], np.geomspace(0.005, 20.0, 40)))
FOLDS = 5


@dataclass(frozen=True)
class Splits:
    """Train and test outcomes of one task, with prompt embeddings when routers are wanted."""

    train: LoggedOutcomes
    test: LoggedOutcomes
    reference: str
    tolerance: float
    train_embeddings: np.ndarray | None = None
    test_embeddings: np.ndarray | None = None
    seed: int = 0
    # When set, a setting is chosen for accuracy within this share of the reference's cost.
    cost_share: float | None = None

    @property
    def reference_column(self) -> int:
        return self.train.models.index(self.reference)

    def target_accuracy(self) -> float:
        """Return the train accuracy a setting must reach: the reference's, less the tolerance."""
        return float(self.train.scores[:, self.reference_column].mean()) - self.tolerance

    def choose(self, train_points: Sequence[StrategyPoint]) -> int:
        """Return the index of the setting to use, judged on its train point.

        With `cost_share`, the most accurate setting whose mean cost is within that share of
        the reference's. Otherwise the cheapest within `tolerance` of the reference's accuracy.
        """
        if self.cost_share is None:
            return choose_setting(train_points, self.target_accuracy())
        ceiling = self.cost_share * float(self.train.costs[:, self.reference_column].mean())
        return best_within_cost(train_points, ceiling)


@dataclass(frozen=True)
class StrategyResult:
    """A strategy's chosen setting, its train and test points, and every setting's test point."""

    strategy: str
    kind: str
    setting: str
    train: StrategyPoint | None
    test: StrategyPoint
    curve: tuple[StrategyPoint, ...]
    curve_settings: tuple[str, ...] = ()  # the setting of each curve point, when it has several


def cheap_models(splits: Splits) -> list[str]:
    """Return the models other than the reference that cost <= CHEAP_COST_SHARE of it, cheapest first."""
    costs = splits.train.costs.mean(axis=0)
    ceiling = CHEAP_COST_SHARE * costs[splits.reference_column]
    cheap = [
        column for column in np.argsort(costs, kind="stable")
        if column != splits.reference_column and costs[column] <= ceiling
    ]
    return [splits.train.models[column] for column in cheap]


def choose_setting(points: Sequence[StrategyPoint], target: float) -> int:
    """Return the index of the cheapest point with accuracy >= target, else the most accurate.

    Ties in cost go to the higher accuracy, and ties in accuracy to the lower cost.
    """
    if not points:
        raise ValueError("no settings to choose from")
    reaching = [index for index, point in enumerate(points) if point.accuracy >= target]
    if reaching:
        return min(reaching, key=lambda i: (points[i].mean_cost_usd, -points[i].accuracy))
    return min(range(len(points)), key=lambda i: (-points[i].accuracy, points[i].mean_cost_usd))


def best_within_cost(points: Sequence[StrategyPoint], ceiling: float) -> int:
    """Return the index of the most accurate point costing <= ceiling, else the cheapest point.

    Ties in accuracy go to the lower cost.
    """
    if not points:
        raise ValueError("no settings to choose from")
    within = [index for index, point in enumerate(points) if point.mean_cost_usd <= ceiling]
    if within:
        return min(within, key=lambda i: (-points[i].accuracy, points[i].mean_cost_usd))
    return min(range(len(points)), key=lambda i: (points[i].mean_cost_usd, -points[i].accuracy))


def family_result(
    name: str,
    kind: str,
    settings: Sequence[str],
    train_points: Sequence[StrategyPoint],
    test_points: Sequence[StrategyPoint],
    splits: Splits,
) -> StrategyResult:
    """Pick the setting on train and return its test point, with every test point as the curve."""
    index = splits.choose(train_points)
    chosen = test_points[index]
    return StrategyResult(
        strategy=name,
        kind=kind,
        setting=settings[index],
        train=train_points[index],
        test=StrategyPoint(name, chosen.accuracy, chosen.mean_cost_usd),
        curve=tuple(test_points),
        curve_settings=tuple(settings),
    )


def random_mix_family(splits: Splits) -> StrategyResult:
    """Send each item to the reference with a fixed probability, else to the cheapest model."""
    cheapest = int(np.argmin(splits.train.costs.mean(axis=0)))
    reference = splits.reference_column
    shares = np.linspace(0.0, 1.0, 101)

    def points(scores: np.ndarray, costs: np.ndarray) -> list[StrategyPoint]:
        accuracy = scores.mean(axis=0)
        cost = costs.mean(axis=0)
        return [
            StrategyPoint(
                "random-mix",
                float((1 - share) * accuracy[cheapest] + share * accuracy[reference]),
                float((1 - share) * cost[cheapest] + share * cost[reference]),
            )
            for share in shares
        ]

    settings = [
        f"{share:.0%} to {splits.reference}, else {splits.train.models[cheapest]}" for share in shares
    ]
    return family_result(
        "random-mix", "baseline", settings,
        points(splits.train.scores, splits.train.costs),
        points(splits.test.scores, splits.test.costs),
        splits,
    )


def out_of_fold(
    make_router: Callable[[], Router], embeddings: np.ndarray, scores: np.ndarray, seed: int
) -> np.ndarray:
    """Return predicted scores for every train item from routers fitted on the other folds."""
    folds = np.random.default_rng(seed).permutation(len(embeddings)) % FOLDS
    predicted = np.zeros_like(scores, dtype=float)
    for fold in range(FOLDS):
        held_out = folds == fold
        router = make_router().fit(embeddings[~held_out], scores[~held_out])
        predicted[held_out] = router.predict(embeddings[held_out])
    return predicted


def _routed_point(
    name: str, scores: np.ndarray, costs: np.ndarray, chosen: np.ndarray
) -> StrategyPoint:
    rows = np.arange(len(chosen))
    return StrategyPoint(name, float(scores[rows, chosen].mean()), float(costs[rows, chosen].mean()))


def router_family(splits: Splits, name: str, make_router: Callable[[], Router]) -> StrategyResult:
    """Route each item to the model with the best predicted score net of a cost penalty."""
    train_predicted, test_predicted = router_predictions(splits, make_router)
    mean_costs = splits.train.costs.mean(axis=0)
    scale = float(mean_costs.max()) or 1.0
    train_points, test_points = [], []
    for lam in LAMS:
        train_choice = choose_models(train_predicted, mean_costs, lam, scale)
        test_choice = choose_models(test_predicted, mean_costs, lam, scale)
        train_points.append(_routed_point(name, splits.train.scores, splits.train.costs, train_choice))
        test_points.append(_routed_point(name, splits.test.scores, splits.test.costs, test_choice))
    return family_result(
        name, "router", [f"lam={lam:.4g}" for lam in LAMS], train_points, test_points, splits,
    )


def router_predictions(
    splits: Splits, make_router: Callable[[], Router]
) -> tuple[np.ndarray, np.ndarray]:
    """Return predicted scores: out of fold on train, and from a router fitted on all of train."""
    if splits.train_embeddings is None or splits.test_embeddings is None:
        raise ValueError("learned routers need train and test embeddings")
    train = out_of_fold(make_router, splits.train_embeddings, splits.train.scores, splits.seed)
    router = make_router().fit(splits.train_embeddings, splits.train.scores)
    return train, router.predict(splits.test_embeddings)


def escalation_points(
    name: str,
    confidence: np.ndarray,
    first_scores: np.ndarray,
    first_costs: np.ndarray,
    final_scores: np.ndarray,
    final_costs: np.ndarray,
    thresholds: np.ndarray,
) -> list[StrategyPoint]:
    """Return one point per threshold: accept the first answer when confidence >= threshold.

    An escalated item pays both costs and scores the final model's score. Scores may be
    fractional.
    """
    order = np.argsort(-confidence, kind="stable")
    ascending = confidence[order][::-1]
    accepted = len(confidence) - np.searchsorted(ascending, thresholds, side="left")
    prefix_first = np.concatenate(([0.0], np.cumsum(first_scores[order])))
    prefix_final = np.concatenate(([0.0], np.cumsum(final_scores[order])))
    prefix_final_cost = np.concatenate(([0.0], np.cumsum(final_costs[order])))
    size = len(confidence)
    score = prefix_first[accepted] + prefix_final[-1] - prefix_final[accepted]
    cost = first_costs.sum() + prefix_final_cost[-1] - prefix_final_cost[accepted]
    return [
        StrategyPoint(name, float(s / size), float(c / size))
        for s, c in zip(score, cost, strict=True)
    ]


def router_cascade_family(
    splits: Splits, name: str, make_router: Callable[[], Router]
) -> StrategyResult:
    """Route as `router_family` does, then escalate to the reference when the predicted score
    of the routed model is below a threshold (cascade routing)."""
    train_predicted, test_predicted = router_predictions(splits, make_router)
    mean_costs = splits.train.costs.mean(axis=0)
    scale = float(mean_costs.max()) or 1.0
    reference = splits.reference_column
    thresholds = np.concatenate(([np.inf], np.linspace(1.0, 0.0, 51)))
    settings, train_points, test_points = [], [], []
    for lam in LAMS[LAMS > 0]:
        for predicted, scores, costs, points in (
            (train_predicted, splits.train.scores, splits.train.costs, train_points),
            (test_predicted, splits.test.scores, splits.test.costs, test_points),
        ):
            chosen = choose_models(predicted, mean_costs, lam, scale)
            rows = np.arange(len(chosen))
            points.extend(escalation_points(
                name, predicted[rows, chosen], scores[rows, chosen], costs[rows, chosen],
                scores[:, reference], costs[:, reference], thresholds,
            ))
        settings.extend(f"lam={lam:.4g}, escalate below {t:.2f}" for t in thresholds)
    return family_result(name, "cascade", settings, train_points, test_points, splits)


def agreement_family(splits: Splits) -> StrategyResult | None:
    """Run 2 or 3 cheap models and escalate to the reference when their answers disagree.

    Returns None when fewer than half of the logged responses name an option letter, as for
    code generation, where agreement of letters means nothing.
    """
    if splits.train.responses is None or splits.test.responses is None:
        return None
    train_choices = choice_matrix(splits.train)
    test_choices = choice_matrix(splits.test)
    if choice_rate(train_choices) < 0.5:
        return None
    cheap = cheap_models(splits)
    if len(cheap) < 2:
        return None
    rules = candidate_rules(cheap, splits.reference)
    name = "agreement-cascade"
    train_points = [_agreement_point(name, splits.train, train_choices, rule) for rule in rules]
    test_points = [_agreement_point(name, splits.test, test_choices, rule) for rule in rules]
    return family_result(
        name, "cascade", [str(rule) for rule in rules], train_points, test_points, splits,
    )


def _agreement_point(
    name: str, outcomes: LoggedOutcomes, choices: np.ndarray, rule: AgreementRule
) -> StrategyPoint:
    accuracy, cost, _ = run_agreement(outcomes, choices, rule)
    return StrategyPoint(name, accuracy, cost)


ROUTERS: dict[str, Callable[[], Router]] = {
    "knn-router": lambda: KnnRouter(k=10),
    "linear-router": lambda: LinearRouter(C=1.0),
}
