"""Simulate every strategy on each task of some logged outcomes and summarise the results.

`simulate_tasks` pairs each task's train and test splits, fits every strategy family on train
and scores it on test, next to each single model, the best single model, the reference model
and the oracle. `result_rows` flattens the results into the rows `shoal simulate` prints.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from shoal.errors import DatasetError
from shoal.simulate.baselines import best_single, oracle, single_models
from shoal.simulate.frontier import StrategyPoint, aiq, oracle_saving_captured, pareto_front
from shoal.simulate.learned import calibrated_family
from shoal.simulate.outcomes import LoggedOutcomes
from shoal.simulate.strategies import (
    ROUTERS,
    Splits,
    StrategyResult,
    agreement_family,
    random_mix_family,
    router_cascade_family,
    router_family,
)

DEFAULT_REFERENCE = "gpt-4-1106-preview"
# The goal for a cascade: within this many accuracy points of the reference, at no more than
# this share of its cost.
GOAL_ACCURACY_GAP = 0.01
GOAL_COST_SHARE = 0.30
# shoal's own strategies, among which `shoal-best` is chosen on train.
SHOAL_KINDS = ("cascade",)

HALVES_NOTE = "no separate train split: the items were split at random into train and test halves"

Embed = Callable[[list[str]], np.ndarray]
Progress = Callable[[str], None]


@dataclass
class TaskReport:
    """All strategies of one task, scored on its test split."""

    task: str
    train_items: int
    test_items: int
    reference: str
    strategies: list[StrategyResult]
    cost_range: tuple[float, float]
    goal: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def result(self, strategy: str) -> StrategyResult:
        """Return the result named `strategy`; raise KeyError if there is none."""
        for result in self.strategies:
            if result.strategy == strategy:
                return result
        raise KeyError(strategy)


def routing_text(prompt: str) -> str:
    """Return the part of a prompt a router embeds: the text after the last blank line.

    Few-shot prompts share their worked examples, which come first and would fill the
    encoder's input window, so only the item's own question is kept.
    """
    return prompt.rsplit("\n\n", 1)[-1]


def pair_splits(
    outcomes: Sequence[LoggedOutcomes], seed: int = 0
) -> list[tuple[LoggedOutcomes, LoggedOutcomes]]:
    """Return (train, test) per task, in task name order.

    A task with a train and a test split uses them. A task with one split is split at random,
    half and half. Items without a score for some model are dropped first.
    """
    by_task: dict[str, dict[str, LoggedOutcomes]] = {}
    for table in outcomes:
        split = table.split if table.split in ("train", "test") else ""
        if split in by_task.get(table.task, {}):
            raise DatasetError(
                f"task {table.task!r} has two {split or 'unsplit'} files: "
                f"{by_task[table.task][split].source} and {table.source}; give each file once"
            )
        by_task.setdefault(table.task, {})[split] = table.complete()
    pairs = []
    for task in sorted(by_task):
        splits = by_task[task]
        if "train" in splits and "test" in splits:
            pairs.append(_same_models(splits["train"], splits["test"]))
        else:
            pairs.append(_halves(next(iter(splits.values())), seed))
    return pairs



def _same_models(train: LoggedOutcomes, test: LoggedOutcomes) -> tuple[LoggedOutcomes, LoggedOutcomes]:
    models = [model for model in train.models if model in test.models]
    if not models:
        raise DatasetError(f"{train.source} and {test.source} share no model")
    return train.subset(models), test.subset(models)


def _halves(table: LoggedOutcomes, seed: int) -> tuple[LoggedOutcomes, LoggedOutcomes]:
    if len(table) < 4:
        raise DatasetError(f"{table.source} has {len(table)} complete items; at least 4 are needed")
    order = np.random.default_rng(seed).permutation(len(table))
    middle = len(table) // 2
    halves = table.take(np.sort(order[:middle]), "train"), table.take(np.sort(order[middle:]), "test")
    for half in halves:
        half.notes.append(HALVES_NOTE)
    return halves


def simulate_task(
    train: LoggedOutcomes,
    test: LoggedOutcomes,
    *,
    reference: str | None = None,
    tolerance: float = GOAL_ACCURACY_GAP,
    cost_share: float | None = None,
    embed: Embed | None = None,
    seed: int = 0,
) -> TaskReport:
    """Fit every strategy on `train`, score it on `test`, and check the cost goal.

    Settings are chosen by `Splits.choose`: within `cost_share` of the reference's cost
    when given, else within `tolerance` of its accuracy.
    """
    for table in (train, test):
        if np.isnan(table.costs).any():
            raise DatasetError(
                f"{table.source} has items without a cost; give prices for its models"
            )
    reference = _reference(train, reference)
    notes = [note for note in train.notes if note == HALVES_NOTE]
    train_embeddings = test_embeddings = None
    if embed is not None:
        train_embeddings = embed([routing_text(prompt) for prompt in train.prompts])
        test_embeddings = embed([routing_text(prompt) for prompt in test.prompts])
    else:
        notes.append("learned routers skipped: no encoder")
    splits = Splits(
        train=train, test=test, reference=reference, tolerance=tolerance, seed=seed,
        cost_share=cost_share, train_embeddings=train_embeddings, test_embeddings=test_embeddings,
    )

    results = _reference_results(splits)
    results.append(random_mix_family(splits))
    if embed is not None:
        for name, make_router in ROUTERS.items():
            results.append(router_family(splits, name, make_router))
            results.append(router_cascade_family(splits, f"{name}-cascade", make_router))
        for name, make_router in ROUTERS.items():
            calibrated_name = f"calibrated-{name.removesuffix('-router')}"
            calibrated = calibrated_family(splits, calibrated_name, make_router)
            if calibrated is None:
                notes.append(f"{calibrated_name} skipped: no pair of cheap models to learn from")
            else:
                results.append(calibrated)
    agreement = agreement_family(splits)
    if agreement is None:
        notes.append("agreement cascade skipped: most responses name no option letter")
    else:
        results.append(agreement)
    results.append(_shoal_best(results, splits))

    costs = [point.mean_cost_usd for point in single_models(test)]
    report = TaskReport(
        task=test.task, train_items=len(train), test_items=len(test), reference=reference,
        strategies=results, cost_range=(min(costs), max(costs)), notes=notes,
    )
    report.goal = goal_check(report)
    return report


def _reference(train: LoggedOutcomes, reference: str | None) -> str:
    if reference is not None:
        if reference not in train.models:
            raise DatasetError(
                f"reference model {reference!r} is not in {train.source}; known: "
                + ", ".join(train.models)
            )
        return reference
    if DEFAULT_REFERENCE in train.models:
        return DEFAULT_REFERENCE
    return best_single(single_models(train)).strategy


def _reference_results(splits: Splits) -> list[StrategyResult]:
    train_points = {point.strategy: point for point in single_models(splits.train)}
    results = []
    for point in single_models(splits.test):
        kind = "reference" if point.strategy == splits.reference else "single"
        results.append(_fixed(f"single:{point.strategy}", kind, point.strategy,
                              train_points[point.strategy], point))
    best = best_single(single_models(splits.test))
    results.append(_fixed("best-single", "baseline", best.strategy, train_points[best.strategy], best))
    oracle_test, _ = oracle(splits.test)
    oracle_train, _ = oracle(splits.train)
    results.append(_fixed("oracle", "oracle", "cheapest right model", oracle_train, oracle_test))
    return results


def _fixed(
    name: str, kind: str, setting: str, train: StrategyPoint, test: StrategyPoint
) -> StrategyResult:
    point = StrategyPoint(name, test.accuracy, test.mean_cost_usd)
    return StrategyResult(name, kind, setting, train, point, (point,))


def own_results(results: Sequence[StrategyResult]) -> list[StrategyResult]:
    """Return shoal's own strategies (the cascades), or the baselines when no cascade applies."""
    own = [result for result in results if result.kind in SHOAL_KINDS and result.train]
    if not own:
        own = [result for result in results if result.kind == "baseline" and result.train]
    return own


