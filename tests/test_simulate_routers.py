"""Learned routers and agreement cascades on hand-made and RouterBench ARC-Challenge outcomes."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import shared_data_dir

from shoal.simulate import LoggedOutcomes, load_routerbench
from shoal.simulate.cascades import (
    agreement_cascade,
    extract_choice,
    two_model_agreement_cascade,
)
from shoal.simulate.routers import (
    KnnRouter,
    LinearRouter,
    choose_models,
    model_costs,
    route_curve,
    single_model_points,
)


def make_outcomes(
    scores: list[list[float]],
    costs: list[list[float]],
    models: list[str],
    responses: list[list[str | None]] | None = None,
) -> LoggedOutcomes:
    count = len(scores)
    return LoggedOutcomes(
        task="toy",
        split="test",
        item_ids=[str(index) for index in range(count)],
        prompts=[f"prompt {index}" for index in range(count)],
        models=models,
        scores=np.array(scores, dtype=float),
        costs=np.array(costs, dtype=float),
        responses=responses,
        source="toy",
    )


# Routers ----------------------------------------------------------------------------------

# Two clusters of prompts: "cheap" answers the x-axis prompts, only "strong" the y-axis ones.
TRAIN_EMBEDDINGS = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [0.1, 0.9]])
TRAIN_SCORES = [[1.0, 1.0], [1.0, 1.0], [0.0, 1.0], [0.0, 1.0]]
TRAIN_COSTS = [[0.001, 0.01], [0.001, 0.01], [0.001, 0.01], [0.001, 0.01]]
TEST_EMBEDDINGS = np.array([[0.95, 0.05], [0.05, 0.95]])
TEST_SCORES = [[1.0, 1.0], [0.0, 1.0]]
TEST_COSTS = [[0.002, 0.02], [0.002, 0.02]]


def toy_splits() -> tuple[LoggedOutcomes, LoggedOutcomes]:
    models = ["cheap", "strong"]
    return (
        make_outcomes(TRAIN_SCORES, TRAIN_COSTS, models),
        make_outcomes(TEST_SCORES, TEST_COSTS, models),
    )


def test_knn_router_predicts_neighbour_mean() -> None:
    router = KnnRouter(k=2).fit(TRAIN_EMBEDDINGS, np.array(TRAIN_SCORES))

    predicted = router.predict(TEST_EMBEDDINGS)

    np.testing.assert_allclose(predicted, [[1.0, 1.0], [0.0, 1.0]])


def test_knn_router_k_above_train_size() -> None:
    router = KnnRouter(k=50).fit(TRAIN_EMBEDDINGS, np.array(TRAIN_SCORES))

    np.testing.assert_allclose(router.predict(TEST_EMBEDDINGS), [[0.5, 1.0], [0.5, 1.0]])


def test_knn_router_skips_nan_scores() -> None:
    scores = np.array([[1.0, math.nan], [0.0, math.nan], [0.0, 1.0], [0.0, 1.0]])
    router = KnnRouter(k=2).fit(TRAIN_EMBEDDINGS, scores)

    predicted = router.predict(TEST_EMBEDDINGS)

    assert predicted[0, 0] == pytest.approx(0.5)
    assert predicted[0, 1] == 0.0  # no known score among the neighbours
    assert predicted[1, 1] == pytest.approx(1.0)


def test_linear_router_separates_clusters() -> None:
    router = LinearRouter(C=100.0).fit(TRAIN_EMBEDDINGS, np.array(TRAIN_SCORES))

    predicted = router.predict(TEST_EMBEDDINGS)

    assert predicted[0, 0] > 0.5
    assert predicted[1, 0] < 0.5


def test_linear_router_constant_model() -> None:
    router = LinearRouter().fit(TRAIN_EMBEDDINGS, np.array(TRAIN_SCORES))

    predicted = router.predict(TEST_EMBEDDINGS)

    # "strong" is correct on every train prompt, so it is predicted as exactly 1.
    np.testing.assert_array_equal(predicted[:, 1], [1.0, 1.0])


def test_linear_router_fractional_scores() -> None:
    scores = np.array([[0.8, 0.0], [0.8, 0.0], [0.2, 0.0], [0.2, 0.0]])
    router = LinearRouter(C=100.0).fit(TRAIN_EMBEDDINGS, scores)

    predicted = router.predict(TEST_EMBEDDINGS)

    assert 0.5 < predicted[0, 0] < 0.95
    assert 0.05 < predicted[1, 0] < 0.5
    np.testing.assert_array_equal(predicted[:, 1], [0.0, 0.0])


def test_router_predict_before_fit() -> None:
    with pytest.raises(RuntimeError, match="before fit"):
        KnnRouter().predict(TEST_EMBEDDINGS)
    with pytest.raises(RuntimeError, match="before fit"):
        LinearRouter().predict(TEST_EMBEDDINGS)


def test_choose_models_penalty_and_ties() -> None:
    predicted = np.array([[0.5, 0.9], [0.7, 0.7]])
    costs = np.array([1.0, 10.0])

    assert list(choose_models(predicted, costs, lam=0.0, cost_scale=10.0)) == [1, 0]
    # 0.9 - 0.5 * 10 / 10 = 0.4 is below 0.5 - 0.5 * 1 / 10 = 0.45.
    assert list(choose_models(predicted, costs, lam=0.5, cost_scale=10.0)) == [0, 0]


def test_route_curve_trades_accuracy_for_cost() -> None:
    train, test = toy_splits()

    curve = route_curve(
        KnnRouter(k=2), train, test, TRAIN_EMBEDDINGS, TEST_EMBEDDINGS, [0.0, 0.5, 10.0]
    )

    lams = [lam for lam, _, _ in curve]
    assert lams == [0.0, 0.5, 10.0]
    # lam 0: ties on the first item go to "cheap", the second item needs "strong".
    assert curve[0][1] == pytest.approx(1.0)
    assert curve[0][2] == pytest.approx((0.002 + 0.02) / 2)
    # lam 0.5: "strong" loses 0.5 of its predicted 1.0 and "cheap" 0.05 of its 0, so the
    # second item still goes to "strong".
    assert curve[1][1] == pytest.approx(1.0)
    assert curve[1][2] == pytest.approx((0.002 + 0.02) / 2)
    # lam 10: the penalty dominates and every item goes to "cheap".
    assert curve[2][1] == pytest.approx(0.5)
    assert curve[2][2] == pytest.approx(0.002)


def test_route_curve_uses_train_costs() -> None:
    train, test = toy_splits()

    assert list(model_costs(train)) == pytest.approx([0.001, 0.01])
    # Test costs do not steer routing: making "cheap" dear on test changes only the bill.
    dear = make_outcomes(TEST_SCORES, [[0.5, 0.02], [0.5, 0.02]], test.models)
    curve = route_curve(KnnRouter(k=2), train, dear, TRAIN_EMBEDDINGS, TEST_EMBEDDINGS, [10.0])
    assert curve[0][2] == pytest.approx(0.5)


def test_route_curve_rejects_mismatches() -> None:
    train, test = toy_splits()

    with pytest.raises(ValueError, match="differ from test models"):
        route_curve(
            KnnRouter(), train, test.subset(["strong", "cheap"]),
            TRAIN_EMBEDDINGS, TEST_EMBEDDINGS, [0.0],
        )
    with pytest.raises(ValueError, match="test_embeddings has 1 rows"):
        route_curve(KnnRouter(), train, test, TRAIN_EMBEDDINGS, TEST_EMBEDDINGS[:1], [0.0])


def test_route_curve_rejects_nan_test_score() -> None:
    train, _ = toy_splits()
    test = make_outcomes([[1.0, math.nan], [0.0, math.nan]], TEST_COSTS, ["cheap", "strong"])

    with pytest.raises(ValueError, match="complete"):
        route_curve(KnnRouter(k=2), train, test, TRAIN_EMBEDDINGS, TEST_EMBEDDINGS, [0.0])


# extract_choice ---------------------------------------------------------------------------

CHOICE_CASES = [
    ("B", "B"),
    ("B\n", "B"),
    ("B.", "B"),
    ("A) dry palms", "A"),
    ("(C)", "C"),
    ("D: palms covered with lotion", "D"),
    ("E", "E"),
    ("b", "B"),
    ("(d)", "D"),
    ("The answer is (B)", "B"),
    ("The answer is B.", "B"),
    ("answer: b", "B"),
    ("Answer: c.", "C"),
    ("The correct answer is option D", "D"),
    ("I think A is wrong. The answer is C", "C"),
    ("Looking at the options, (A) fits best.", "A"),
    ("I would pick option C here", "C"),
    ("I don't know", None),
    ("Unfortunately I cannot answer that.", None),
    ("the answer is a guess at best", None),
    ("Either (A) or (B) could be right", None),
    ("F", None),
    ("", None),
    ("   ", None),
    (None, None),
]


@pytest.mark.parametrize(("response", "expected"), CHOICE_CASES)
def test_extract_choice(response: str | None, expected: str | None) -> None:
    assert extract_choice(response) == expected


# Cascades ---------------------------------------------------------------------------------

CASCADE_MODELS = ["small", "medium", "large"]
# Per item: small, medium, large. Costs in USD per call.
CASCADE_RESPONSES: list[list[str | None]] = [
    ["A", "A.", "B"],  # agree on A: accept medium
    ["A", "B", "B"],  # disagree: escalate
    [None, None, "C"],  # no choice never agrees: escalate
    ["The answer is (C)", "C) oil", "D"],  # agree on C: accept medium
]
CASCADE_SCORES = [[1.0, 1.0, 0.0], [0.0, 1.0, 1.0], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
CASCADE_COSTS = [[1.0, 2.0, 10.0]] * 4


def cascade_outcomes() -> LoggedOutcomes:
    return make_outcomes(CASCADE_SCORES, CASCADE_COSTS, CASCADE_MODELS, CASCADE_RESPONSES)


def test_two_model_cascade_accounting() -> None:
    result = two_model_agreement_cascade(cascade_outcomes(), "small", "medium", "large")

    # Accepted scores: medium 1.0, large 1.0, large 1.0, medium 0.0.
    assert result.accuracy == pytest.approx(0.75)
    # Every item pays 1 + 2, and the two escalated items also pay 10.
    assert result.mean_cost == pytest.approx((3 + 13 + 13 + 3) / 4)
    assert result.escalation_share == pytest.approx(0.5)


def test_agreement_cascade_matches_two_model() -> None:
    outcomes = cascade_outcomes()

    accuracy, mean_cost = agreement_cascade(outcomes, CASCADE_MODELS, [1.0])

    assert accuracy == pytest.approx(0.75)
    assert mean_cost == pytest.approx(8.0)


def test_agreement_cascade_four_tiers() -> None:
    models = ["t0", "t1", "t2", "t3"]
    responses: list[list[str | None]] = [
        ["A", "B", "B", "C"],  # t1 agrees with none, t2 with 1 of 2: accept t2 at 0.5
        ["A", "B", "C", "D"],  # t2 agrees with 0 of 2: run t3
        ["A", "A", "B", "C"],  # t1 agrees with t0: accept t1
    ]
    scores = [[0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0], [0.0, 1.0, 0.0, 0.0]]
    costs = [[1.0, 2.0, 4.0, 8.0]] * 3
    outcomes = make_outcomes(scores, costs, models, responses)

    accuracy, mean_cost = agreement_cascade(outcomes, models, [1.0, 0.5])

    assert accuracy == pytest.approx(1.0)
    assert mean_cost == pytest.approx((7 + 15 + 3) / 3)

    # A threshold of 1.0 at t2 needs both earlier tiers to agree, so the first item escalates.
    accuracy, mean_cost = agreement_cascade(outcomes, models, [1.0, 1.0])
    assert accuracy == pytest.approx(2 / 3)
    assert mean_cost == pytest.approx((15 + 15 + 3) / 3)


def test_agreement_cascade_two_models_runs_both() -> None:
    outcomes = cascade_outcomes()

    accuracy, mean_cost = agreement_cascade(outcomes, ["small", "medium"], [])

    assert accuracy == pytest.approx(0.5)
    assert mean_cost == pytest.approx(3.0)


def test_agreement_cascade_rejects_bad_input() -> None:
    outcomes = cascade_outcomes()

    with pytest.raises(ValueError, match="need 1 thresholds"):
        agreement_cascade(outcomes, CASCADE_MODELS, [])
    with pytest.raises(ValueError, match="at least two models"):
        agreement_cascade(outcomes, ["small"], [])
    with pytest.raises(ValueError, match="names a model twice"):
        agreement_cascade(outcomes, ["small", "small", "large"], [1.0])
    with pytest.raises(KeyError, match="huge"):
        agreement_cascade(outcomes, ["small", "medium", "huge"], [1.0])

    no_text = make_outcomes(CASCADE_SCORES, CASCADE_COSTS, CASCADE_MODELS)
    with pytest.raises(ValueError, match="no response text"):
        agreement_cascade(no_text, CASCADE_MODELS, [1.0])


def test_agreement_cascade_rejects_nan_cost() -> None:
    costs = [[1.0, math.nan, 10.0]] + [[1.0, 2.0, 10.0]] * 3
    outcomes = make_outcomes(CASCADE_SCORES, costs, CASCADE_MODELS, CASCADE_RESPONSES)

    with pytest.raises(ValueError, match="no logged cost on item '0'"):
        agreement_cascade(outcomes, CASCADE_MODELS, [1.0])


# RouterBench ARC-Challenge ----------------------------------------------------------------

ARC_FOLDER = ("routerbench_subset", "datasets", "routerbench_zs")
CHEAP_A = "mistralai/mistral-7b-chat"
CHEAP_B = "mistralai/mixtral-8x7b-chat"
EXPENSIVE = "gpt-4-1106-preview"
LAMS = [0.0, 0.01, 0.03, 0.1, 0.3, 1.0, 3.0]


def last_question(prompt: str) -> str:
    """Return the question after the few-shot examples that every ARC prompt shares.

    The shared examples come first and would fill the encoder's input window.
    """
    return prompt.rsplit("\n\n", 1)[-1]


@pytest.fixture(scope="module")
def arc_splits() -> tuple[LoggedOutcomes, LoggedOutcomes, np.ndarray, np.ndarray]:
    from shoal.models import load_encoder

    folder = shared_data_dir().joinpath(*ARC_FOLDER)
    train = load_routerbench(folder / "arc_challenge_train.csv").complete()
    test = load_routerbench(folder / "arc_challenge_test.csv").complete()
    assert len(train) + len(test) <= 1500  # keeps the embedding step to under a minute

    encoder = load_encoder("encoder:minilm").encoder
    train_embeddings = encoder.embed([last_question(prompt) for prompt in train.prompts])
    test_embeddings = encoder.embed([last_question(prompt) for prompt in test.prompts])
    return train, test, train_embeddings, test_embeddings


@pytest.mark.parametrize("router", [KnnRouter(k=10), LinearRouter(C=1.0)], ids=["knn", "linear"])
def test_arc_router_between_single_models(
    arc_splits: tuple[LoggedOutcomes, LoggedOutcomes, np.ndarray, np.ndarray],
    router: KnnRouter | LinearRouter,
) -> None:
    train, test, train_embeddings, test_embeddings = arc_splits
    accuracies = [accuracy for accuracy, _ in single_model_points(test).values()]

    curve = route_curve(router, train, test, train_embeddings, test_embeddings, LAMS)

    inside = [min(accuracies) <= accuracy <= max(accuracies) for _, accuracy, _ in curve]
    assert any(inside), f"no lam gives an accuracy between the single models: {curve}"
    costs = [mean_cost for _, _, mean_cost in curve]
    assert costs[-1] < costs[0], f"a larger lam did not lower the cost: {curve}"


def test_arc_agreement_cascade_cheaper_than_gpt4(
    arc_splits: tuple[LoggedOutcomes, LoggedOutcomes, np.ndarray, np.ndarray],
) -> None:
    _, test, _, _ = arc_splits
    points = single_model_points(test)
    _, gpt4_cost = points[EXPENSIVE]
    cheap_b_accuracy, _ = points[CHEAP_B]

    result = two_model_agreement_cascade(test, CHEAP_A, CHEAP_B, EXPENSIVE)

    assert result.mean_cost < gpt4_cost
    assert 0.0 < result.escalation_share < 1.0
    # Escalating the disagreements lifts accuracy above the better cheap model alone.
    assert result.accuracy > cheap_b_accuracy
