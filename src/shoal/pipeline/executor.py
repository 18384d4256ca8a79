"""Running a bound pipeline on one item: independent steps at once, routes to one specialist.

A step starts as soon as every step in its `after` list has finished, so steps without
an edge between them run concurrently. A route step starts the specialist it picks when it
finishes; the other specialists never run, and none runs for a label routed to null. A
step whose `after` step failed is skipped.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any

from shoal.cascade import accepts
from shoal.errors import DatasetError
from shoal.pipeline.graph import entry_steps
from shoal.pipeline.spec import PipelineSpec, StepSpec
from shoal.pipeline.step_run import BoundStep, run_step
from shoal.pipeline.trace import ItemTrace, StepRecord


def choose_route(spec: StepSpec, record: StepRecord) -> tuple[str | None, str]:
    """Return the step a route step sends the item to, and the reason.

    The step is None when the label is routed to null, which makes the label final, and
    when the step fails or its label has no route and there is no `fallback_step`.
    """
    if record.status != "ok":
        return spec.fallback_step, "failed"
    confidence = record.confidence if record.confidence is not None else 0.0
    if spec.threshold is not None and not accepts(confidence, spec.threshold):
        return spec.fallback_step, "below threshold"
    label = record.prediction
    routes = spec.routes or {}
    if isinstance(label, str) and label in routes:
        return routes[label], "label"
    return spec.fallback_step, "unrouted label"


class Pipeline:
    """A pipeline whose steps are bound to models; `run_item` runs it on one item."""

    def __init__(self, spec: PipelineSpec, steps: Mapping[str, BoundStep]) -> None:
        missing = [name for name in spec.steps if name not in steps]
        if missing:
            raise ValueError(f"step {missing[0]!r} of pipeline {spec.name!r} is not bound")
        self.spec = spec
        self.steps = dict(steps)
        self.entry_steps = entry_steps(spec.steps)

    @property
    def name(self) -> str:
        return self.spec.name

    async def run_item(self, item: Mapping[str, Any]) -> ItemTrace:
        """Run every step the item reaches; `item` maps field names to text."""
        return await _ItemRun(self, item).run()


class _ItemRun:
    """The state of one item's run: a future per step, resolved when the step is done."""

    def __init__(self, pipeline: Pipeline, item: Mapping[str, Any]) -> None:
        self.pipeline = pipeline
        self.item = item
        self.records: dict[str, StepRecord] = {}
        self.skipped: list[str] = []
        self.group: asyncio.TaskGroup | None = None
        loop = asyncio.get_running_loop()
        # None when the step was skipped. A specialist that is never picked stays unresolved,
        # and nothing waits on it, because no step may run after a specialist.
        self.done: dict[str, asyncio.Future[StepRecord | None]] = {
            name: loop.create_future() for name in pipeline.steps
        }

    async def run(self) -> ItemTrace:
        start = time.perf_counter()
        failure: BaseException | None = None
        try:
            async with asyncio.TaskGroup() as group:
                self.group = group
                for name in self.pipeline.entry_steps:
                    group.create_task(self._run_step(name))
        except BaseExceptionGroup as group_error:
            failure = _first_leaf(group_error)
        if failure is not None:
            # The first error that ended the item, raised outside the handler so that its
            # own cause is kept and the group does not become its context.
            raise failure
        order = list(self.pipeline.spec.steps)
        return ItemTrace(
            steps=[self.records[name] for name in order if name in self.records],
            skipped=[name for name in order if name in self.skipped],
            latency_s=time.perf_counter() - start,
        )

    async def _run_step(self, name: str) -> None:
        bound = self.pipeline.steps[name]
        for dependency in bound.spec.after:
            finished = await self.done[dependency]
            if finished is None or finished.status != "ok":
                self.skipped.append(name)
                self.done[name].set_result(None)
                return

        record = await run_step(bound, self._input(bound))
        if bound.spec.task == "route":
            record.routed_to, record.route_reason = choose_route(bound.spec, record)
        self.records[name] = record
        self.done[name].set_result(record)
        if record.routed_to is not None and self.group is not None:
            self.group.create_task(self._run_step(record.routed_to))

    def _input(self, bound: BoundStep) -> str:
        field = bound.spec.input
        value = self.item.get(field)
        if value is None:
            raise DatasetError(
                f"the item has no field {field!r}, which step {bound.name!r} reads; add the "
                f"field to the data or set the step's input to one of: "
                f"{', '.join(map(str, self.item)) or '(no fields)'}"
            )
        return value if isinstance(value, str) else str(value)


def _first_leaf(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error
