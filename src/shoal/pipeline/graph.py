"""Checks of the edges between a pipeline's steps, and the order they give.

A step runs after the steps in its `after` list; a specialist runs after the route step
that picked it, and only then. The rules, each checked here:

- every name in `after`, `routes` and `fallback_step` is a step of the pipeline;
- a specialist belongs to exactly one route step, because it runs only when that route
  step picks it (one route step may send several labels, and its fallback, to it);
- no step runs `after` a specialist, because a specialist that is not picked never
  finishes;
- the edges have no cycle.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shoal.pipeline.spec import StepSpec

STEP_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def check_graph(steps: Mapping[str, StepSpec]) -> None:
    """Raise SpecError, located at the key at fault, for a pipeline whose edges break a rule."""
    from shoal.pipeline.spec import SpecError

    for name in steps:
        if not STEP_NAME.fullmatch(name):
            raise SpecError(
                ("steps", name),
                f"invalid step name {name!r}; use letters, digits, '_' and '-', starting "
                "with a letter or '_'",
            )
    _check_references(steps)
    owners = specialist_owners(steps)
    for name, step in steps.items():
        for index, dependency in enumerate(step.after):
            if dependency in owners:
                raise SpecError(
                    ("steps", name, "after", index),
                    f"step {dependency!r} runs only when route step {owners[dependency]!r} "
                    "picks it, so no step can run after it",
                )
    cycle = find_cycle(steps)
    if cycle:
        raise SpecError(
            _edge_key(steps, cycle[-2], cycle[-1]),
            f"the steps form a cycle: {' -> '.join(cycle)}; remove one of its edges",
        )


def _edge_key(steps: Mapping[str, StepSpec], first: str, then: str) -> tuple[str | int, ...]:
    """Return the key that makes step `then` follow step `first`."""
    if first in steps[then].after:
        return ("steps", then, "after", steps[then].after.index(first))
    return ("steps", first, *_route_key(steps[first], then))


def _check_references(steps: Mapping[str, StepSpec]) -> None:
    from shoal.pipeline.spec import SpecError

    known = ", ".join(steps)
    for name, step in steps.items():
        references: list[tuple[tuple[str | int, ...], str]] = [
            (("after", index), dependency) for index, dependency in enumerate(step.after)
        ]
        references += [
            (("routes", label), target)
            for label, target in (step.routes or {}).items()
            if target is not None  # a null route: the route step's label is final
        ]
        if step.fallback_step is not None:
            references.append((("fallback_step",), step.fallback_step))
        for key, target in references:
            if target not in steps:
                raise SpecError(
                    ("steps", name, *key),
                    f"unknown step {target!r}; the steps are: {known}",
                )
            if target == name:
                raise SpecError(("steps", name, *key), "a step cannot refer to itself")


def specialist_owners(steps: Mapping[str, StepSpec]) -> dict[str, str]:
    """Map each specialist to its route step. Raise SpecError if two route steps share one."""
    from shoal.pipeline.spec import SpecError

    owners: dict[str, str] = {}
    for name, step in steps.items():
        if step.task != "route":
            continue
        for target in step.specialists:
            if owners.get(target, name) != name:
                raise SpecError(
                    ("steps", name, *_route_key(step, target)),
                    f"step {target!r} is already a specialist of route step "
                    f"{owners[target]!r}; a specialist belongs to one route step, so "
                    "define a copy of it under another name",
                )
            owners[target] = name
    return owners


def _route_key(step: StepSpec, target: str) -> tuple[str, ...]:
    for label, routed in (step.routes or {}).items():
        if routed == target:
            return ("routes", label)
    return ("fallback_step",)


def entry_steps(steps: Mapping[str, StepSpec]) -> list[str]:
    """Return the steps that start without being picked by a route step, in file order."""
    owners = specialist_owners(steps)
    return [name for name in steps if name not in owners]


def find_cycle(steps: Mapping[str, StepSpec]) -> list[str]:
    """Return a cycle of `after` and route edges as [a, b, ..., a], or [] when there is none."""
    followers: dict[str, list[str]] = {name: [] for name in steps}
    for name, step in steps.items():
        for dependency in step.after:
            followers[dependency].append(name)
        followers[name].extend(step.specialists)

    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(name: str) -> list[str]:
        state[name] = "open"
        path.append(name)
        for follower in followers[name]:
            if state.get(follower) == "open":
                return [*path[path.index(follower):], follower]
            if follower not in state:
                cycle = visit(follower)
                if cycle:
                    return cycle
        path.pop()
        state[name] = "done"
        return []

    for name in steps:
        if name not in state:
            cycle = visit(name)
            if cycle:
                return cycle
    return []
