"""Learned routers that predict each model's score from a prompt embedding.

The two routers are simple baselines of the kind RouterBench reports. A router is fitted on
the train split's embeddings and scores, predicts a score per model for each test prompt,
and the routing rule picks, per prompt, the model with the best predicted score net of a cost
penalty. `route_curve` sweeps the penalty weight `lam` to trace an accuracy-cost curve, scored
with the test split's logged scores and costs.

Embeddings are computed by the caller, so one set serves several routers, for example with
`load_encoder("encoder:minilm").encoder.embed(texts)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from sklearn.linear_model import LogisticRegression

from shoal.simulate.outcomes import LoggedOutcomes


class Router(Protocol):
    """A model of each model's score given a prompt embedding."""

    def fit(self, embeddings: np.ndarray, scores: np.ndarray) -> Router: ...

    def predict(self, embeddings: np.ndarray) -> np.ndarray: ...


class KnnRouter:
    """Predict a model's score as its mean score on the `k` most similar train prompts.

    Similarity is the cosine of the embeddings. A train score that is NaN is left out of the
    mean, and a model with no known score among the neighbours is predicted as 0.
    """

    def __init__(self, k: int = 10) -> None:
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        self.k = k
        self._train_embeddings: np.ndarray | None = None
        self._train_scores: np.ndarray | None = None

    def fit(self, embeddings: np.ndarray, scores: np.ndarray) -> KnnRouter:
        """Store the normalised train embeddings [n, dim] and scores [n, models]."""
        embeddings, scores = _check_train(embeddings, scores)
        self._train_embeddings = _normalise_rows(embeddings)
        self._train_scores = scores
        return self

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Return the predicted scores [n, models] for the embeddings [n, dim]."""
        if self._train_embeddings is None or self._train_scores is None:
            raise RuntimeError("KnnRouter.predict called before fit; call fit first")
        queries = _normalise_rows(_check_embeddings(embeddings, self._train_embeddings.shape[1]))
        similarity = queries @ self._train_embeddings.T
        k = min(self.k, similarity.shape[1])
        # Indices of the k largest similarities per row, in no particular order.
        neighbours = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        neighbour_scores = self._train_scores[neighbours]  # [n, k, models]
        known = ~np.isnan(neighbour_scores)
        totals = np.where(known, neighbour_scores, 0.0).sum(axis=1)
        counts = known.sum(axis=1)
        return np.divide(totals, counts, out=np.zeros_like(totals), where=counts > 0)


class LinearRouter:
    """Predict each model's score with its own logistic regression on the embedding.

    A fractional score s in [0, 1] is fitted as a correct example with weight s plus an
    incorrect one with weight 1 - s, so binary scores fit as usual. Train rows with a NaN
    score are left out for that model. A model whose known train scores are all 1 or all 0
    (or which has none) is predicted as that constant (0 when it has none).
    """

    def __init__(self, C: float = 1.0, max_iter: int = 1000) -> None:
        if C <= 0:
            raise ValueError(f"C must be positive, got {C}")
        self.C = C
        self.max_iter = max_iter
        self._dim: int | None = None
        # Per model: a fitted classifier, or the constant score to predict.
        self._per_model: list[LogisticRegression | float] = []

    def fit(self, embeddings: np.ndarray, scores: np.ndarray) -> LinearRouter:
        """Fit one classifier per model on the embeddings [n, dim] and scores [n, models]."""
        embeddings, scores = _check_train(embeddings, scores)
        self._dim = embeddings.shape[1]
        self._per_model = [
            self._fit_model(embeddings, scores[:, column]) for column in range(scores.shape[1])
        ]
        return self

    def _fit_model(self, embeddings: np.ndarray, scores: np.ndarray) -> LogisticRegression | float:
        known = ~np.isnan(scores)
        features = embeddings[known]
        targets = scores[known]
        if targets.size == 0:
            return 0.0
        if np.all(targets == targets[0]) and targets[0] in (0.0, 1.0):
            return float(targets[0])

        stacked = np.vstack([features, features])
        labels = np.concatenate([np.ones(len(targets)), np.zeros(len(targets))])
        weights = np.concatenate([targets, 1.0 - targets])
        used = weights > 0
        classifier = LogisticRegression(C=self.C, max_iter=self.max_iter)
        classifier.fit(stacked[used], labels[used], sample_weight=weights[used])
        return classifier

    def predict(self, embeddings: np.ndarray) -> np.ndarray:
        """Return the predicted probability that each model is correct [n, models]."""
        if self._dim is None:
            raise RuntimeError("LinearRouter.predict called before fit; call fit first")
        embeddings = _check_embeddings(embeddings, self._dim)
        columns = []
        for model in self._per_model:
            if isinstance(model, LogisticRegression):
                correct = list(model.classes_).index(1.0)
                columns.append(model.predict_proba(embeddings)[:, correct])
            else:
                columns.append(np.full(len(embeddings), model))
        return np.column_stack(columns)


def model_costs(outcomes: LoggedOutcomes) -> np.ndarray:
    """Return each model's mean cost per item in USD, ignoring NaN costs.

    Raises ValueError naming a model that has no known cost.
    """
    unknown = np.isnan(outcomes.costs).all(axis=0)
    if unknown.any():
        model = outcomes.models[int(np.flatnonzero(unknown)[0])]
        raise ValueError(f"model {model!r} has no known cost in {outcomes.source}; add its costs")
    return np.nanmean(outcomes.costs, axis=0)


def choose_models(
    predicted: np.ndarray, costs: np.ndarray, lam: float, cost_scale: float
) -> np.ndarray:
    """Return, per row, the column index that maximises predicted - lam * costs / cost_scale.

    `predicted` is [n, models] and `costs` is one cost per model. Ties go to the lower index.
    """
    utility = predicted - lam * np.asarray(costs, dtype=float)[None, :] / cost_scale
    return np.argmax(utility, axis=1)


def route_curve(
    router: Router,
    train: LoggedOutcomes,
    test: LoggedOutcomes,
    train_embeddings: np.ndarray,
    test_embeddings: np.ndarray,
    lams: Sequence[float],
) -> list[tuple[float, float, float]]:
    """Fit `router` on train, route every test item at each `lam`, and score the choices.

    The cost penalty of a model is its mean cost per item on the train split, because the cost
    of one call is not known before the call. `cost_scale` is the largest of those means, so at
    `lam` = 1 the most expensive model loses one unit of predicted score, and larger `lam`
    values favour cheaper models. Returns (lam, accuracy, mean_cost) per `lam`, where accuracy is
    the mean logged test score of the chosen models and mean_cost their mean logged test cost
    in USD per item.

    Raises ValueError when train and test name different models, when an embedding array does
    not have one row per item, or when a chosen test score or cost is NaN (call `complete()`).
    """
    if train.models != test.models:
        raise ValueError(
            f"train models {train.models} differ from test models {test.models}; "
            "use `subset` to give both splits the same models in the same order"
        )
    for name, outcomes, embeddings in (
        ("train", train, train_embeddings),
        ("test", test, test_embeddings),
    ):
        if len(embeddings) != len(outcomes):
            raise ValueError(
                f"{name}_embeddings has {len(embeddings)} rows for {len(outcomes)} {name} items"
            )

    router.fit(train_embeddings, train.scores)
    predicted = router.predict(test_embeddings)
    costs = model_costs(train)
    cost_scale = float(costs.max()) or 1.0  # every model free: the penalty is zero anyway
    rows = np.arange(len(test))

    curve = []
    for lam in lams:
        chosen = choose_models(predicted, costs, lam, cost_scale)
        scores = test.scores[rows, chosen]
        spent = test.costs[rows, chosen]
        if np.isnan(scores).any() or np.isnan(spent).any():
            raise ValueError(
                f"a chosen model has no logged score or cost on some test items of "
                f"{test.source}; call `complete()` on the test split first"
            )
        curve.append((float(lam), float(scores.mean()), float(spent.mean())))
    return curve


def single_model_points(outcomes: LoggedOutcomes) -> dict[str, tuple[float, float]]:
    """Return (accuracy, mean_cost) per model on `outcomes`, ignoring NaN cells."""
    return {
        model: (
            float(np.nanmean(outcomes.scores[:, column])),
            float(np.nanmean(outcomes.costs[:, column])),
        )
        for column, model in enumerate(outcomes.models)
    }


def _check_train(embeddings: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    embeddings = np.asarray(embeddings, dtype=float)
    scores = np.asarray(scores, dtype=float)
    if embeddings.ndim != 2 or scores.ndim != 2:
        raise ValueError(
            f"expected embeddings [n, dim] and scores [n, models], got shapes "
            f"{embeddings.shape} and {scores.shape}"
        )
    if len(embeddings) != len(scores):
        raise ValueError(f"{len(embeddings)} embeddings for {len(scores)} rows of scores")
    if len(embeddings) == 0:
        raise ValueError("no train items; fit needs at least one")
    return embeddings, scores


def _check_embeddings(embeddings: np.ndarray, dim: int) -> np.ndarray:
    embeddings = np.asarray(embeddings, dtype=float)
    if embeddings.ndim != 2 or embeddings.shape[1] != dim:
        raise ValueError(f"expected embeddings of shape [n, {dim}], got {embeddings.shape}")
    return embeddings


def _normalise_rows(embeddings: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(embeddings, axis=1, keepdims=True)
    return embeddings / np.where(norms > 0, norms, 1.0)
