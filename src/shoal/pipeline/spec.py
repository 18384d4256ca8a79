"""The pipeline specification: steps, their models, and the edges between them.

The same pydantic models validate a YAML file (see `shoal.pipeline.yaml_loader`) and a
pipeline built in Python. Unknown keys are rejected, and numbers, strings and lists must
have their YAML type (`retries: "2"` or `labels: [yes, no]` unquoted are errors).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictFloat,
    StrictInt,
    StrictStr,
    field_validator,
    model_validator,
)

from shoal.errors import UserInputError
from shoal.models import parse_model

Task = Literal["classify", "route", "extract"]


class SpecError(ValueError):
    """A problem found by a validator, with the key it is about relative to the model."""

    def __init__(self, key: tuple[str | int, ...], message: str) -> None:
        super().__init__(message)
        self.key = key


def check_model_name(name: str) -> str:
    """Check that `name` is `provider:id` with a known provider."""
    try:
        parse_model(name)
    except UserInputError as exc:
        raise ValueError(str(exc)) from None
    return name


class TierSpec(BaseModel):
    """One tier of a step's cascade: a model, and the confidence at which it is accepted."""

    model_config = ConfigDict(extra="forbid")

    model: StrictStr
    # None on the last tier, which accepts every item it receives.
    threshold: StrictFloat | None = Field(default=None, ge=0.0, le=1.0)

    @field_validator("model")
    @classmethod
    def _check_model(cls, name: str) -> str:
        return check_model_name(name)


class StepSpec(BaseModel):
    """A task bound to a model or a cascade, with its retries, fallback and edges.

    `retries` is how many more calls of the model a failed call gets: a provider error or
    an unparsable reply. An extract step also requests up to `retries` corrected replies
    when a reply does not validate against its schema, showing the model the errors.
    When the calls of the model (or cascade) all fail, `fallback` is called the same
    number of times.

    A route step sends the item to one specialist: `routes[label]` when its confidence
    reaches `threshold`, else `fallback_step`. A route step that fails, or predicts a label
    without a route, also sends the item to `fallback_step`. A label routed to null sends the
    item nowhere, so the route step's label is the item's final label (such as "out of
    scope").

    `gold` names the dataset column that the step's prediction is scored against, and that
    trains an encoder model on the step (see `shoal.pipeline.train`).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    task: Task
    model: StrictStr | None = None
    cascade: list[TierSpec] | None = Field(default=None, min_length=1)
    labels: list[StrictStr] | None = None
    json_schema: dict[str, Any] | None = Field(default=None, alias="schema")
    schema_file: StrictStr | None = None
    instructions: StrictStr | None = None
    retries: StrictInt = Field(default=1, ge=0)
    fallback: StrictStr | None = None
    input: StrictStr = Field(default="text", min_length=1)
    after: list[StrictStr] = Field(default_factory=list)
    routes: dict[StrictStr, StrictStr | None] | None = None
    threshold: StrictFloat | None = Field(default=None, ge=0.0, le=1.0)
    fallback_step: StrictStr | None = None
    gold: StrictStr | None = Field(default=None, min_length=1)

    @field_validator("model", "fallback")
    @classmethod
    def _check_models(cls, name: str | None) -> str | None:
        return None if name is None else check_model_name(name)

    @field_validator("json_schema")
    @classmethod
    def _check_schema(cls, document: dict[str, Any] | None) -> dict[str, Any] | None:
        if document is not None:
            from shoal.tasks.extract import Schema

            try:
                Schema(document)
            except UserInputError as exc:
                raise ValueError(str(exc)) from None
        return document

    @model_validator(mode="after")
    def _check_step(self) -> Self:
        _check_model_or_cascade(self)
        _check_task_keys(self)
        _check_labels(self)
        _check_routes(self)
        return self

    @property
    def models(self) -> list[str]:
        """Return the step's models in calling order: the cascade's tiers, or its one model."""
        if self.cascade is not None:
            return [tier.model for tier in self.cascade]
        return [self.model] if self.model is not None else []

    @property
    def models_with_fallback(self) -> list[str]:
        """Return the step's models, then its fallback model, each once."""
        fallback = [self.fallback] if self.fallback is not None else []
        return list(dict.fromkeys([*self.models, *fallback]))

    @property
    def route_labels(self) -> list[str]:
        """Return the step's labels. A route step without `labels` uses the labels of its routes."""
        if self.labels is not None:
            return list(self.labels)
        return list(self.routes or {})

    @property
    def specialists(self) -> list[str]:
        """Return the steps a route step may send an item to, without repeats."""
        targets = [target for target in (self.routes or {}).values() if target is not None]
        if self.fallback_step is not None:
            targets.append(self.fallback_step)
        return list(dict.fromkeys(targets))


