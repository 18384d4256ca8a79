"""Tests of the frontier measures and the baseline strategies, on tiny tables and RouterBench."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import shared_data_dir

from shoal.simulate.baselines import (
    best_single,
    oracle,
    random_mix,
    random_mix_curve,
    single_models,
)
from shoal.simulate.frontier import StrategyPoint, aiq, oracle_saving_captured, pareto_front
from shoal.simulate.outcomes import LoggedOutcomes, load_routerbench


def make_outcomes(scores: list[list[float]], costs: list[list[float]]) -> LoggedOutcomes:
    items = len(scores)
    return LoggedOutcomes(
        task="tiny",
        split="test",
        item_ids=[str(item) for item in range(items)],
        prompts=[f"prompt {item}" for item in range(items)],
        models=["a", "b", "c"],
        scores=np.array(scores),
        costs=np.array(costs),
        responses=None,
        source="tiny table",
    )


@pytest.fixture
def tiny() -> LoggedOutcomes:
    # Item 0: b and c are right, b is cheaper. Item 1: a and b are right, a is cheaper.
    # Item 2: no model is right, b is the cheapest there.
    return make_outcomes(
        scores=[[0, 1, 1], [1, 1, 0], [0, 0, 0]],
        costs=[[1, 2, 3], [1, 2, 3], [3, 1, 2]],
    )


# StrategyPoint and pareto_front -----------------------------------------------------------------


def test_point_properties() -> None:
    point = StrategyPoint("x", 0.8, 0.002)
    assert point.cost_per_1k_usd == pytest.approx(2.0)
    assert point.accuracy_per_dollar == pytest.approx(400.0)
    assert StrategyPoint("free", 0.5, 0.0).accuracy_per_dollar == math.inf


def test_pareto_drops_dominated() -> None:
    cheap = StrategyPoint("cheap", 0.6, 1.0)
    good = StrategyPoint("good", 0.9, 3.0)
    worse = StrategyPoint("worse", 0.5, 2.0)  # costs more than cheap and is less accurate
    same_cost = StrategyPoint("same_cost", 0.85, 3.0)  # as costly as good, less accurate
    same_accuracy = StrategyPoint("same_accuracy", 0.9, 4.0)  # as accurate as good, costlier
    front = pareto_front([good, worse, cheap, same_cost, same_accuracy])
    assert front == [cheap, good]


def test_pareto_keeps_equal_points() -> None:
    first = StrategyPoint("first", 0.7, 1.0)
    twin = StrategyPoint("twin", 0.7, 1.0)
    assert pareto_front([first, twin]) == [first, twin]
    assert pareto_front([]) == []


# aiq --------------------------------------------------------------------------------------------


def test_aiq_hull_skips_point_below() -> None:
    # (2, 0.6) lies below the segment from (1, 0.5) to (3, 0.9), whose midpoint is 0.7, so the
    # curve is that segment: area 2 * 0.7 over width 2.
    points = [StrategyPoint("a", 0.5, 1.0), StrategyPoint("b", 0.6, 2.0), StrategyPoint("c", 0.9, 3.0)]
    assert aiq(points) == pytest.approx(0.7)


def test_aiq_carries_max_forward() -> None:
    # The hull is (1, 0.5), (2, 0.8), (3, 0.7). Made non-decreasing, the last vertex becomes 0.8.
    # Area: [1, 2] gives 0.65 and [2, 3] gives 0.8, so 1.45 over width 2.
    points = [StrategyPoint("a", 0.5, 1.0), StrategyPoint("b", 0.8, 2.0), StrategyPoint("c", 0.7, 3.0)]
    assert aiq(points) == pytest.approx(0.725)


def test_aiq_wider_cost_range() -> None:
    # Same curve as above. On [0, 1] the curve is 0, on [3, 4] it stays at 0.8:
    # (0 + 1.45 + 0.8) / 4.
    points = [StrategyPoint("a", 0.5, 1.0), StrategyPoint("b", 0.8, 2.0), StrategyPoint("c", 0.7, 3.0)]
    assert aiq(points, cost_range=(0.0, 4.0)) == pytest.approx(0.5625)


def test_aiq_narrower_cost_range() -> None:
    # On [1.5, 2.5]: [1.5, 2] averages (0.65 + 0.8) / 2, [2, 2.5] is 0.8.
    points = [StrategyPoint("a", 0.5, 1.0), StrategyPoint("b", 0.8, 2.0), StrategyPoint("c", 0.7, 3.0)]
    expected = (0.5 * (0.65 + 0.8) / 2 + 0.5 * 0.8) / 1.0
    assert aiq(points, cost_range=(1.5, 2.5)) == pytest.approx(expected)


def test_aiq_single_point() -> None:
    assert aiq([StrategyPoint("only", 0.42, 1.0)]) == pytest.approx(0.42)
    same_cost = [StrategyPoint("a", 0.3, 1.0), StrategyPoint("b", 0.6, 1.0)]
    assert aiq(same_cost) == pytest.approx(0.6)


def test_aiq_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        aiq([])
    with pytest.raises(ValueError, match="high > low"):
        aiq([StrategyPoint("a", 0.5, 1.0)], cost_range=(2.0, 2.0))


# oracle_saving_captured -------------------------------------------------------------------------


def test_saving_captured_share() -> None:
    best = StrategyPoint("best", 0.9, 10.0)
    top = StrategyPoint("oracle", 0.95, 2.0)
    assert oracle_saving_captured(StrategyPoint("s", 0.9, 6.0), best, top) == pytest.approx(0.5)
    assert oracle_saving_captured(StrategyPoint("s", 0.92, 2.0), best, top) == pytest.approx(1.0)
    assert oracle_saving_captured(StrategyPoint("s", 0.9, 12.0), best, top) == pytest.approx(-0.25)


def test_saving_captured_none_cases() -> None:
    best = StrategyPoint("best", 0.9, 10.0)
    top = StrategyPoint("oracle", 0.95, 2.0)
    assert oracle_saving_captured(StrategyPoint("s", 0.89, 2.0), best, top) is None
    assert oracle_saving_captured(StrategyPoint("s", 0.9, 2.0), best, best) is None


# Baselines on a tiny table ----------------------------------------------------------------------


def test_single_models_means(tiny: LoggedOutcomes) -> None:
    points = single_models(tiny)
    assert [point.strategy for point in points] == ["a", "b", "c"]
    assert [point.accuracy for point in points] == pytest.approx([1 / 3, 2 / 3, 1 / 3])
    assert [point.mean_cost_usd for point in points] == pytest.approx([5 / 3, 5 / 3, 8 / 3])


def test_best_single_breaks_ties_by_cost() -> None:
    costly = StrategyPoint("costly", 0.9, 2.0)
    cheap = StrategyPoint("cheap", 0.9, 1.0)
    weak = StrategyPoint("weak", 0.5, 0.1)
    assert best_single([costly, weak, cheap]) == cheap
    with pytest.raises(ValueError, match="at least one"):
        best_single([])


def test_oracle_choices(tiny: LoggedOutcomes) -> None:
    point, choices = oracle(tiny)
    assert choices.tolist() == [1, 0, 1]
    assert point.strategy == "oracle"
    assert point.accuracy == pytest.approx(2 / 3)
    assert point.mean_cost_usd == pytest.approx((2 + 1 + 1) / 3)


def test_oracle_rejects_missing_scores() -> None:
    gaps = make_outcomes(scores=[[1, math.nan, 0]], costs=[[1, 2, 3]])
    with pytest.raises(ValueError, match="complete"):
        oracle(gaps)


def test_random_mix_linear(tiny: LoggedOutcomes) -> None:
    first, second, _ = single_models(tiny)
    for share in (0.0, 0.25, 0.5, 1.0):
        point = random_mix(tiny, "a", "b", share)
        assert point.accuracy == pytest.approx((1 - share) * first.accuracy + share * second.accuracy)
        assert point.mean_cost_usd == pytest.approx(
            (1 - share) * first.mean_cost_usd + share * second.mean_cost_usd
        )


def test_random_mix_rejects_bad_input(tiny: LoggedOutcomes) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        random_mix(tiny, "a", "b", 1.5)
    with pytest.raises(KeyError, match="'z'"):
        random_mix(tiny, "a", "z", 0.5)


def test_random_mix_curve_ends(tiny: LoggedOutcomes) -> None:
    curve = random_mix_curve(tiny, "a", "c", steps=5)
    first, _, third = single_models(tiny)
    assert len(curve) == 5
    assert curve[0].accuracy == pytest.approx(first.accuracy)
    assert curve[-1].mean_cost_usd == pytest.approx(third.mean_cost_usd)
    costs = [point.mean_cost_usd for point in curve]
    assert np.allclose(np.diff(costs), (third.mean_cost_usd - first.mean_cost_usd) / 4)
    with pytest.raises(ValueError, match="at least 2"):
        random_mix_curve(tiny, "a", "c", steps=1)


# RouterBench ARC-Challenge test split -----------------------------------------------------------

GPT4 = "gpt-4-1106-preview"


@pytest.fixture(scope="module")
def arc_test() -> LoggedOutcomes:
    folder = shared_data_dir() / "routerbench_subset" / "datasets" / "routerbench_zs"
    return load_routerbench(folder / "arc_challenge_test.csv").complete()


def test_arc_single_models(arc_test: LoggedOutcomes) -> None:
    points = {point.strategy: point for point in single_models(arc_test)}
    assert len(points) == 11
    assert points[GPT4].accuracy == pytest.approx(0.957, abs=0.01)
    assert points[GPT4].mean_cost_usd == pytest.approx(0.0050, rel=0.2)
    assert best_single(list(points.values())).strategy == GPT4


def test_arc_oracle(arc_test: LoggedOutcomes) -> None:
    points = single_models(arc_test)
    gpt4 = next(point for point in points if point.strategy == GPT4)
    top, choices = oracle(arc_test)
    assert top.accuracy == pytest.approx(0.984, abs=0.01)
    assert top.mean_cost_usd < gpt4.mean_cost_usd / 5
    assert len(choices) == len(arc_test)
    assert oracle_saving_captured(top, gpt4, top) == pytest.approx(1.0)


def test_arc_aiq_bounds(arc_test: LoggedOutcomes) -> None:
    points = single_models(arc_test)
    value = aiq(points)
    accuracies = [point.accuracy for point in points]
    assert min(accuracies) <= value <= max(accuracies)
    front = pareto_front(points)
    assert front[-1].strategy == GPT4
