"""Running one step of a pipeline on one item: its cascade, its retries and its fallback."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

from shoal.cascade import accepts
from shoal.errors import BudgetExceededError, ShoalError, UserInputError
from shoal.pipeline.spec import StepSpec
from shoal.pipeline.trace import CallRecord, StepRecord, StepResult
from shoal.tasks.extract import Extraction
from shoal.tasks.prediction import ItemContext, Prediction

logger = logging.getLogger("shoal.pipeline")


class PipelineStep(Protocol):
    """A model bound to a task: a classify step returns a Prediction, an extract step an
    Extraction. `shoal.tasks.classify.Step` and `shoal.tasks.extract.ExtractStep` fit."""

    model: str

    async def predict(self, item: ItemContext) -> StepResult: ...


@dataclass(frozen=True)
class StepTier:
    """A bound step and the confidence at which its result is accepted (None: always)."""

    step: PipelineStep
    threshold: float | None = None


@dataclass(frozen=True)
class BoundStep:
    """A step of the pipeline with its model (or cascade) and its fallback bound to steps."""

    name: str
    spec: StepSpec
    tiers: list[StepTier]
    fallback: PipelineStep | None = None


async def run_step(bound: BoundStep, text: str) -> StepRecord:
    """Call the step's model up to 1 + retries times, then its fallback as often.

    A call that raises a ShoalError is tried again. A call whose accepted extraction is
    invalid goes straight to the fallback, because the extract step has already asked the
    model for corrected replies. UserInputError and BudgetExceededError end the run, since
    another call cannot fix them.
    """
    started_at = datetime.now(UTC)
    calls: list[CallRecord] = []
    plans = [(bound.tiers, False)]
    if bound.fallback is not None:
        plans.append(([StepTier(bound.fallback)], True))

    for tiers, is_fallback in plans:
        for _ in range(1 + bound.spec.retries):
            call = await call_tiers(tiers, text, fallback=is_fallback)
            calls.append(call)
            if call.ok:
                return StepRecord(bound.name, bound.spec.task, calls, started_at, _now())
            logger.info("step %s: call of %s failed: %s", bound.name, call.model, call.error)
            if call.result is not None:
                break  # an invalid extraction: its step already retried with the errors shown

    logger.warning("step %s failed after %d calls", bound.name, len(calls))
    return StepRecord(bound.name, bound.spec.task, calls, started_at, _now())


async def call_tiers(tiers: list[StepTier], text: str, *, fallback: bool) -> CallRecord:
    """Run a cascade once: each tier in turn until one's confidence reaches its threshold.

    The last tier is accepted whatever its confidence. Each tier receives the predictions
    of the tiers before it, as in `shoal.cascade.Cascade`.
    """
    call = CallRecord(model=" > ".join(tier.step.model for tier in tiers), fallback=fallback)
    context = ItemContext(text=text)
    last = len(tiers) - 1
    for index, tier in enumerate(tiers):
        try:
            result = await tier.step.predict(context)
        except (UserInputError, BudgetExceededError):
            raise
        except ShoalError as exc:
            # NOTE: a reply that was billed but then raised (an unparsable letter, a model
            # without a price) adds no cost here, because the error carries no response.
            call.error = f"{tier.step.model}: {exc}"
            return call
        call.results.append(result)
        if isinstance(result, Prediction):
            context.predictions.append(result)
        if index == last or accepts(result.confidence, tier.threshold):
            call.accepted = index
            break
    if not call.ok:
        call.error = _invalid_message(call.result)
    return call


def _invalid_message(result: StepResult | None) -> str:
    first = result.errors[0] if isinstance(result, Extraction) and result.errors else "no detail"
    model = result.model if result is not None else "the step"
    return f"{model}: the reply does not validate against the schema ({first})"


def _now() -> datetime:
    return datetime.now(UTC)