def _check_model_or_cascade(step: StepSpec) -> None:
    if step.model is None and step.cascade is None:
        raise SpecError(("model",), "missing; set model (provider:id) or cascade")
    if step.model is not None and step.cascade is not None:
        raise SpecError(("cascade",), "set either model or cascade, not both")
    if step.cascade is None:
        return
    last = len(step.cascade) - 1
    for index, tier in enumerate(step.cascade):
        if index < last and tier.threshold is None:
            raise SpecError(
                ("cascade", index, "threshold"),
                "missing; every tier but the last needs the confidence at which it is accepted",
            )
        if index == last and tier.threshold is not None:
            raise SpecError(
                ("cascade", index, "threshold"),
                "the last tier accepts every item it receives; remove its threshold",
            )


def _check_task_keys(step: StepSpec) -> None:
    """Reject keys that the step's task does not use, naming the task that uses them."""
    unused: list[tuple[str, str]] = []
    if step.task == "extract":
        unused.append(("labels", "classify and route steps"))
    else:
        unused += [("schema", "extract steps"), ("schema_file", "extract steps")]
    if step.task != "route":
        unused += [(key, "route steps") for key in ("routes", "threshold", "fallback_step")]
    for key, used_by in unused:
        attribute = "json_schema" if key == "schema" else key
        if getattr(step, attribute) is not None:
            raise SpecError((key,), f"not used by a {step.task} step, only by {used_by}")
    if step.task == "extract" and (step.json_schema is None) == (step.schema_file is None):
        raise SpecError(("schema",), "an extract step needs exactly one of schema and schema_file")


def _check_labels(step: StepSpec) -> None:
    if step.labels is None:
        return
    if len(step.labels) < 2:
        raise SpecError(("labels",), "a step needs at least 2 labels to choose among")
    repeated = sorted({label for label in step.labels if step.labels.count(label) > 1})
    if repeated:
        raise SpecError(("labels",), f"label {repeated[0]!r} is listed twice; list it once")


def _check_routes(step: StepSpec) -> None:
    if step.task != "route":
        return
    if not step.routes:
        raise SpecError(("routes",), "missing; a route step maps labels to specialist steps")
    if step.labels is not None:
        for label in step.routes:
            if label not in step.labels:
                raise SpecError(
                    ("routes", label),
                    f"label {label!r} is not in the step's labels; add it to labels or "
                    "remove the route",
                )
    if step.fallback_step is not None:
        return
    if step.threshold is not None:
        raise SpecError(
            ("fallback_step",),
            "missing; a route step with a threshold needs the step that takes the items "
            "below it",
        )
    unrouted = [label for label in step.route_labels if label not in step.routes]
    if unrouted:
        raise SpecError(
            ("fallback_step",),
            f"missing; label {unrouted[0]!r} has no route, so set fallback_step or add a route",
        )


class PipelineSpec(BaseModel):
    """A named graph of steps. Step names are the keys of `steps`."""

    model_config = ConfigDict(extra="forbid")

    name: StrictStr = Field(min_length=1)
    description: StrictStr | None = None
    steps: dict[StrictStr, StepSpec] = Field(min_length=1)

    # The folder of the YAML file the pipeline was read from, where relative paths start.
    _base_dir: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _check_graph(self) -> Self:
        from shoal.pipeline.graph import check_graph

        check_graph(self.steps)
        return self

    def resolve_path(self, path: str) -> Path:
        """Resolve a path written in the pipeline: relative to its file, else the working directory."""
        written = Path(path).expanduser()
        if written.is_absolute() or self._base_dir is None:
            return written
        return self._base_dir / written
