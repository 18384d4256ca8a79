"""Calibrators that map a confidence signal to the probability that the prediction is correct.

Each calibrator is fitted on pairs of (score, correct) where `correct` is 1 when the model's
prediction was right and 0 when it was wrong. All share `fit(scores, correct) -> self` and
`predict(scores) -> calibrated probabilities`.
"""

from __future__ import annotations

from typing import Literal, Protocol, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

ScoreKind = Literal["probability", "logit"]

# Probabilities are clipped to [EPSILON, 1 - EPSILON] before taking logits, so a confidence
# of exactly 0 or 1 gives a large finite logit instead of infinity.
EPSILON = 1e-12


class Calibrator(Protocol):
    """The interface shared by the calibrators in this module."""

    def fit(self, scores: ArrayLike, correct: ArrayLike) -> Self: ...

    def predict(self, scores: ArrayLike) -> NDArray[np.float64]: ...


def as_scores(scores: ArrayLike, name: str = "scores") -> NDArray[np.float64]:
    """Convert `scores` to a finite 1-D float array, raising ValueError otherwise."""
    array = np.asarray(scores, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} contains NaN or infinite values")
    return array


def as_probabilities(values: ArrayLike, name: str = "confidence") -> NDArray[np.float64]:
    """Convert `values` to a 1-D float array in [0, 1], raising ValueError otherwise."""
    array = as_scores(values, name)
    if array.size and (array.min() < 0.0 or array.max() > 1.0):
        raise ValueError(
            f"{name} must lie in [0, 1], got values from {array.min():g} to {array.max():g}"
        )
    return array


def as_correct(correct: ArrayLike, name: str = "correct") -> NDArray[np.int64]:
    """Convert `correct` to a 1-D array of 0/1 integers (booleans are accepted)."""
    array = np.asarray(correct)
    if array.ndim != 1:
        raise ValueError(f"{name} must be a 1-D array, got shape {array.shape}")
    if array.dtype == np.bool_:
        return array.astype(np.int64)
    numeric = array.astype(np.float64)
    if not np.all(np.isin(numeric, (0.0, 1.0))):
        invalid = numeric[~np.isin(numeric, (0.0, 1.0))]
        raise ValueError(f"{name} must contain only 0 and 1, found {invalid[0]!r}")
    return numeric.astype(np.int64)


def check_pairs(
    scores: NDArray[np.float64],
    correct: NDArray[np.int64],
    *,
    need_both_classes: bool,
    scores_name: str = "scores",
) -> None:
    """Raise ValueError unless the arrays match in length, have 2+ items and, if needed, both classes."""
    if scores.shape[0] != correct.shape[0]:
        raise ValueError(
            f"{scores_name} and correct must have the same length, "
            f"got {scores.shape[0]} and {correct.shape[0]}"
        )
    if scores.shape[0] < 2:
        raise ValueError(f"at least 2 items are needed to fit, got {scores.shape[0]}")
    if need_both_classes and np.unique(correct).size < 2:
        raise ValueError(
            "correct must contain both 0 and 1 to fit this calibrator, "
            f"but every item is {int(correct[0])}"
        )


def to_logits(scores: ArrayLike, score_kind: ScoreKind) -> NDArray[np.float64]:
    """Return logits: probabilities are clipped and mapped through log(p / (1 - p))."""
    if score_kind == "logit":
        return as_scores(scores)
    if score_kind == "probability":
        probabilities = as_probabilities(scores, "scores")
        return logit(np.clip(probabilities, EPSILON, 1.0 - EPSILON))
    raise ValueError(f"score_kind must be 'probability' or 'logit', got {score_kind!r}")


def raise_if_unfitted(calibrator: object, fitted: bool) -> None:
    if not fitted:
        raise RuntimeError(f"{type(calibrator).__name__} is not fitted; call fit() first")