def _shoal_best(results: list[StrategyResult], splits: Splits) -> StrategyResult:
    """Return the shoal strategy whose chosen train point `splits.choose` prefers."""
    own = own_results(results)
    chosen = own[splits.choose([result.train for result in own])]
    return StrategyResult(
        strategy="shoal-best",
        kind="best",
        setting=f"{chosen.strategy}: {chosen.setting}",
        train=chosen.train,
        test=StrategyPoint("shoal-best", chosen.test.accuracy, chosen.test.mean_cost_usd),
        curve=chosen.curve,
        curve_settings=chosen.curve_settings,
    )


def goal_check(report: TaskReport) -> dict[str, Any]:
    """Compare shoal's points with the reference: within 1 point of its accuracy at <= 30% cost.

    `chosen_meets_goal` judges the point chosen on train. `front_point` is the cheapest point on
    the test front of shoal's strategies that meets the goal, picked knowing the test results.
    """
    reference = report.result(f"single:{report.reference}").test
    accuracy_floor = reference.accuracy - GOAL_ACCURACY_GAP
    cost_ceiling = reference.mean_cost_usd * GOAL_COST_SHARE
    chosen = report.result("shoal-best").test
    own = own_results([r for r in report.strategies if r.strategy != "shoal-best"])
    setting_of = {
        id(point): f"{result.strategy}: {setting}"
        for result in own
        for point, setting in zip(result.curve, result.curve_settings or (result.setting,), strict=True)
    }
    front = pareto_front(point for result in own for point in result.curve)
    meeting = [p for p in front if p.accuracy >= accuracy_floor and p.mean_cost_usd <= cost_ceiling]
    best_front = max(
        (p for p in front if p.mean_cost_usd <= cost_ceiling), key=lambda p: p.accuracy, default=None
    )
    return {
        "reference": report.reference,
        "accuracy_floor": accuracy_floor,
        "cost_ceiling_per_1k_usd": cost_ceiling * 1000,
        "chosen_meets_goal": bool(
            chosen.accuracy >= accuracy_floor and chosen.mean_cost_usd <= cost_ceiling
        ),
        "front_meets_goal": bool(meeting),
        "front_point": (
            _point_fields(min(meeting, key=lambda p: p.mean_cost_usd), setting_of)
            if meeting else None
        ),
        "best_front_point_within_cost": (
            _point_fields(best_front, setting_of) if best_front else None
        ),
    }


