"""The thresholds file that `shoal calibrate` writes, and building a cascade from it.

The file is JSON, validated strictly on load (unknown keys are rejected):

    {"schema_version": 1,
     "tiers": [{"model": "encoder:minilm", "threshold": 0.41, "calibrated_threshold": 0.83},
               {"model": "openai:gpt-4o-mini", "threshold": null, "model_weight": 1.0}],
     "threshold_units": "raw_confidence",
     "method": {"name": "target", "target_accuracy": 0.9},
     "calibrator": {"name": "isotonic", "x": [...], "y": [...]},
     "calibration": {"fit_share": 0.5, "seed": 0, "fit_items": 50, "evaluation_items": 50,
                     "ece_bins": 15, "ece_before": 0.12, "ece_after": 0.04},
     "figures": {"n": 50, "accuracy": 0.92, "mean_cost_usd": 1.2e-05, ...},
     "guarantee": null,
     "source": "/runs/a/records.jsonl",
     "created_at": "2026-01-01T00:00:00Z"}

Tier 0's `threshold` is in raw confidence units: tier 0 accepts an item when its raw
confidence is >= the threshold, and the string "Infinity" means it escalates every item.
`calibrated_threshold` is the same cut in calibrated units. Every calibrator here is
non-decreasing, so the two accept the same items, and a live cascade needs no calibrator.
The calibrator's parameters are kept so that calibrated confidences can be recomputed.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from scipy.special import expit

from shoal.calibration.calibrators import TemperatureScaling, as_scores
from shoal.cascade.core import Cascade, Tier
from shoal.errors import UserInputError
from shoal.tasks.classify import CandidateStep, EncoderStep

SCHEMA_VERSION = 1
THRESHOLD_UNITS = "raw_confidence"


class _Strict(BaseModel):
    # "Infinity" is written as a JSON string, because JSON has no infinite number.
    model_config = ConfigDict(extra="forbid", frozen=True, ser_json_inf_nan="strings")


class NoCalibrator(_Strict):
    """Raw confidence used as is."""

    name: Literal["none"] = "none"

    def apply(self, confidence: ArrayLike) -> NDArray[np.float64]:
        return as_scores(confidence, "confidence")


class TemperatureCalibrator(_Strict):
    """Temperature scaling: sigmoid(logit(p) / temperature), as TemperatureScaling computes."""

    name: Literal["temperature"] = "temperature"
    temperature: float = Field(gt=0.0, allow_inf_nan=False)

    def apply(self, confidence: ArrayLike) -> NDArray[np.float64]:
        scaling = TemperatureScaling(score_kind="probability")
        scaling.temperature = self.temperature
        return scaling.predict(confidence)


class PlattCalibrator(_Strict):
    """Platt scaling: sigmoid(slope * p + intercept), with slope > 0 so it is increasing."""

    name: Literal["platt"] = "platt"
    slope: float = Field(gt=0.0, allow_inf_nan=False)
    intercept: float = Field(allow_inf_nan=False)

    def apply(self, confidence: ArrayLike) -> NDArray[np.float64]:
        return expit(self.slope * as_scores(confidence, "confidence") + self.intercept)


class IsotonicCalibrator(_Strict):
    """Isotonic regression as its breakpoints, linear between them and flat outside them.

    This is how scikit-learn's IsotonicRegression(out_of_bounds="clip") predicts.
    """

    name: Literal["isotonic"] = "isotonic"
    x: list[Annotated[float, Field(allow_inf_nan=False)]] = Field(min_length=1)
    y: list[Annotated[float, Field(ge=0.0, le=1.0)]] = Field(min_length=1)

    @model_validator(mode="after")
    def _check_breakpoints(self) -> IsotonicCalibrator:
        if len(self.x) != len(self.y):
            raise ValueError(f"x and y must have the same length, got {len(self.x)} and {len(self.y)}")
        if np.any(np.diff(self.x) < 0) or np.any(np.diff(self.y) < 0):
            raise ValueError("x and y must both be non-decreasing")
        return self

    def apply(self, confidence: ArrayLike) -> NDArray[np.float64]:
        return np.interp(as_scores(confidence, "confidence"), self.x, self.y)


CalibratorParameters = Annotated[
    NoCalibrator | TemperatureCalibrator | PlattCalibrator | IsotonicCalibrator,
    Field(discriminator="name"),
]


class TierEntry(_Strict):
    """One tier: its model, and its raw-confidence threshold (None on the last tier)."""

    model: str = Field(min_length=1)
    threshold: float | None = None
    calibrated_threshold: float | None = None
    model_weight: float | None = Field(default=None, ge=0.0, le=1.0)


class MethodEntry(_Strict):
    """The threshold selection method and its parameters."""

    name: Literal["target", "budget", "guarantee"]
    target_accuracy: float | None = Field(default=None, ge=0.0, le=1.0)
    budget_usd_per_item: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    delta: float | None = Field(default=None, gt=0.0, lt=1.0)

    @model_validator(mode="after")
    def _check_parameters(self) -> MethodEntry:
        needed = {
            "target": ("target_accuracy",),
            "budget": ("budget_usd_per_item",),
            "guarantee": ("target_accuracy", "delta"),
        }[self.name]
        for key in ("target_accuracy", "budget_usd_per_item", "delta"):
            given = getattr(self, key) is not None
            if given != (key in needed):
                state = "needs" if key in needed else "takes no"
                raise ValueError(f"method {self.name!r} {state} {key}")
        return self


class CalibrationEntry(_Strict):
    """The calibrator's fit split and its expected calibration error on held-out items."""

    fit_share: float | None = Field(ge=0.0, le=1.0)  # None when no calibrator was fitted
    seed: int
    fit_items: int = Field(ge=0)
    evaluation_items: int = Field(ge=1)
    ece_bins: int = Field(ge=1)
    ece_before: float
    ece_after: float