class TemperatureScaling:
    """Temperature scaling of the predicted class's logit: p = sigmoid(z / T).

    `z` is the logit of the predicted class's confidence. With `score_kind="probability"`
    the scores are confidences in [0, 1] and are converted with z = log(p / (1 - p)).
    The temperature T > 0 minimises the negative log-likelihood of `correct` under
    Bernoulli(sigmoid(z / T)). T > 1 softens overconfident scores and T < 1 sharpens them.
    """

    def __init__(
        self,
        score_kind: ScoreKind = "probability",
        bounds: tuple[float, float] = (1e-2, 1e2),
    ) -> None:
        if score_kind not in ("probability", "logit"):
            raise ValueError(f"score_kind must be 'probability' or 'logit', got {score_kind!r}")
        low, high = bounds
        if not 0.0 < low < high:
            raise ValueError(f"bounds must satisfy 0 < low < high, got {bounds!r}")
        self.score_kind: ScoreKind = score_kind
        self.bounds = (float(low), float(high))
        self.temperature: float | None = None

    def fit(self, scores: ArrayLike, correct: ArrayLike) -> Self:
        logits = to_logits(scores, self.score_kind)
        labels = as_correct(correct)
        check_pairs(logits, labels, need_both_classes=True)
        signs = np.where(labels == 1, 1.0, -1.0)

        def negative_log_likelihood(log_temperature: float) -> float:
            # log P(observed label) = log_sigmoid(+z/T) if correct, log_sigmoid(-z/T) if wrong.
            scaled = signs * logits / np.exp(log_temperature)
            return float(-np.sum(log_expit(scaled)))

        # Searching over log T keeps the optimiser on a scale where 0.5 and 2 are equally far.
        low, high = np.log(self.bounds[0]), np.log(self.bounds[1])
        result = minimize_scalar(
            negative_log_likelihood, bounds=(low, high), method="bounded",
            options={"xatol": 1e-8},
        )
        self.temperature = float(np.exp(result.x))
        return self

    def predict(self, scores: ArrayLike) -> NDArray[np.float64]:
        raise_if_unfitted(self, self.temperature is not None)
        assert self.temperature is not None
        return expit(to_logits(scores, self.score_kind) / self.temperature)


class PlattScaling:
    """Platt scaling: p = sigmoid(a * score + b), fitted by unpenalised logistic regression.

    The score is used as given (a probability, a logit or any real-valued confidence).
    """

    def __init__(self) -> None:
        self.model: LogisticRegression | None = None

    @property
    def slope(self) -> float:
        raise_if_unfitted(self, self.model is not None)
        assert self.model is not None
        return float(self.model.coef_[0, 0])

    @property
    def intercept(self) -> float:
        raise_if_unfitted(self, self.model is not None)
        assert self.model is not None
        return float(self.model.intercept_[0])

    def fit(self, scores: ArrayLike, correct: ArrayLike) -> Self:
        values = as_scores(scores)
        labels = as_correct(correct)
        check_pairs(values, labels, need_both_classes=True)
        # C=inf turns off the L2 penalty, which would otherwise shrink the slope toward 0.
        model = LogisticRegression(C=np.inf)
        model.fit(values.reshape(-1, 1), labels)
        self.model = model
        return self

    def predict(self, scores: ArrayLike) -> NDArray[np.float64]:
        raise_if_unfitted(self, self.model is not None)
        assert self.model is not None
        values = as_scores(scores)
        return self.model.predict_proba(values.reshape(-1, 1))[:, 1]


class IsotonicCalibration:
    """Isotonic regression of `correct` on the score: a non-decreasing step function.

    Predictions lie in [0, 1], and scores outside the fitted range are clipped to its ends.
    A single class is allowed, in which case every prediction is that class's value.
    """

    def __init__(self) -> None:
        self.model: IsotonicRegression | None = None

    def fit(self, scores: ArrayLike, correct: ArrayLike) -> Self:
        values = as_scores(scores)
        labels = as_correct(correct)
        check_pairs(values, labels, need_both_classes=False)
        model = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        model.fit(values, labels.astype(np.float64))
        self.model = model
        return self

    def predict(self, scores: ArrayLike) -> NDArray[np.float64]:
        raise_if_unfitted(self, self.model is not None)
        assert self.model is not None
        return np.asarray(self.model.predict(as_scores(scores)), dtype=np.float64)