def _point_fields(point: StrategyPoint, setting_of: dict[int, str]) -> dict[str, Any]:
    return {
        "accuracy": point.accuracy,
        "cost_per_1k_usd": point.cost_per_1k_usd,
        "setting": setting_of.get(id(point), ""),
    }


def result_rows(report: TaskReport) -> list[dict[str, Any]]:
    """Return one JSON-ready row per strategy of `report`."""
    best = report.result("best-single").test
    oracle_point = report.result("oracle").test
    rows = []
    for result in report.strategies:
        point = result.test
        captured = oracle_saving_captured(point, best, oracle_point)
        rows.append({
            "task": report.task,
            "strategy": result.strategy,
            "kind": result.kind,
            "setting": result.setting,
            "accuracy": point.accuracy,
            "cost_per_1k_usd": point.cost_per_1k_usd,
            "accuracy_per_dollar": _finite_or_none(point.accuracy_per_dollar),
            "aiq": aiq(result.curve, report.cost_range),
            "oracle_saving_captured": captured,
        })
    return rows


def _finite_or_none(value: float) -> float | None:
    return value if np.isfinite(value) else None


def simulate_tasks(
    outcomes: Sequence[LoggedOutcomes],
    *,
    reference: str | None = None,
    tolerance: float = GOAL_ACCURACY_GAP,
    cost_share: float | None = None,
    embed: Embed | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> list[TaskReport]:
    """Run `simulate_task` on every task of `outcomes`."""
    reports = []
    for train, test in pair_splits(outcomes, seed=seed):
        if progress is not None:
            progress(f"simulating {test.task}: {len(train)} train and {len(test)} test items")
        reports.append(
            simulate_task(
                train, test, reference=reference, tolerance=tolerance, cost_share=cost_share,
                embed=embed, seed=seed,
            )
        )
    return reports
