"""Per-item traces: what each step of a pipeline did with one item, and what it cost.

The item's cost is the sum of its steps' costs, a step's cost is the sum of its calls'
costs, and a call's cost is the sum of the costs of the cascade tiers it ran. Calls that
failed count with whatever their tiers cost before the failure. A call that raised a
provider error has no response and adds nothing, because failed HTTP attempts are not
billed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from shoal.pricing import sum_costs
from shoal.tasks.extract import Extraction
from shoal.tasks.prediction import Prediction

StepResult = Prediction | Extraction
StepStatus = Literal["ok", "failed"]


@dataclass
class CallRecord:
    """One call of a step's model or cascade: the tiers it ran and which one was accepted."""

    model: str  # the model, or the cascade's models joined by " > "
    fallback: bool  # a call of the step's fallback model
    results: list[StepResult] = field(default_factory=list)
    accepted: int | None = None  # index in `results`, or None when the call failed
    error: str | None = None

    @property
    def result(self) -> StepResult | None:
        return None if self.accepted is None else self.results[self.accepted]

    @property
    def ok(self) -> bool:
        result = self.result
        return result is not None and (not isinstance(result, Extraction) or result.valid)

    @property
    def cost_usd(self) -> Decimal:
        return sum_costs([result.cost.amount for result in self.results])

    @property
    def latency_s(self) -> float:
        return sum(result.latency_s for result in self.results)

    def to_record(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "fallback": self.fallback,
            "error": self.error,
            "cost_usd": self.cost_usd,
            "tiers": [
                result.to_step_record(accepted=index == self.accepted)
                for index, result in enumerate(self.results)
            ],
        }


@dataclass
class StepRecord:
    """A step's work on one item: every call it made and the result it settled on."""

    step: str
    task: str
    calls: list[CallRecord]
    started_at: datetime
    finished_at: datetime
    routed_to: str | None = None  # route steps: the specialist the item was sent to
    route_reason: str | None = None  # "label", "below threshold", "unrouted label", "failed"

    @property
    def final_call(self) -> CallRecord | None:
        return next((call for call in reversed(self.calls) if call.ok), None)

    @property
    def status(self) -> StepStatus:
        return "ok" if self.final_call is not None else "failed"

    @property
    def result(self) -> StepResult | None:
        call = self.final_call
        return None if call is None else call.result

    @property
    def model(self) -> str | None:
        result = self.result
        return None if result is None else result.model

    @property
    def prediction(self) -> str | dict[str, Any] | None:
        """Return the label of a classify or route step, the object of an extract step."""
        result = self.result
        if result is None:
            return None
        return result.label if isinstance(result, Prediction) else result.value

    @property
    def confidence(self) -> float | None:
        result = self.result
        return None if result is None else result.confidence

    @property
    def fallback_used(self) -> bool:
        call = self.final_call
        return call is not None and call.fallback

    @property
    def attempts(self) -> int:
        return len(self.calls)

    @property
    def error(self) -> str | None:
        if self.status == "ok" or not self.calls:
            return None
        return self.calls[-1].error

    @property
    def cost_usd(self) -> Decimal:
        return sum_costs([call.cost_usd for call in self.calls])

    @property
    def latency_s(self) -> float:
        """Return the sum of the models' measured latencies, which excludes retry waits."""
        return sum(call.latency_s for call in self.calls)

    def to_record(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "task": self.task,
            "status": self.status,
            "model": self.model,
            "prediction": self.prediction,
            "confidence": self.confidence,
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_s * 1000,
            "attempts": self.attempts,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "fallback_used": self.fallback_used,
            "routed_to": self.routed_to,
            "route_reason": self.route_reason,
            "error": self.error,
            "calls": [call.to_record() for call in self.calls],
        }


@dataclass
class ItemTrace:
    """Every step that ran on one item, in pipeline order, and the steps that were skipped."""

    steps: list[StepRecord]
    skipped: list[str]  # steps not run because a step they run after failed
    latency_s: float  # wall time of the whole item

    @property
    def cost_usd(self) -> Decimal:
        return sum_costs([step.cost_usd for step in self.steps])

    @property
    def ok(self) -> bool:
        return not self.skipped and all(step.status == "ok" for step in self.steps)

    def step(self, name: str) -> StepRecord | None:
        return next((record for record in self.steps if record.step == name), None)

    @property
    def outputs(self) -> dict[str, str | dict[str, Any] | None]:
        """Return each step's prediction by step name."""
        return {record.step: record.prediction for record in self.steps}

    def to_record(self) -> dict[str, Any]:
        return {
            "cost_usd": self.cost_usd,
            "latency_ms": self.latency_s * 1000,
            "outputs": self.outputs,
            "skipped": self.skipped,
            "steps": [step.to_record() for step in self.steps],
        }