class FiguresEntry(_Strict):
    """The two-tier cascade with the saved threshold, on the evaluation items."""

    n: int = Field(ge=1)
    accuracy: float
    mean_cost_usd: float
    accepted_share: float  # share of items tier 0 accepted
    tier0_accuracy: float  # tier 0 alone
    tier1_accuracy: float  # the escalation model alone
    cached_escalation_steps: int = Field(ge=0)  # recorded at $0, so costs read low when > 0


class SavedThresholds(_Strict):
    """A thresholds file: a two-tier cascade's threshold and how it was chosen."""

    schema_version: Literal[1]
    tiers: list[TierEntry] = Field(min_length=2, max_length=2)
    threshold_units: Literal["raw_confidence"]
    method: MethodEntry
    calibrator: CalibratorParameters
    calibration: CalibrationEntry
    figures: FiguresEntry
    guarantee: str | None = None
    source: str
    created_at: datetime

    @model_validator(mode="after")
    def _check_tiers(self) -> SavedThresholds:
        first, last = self.tiers
        if first.threshold is None or not (
            0.0 <= first.threshold <= 1.0 or first.threshold == math.inf
        ):
            raise ValueError("tiers[0].threshold must be a confidence in [0, 1] or 'Infinity'")
        if last.threshold is not None:
            raise ValueError("tiers[1].threshold must be null, because the last tier accepts all")
        return self

    @property
    def models(self) -> list[str]:
        return [tier.model for tier in self.tiers]

    @property
    def threshold(self) -> float:
        """Tier 0's threshold in raw confidence units. math.inf escalates every item."""
        assert self.tiers[0].threshold is not None  # checked on load
        return self.tiers[0].threshold

    @property
    def model_weight(self) -> float:
        """The escalation model's share in its mixed probabilities (1.0: the model alone)."""
        weight = self.tiers[1].model_weight
        return 1.0 if weight is None else weight

    def calibrate(self, confidence: ArrayLike) -> NDArray[np.float64]:
        """Map raw tier-0 confidences through the saved calibrator."""
        return self.calibrator.apply(confidence)

    def check_models(
        self, tier0_model: str, escalation_models: list[str], path: Path | None = None
    ) -> None:
        """Raise UserInputError unless the cascade's models are the ones the file was fitted for."""
        cascade_models = [tier0_model, *escalation_models]
        if cascade_models != self.models:
            source = f"thresholds file {path}" if path is not None else "the thresholds"
            raise UserInputError(
                f"{source} fitted for {' -> '.join(self.models)} cannot be used for the "
                f"cascade {' -> '.join(cascade_models)}; use tier 0 {self.models[0]} and the single "
                f"escalation model {self.models[1]}, or calibrate a run of these models"
            )


THRESHOLDS_NAME = "thresholds.json"


def save_thresholds(saved: SavedThresholds, path: Path) -> Path:
    """Write `saved` as indented JSON and return the path written.

    An existing folder gets the file `thresholds.json` inside it. A path that cannot be
    written raises UserInputError.
    """
    if path.is_dir():
        path = path / THRESHOLDS_NAME
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(saved.model_dump_json(indent=2) + "\n", encoding="utf-8")
    except OSError as error:
        raise UserInputError(
            f"cannot write the thresholds file {path}: {error.strerror or error}; "
            "give a writable file path or folder"
        ) from None
    return path


def load_thresholds(path: str | Path) -> SavedThresholds:
    """Read and validate a thresholds file, raising UserInputError that names the problem."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(
            f"thresholds file not found: {path}; write one with `shoal calibrate RUN`"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserInputError(
            f"thresholds file {path} is not valid JSON ({exc}); write it again with "
            "`shoal calibrate RUN`"
        ) from exc
    try:
        return SavedThresholds.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(str(part) for part in error["loc"]) or "the top level"
        raise UserInputError(
            f"invalid thresholds file {path}: {where}: {error['msg']}; write it again with "
            "`shoal calibrate RUN`"
        ) from exc


def cascade_from_thresholds(
    saved: SavedThresholds,
    encoder_step: EncoderStep,
    escalation_step: CandidateStep,
    path: Path | None = None,
) -> Cascade:
    """Build the two-tier cascade a thresholds file describes from the caller's steps.

    The steps' models must be the file's. The escalation step's model weight is set to the
    saved one, because the threshold was chosen for the model's predictions with that weight.
    """
    saved.check_models(encoder_step.model, [escalation_step.model], path)
    escalation_step.model_weight = saved.model_weight
    return Cascade([Tier(encoder_step, saved.threshold), Tier(escalation_step)])
