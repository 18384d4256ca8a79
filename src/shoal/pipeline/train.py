"""Training a pipeline's encoder steps on labelled rows, and binding the other steps.

An `encoder:*` model classifies only after it has been fitted on labelled examples. Each
step (or cascade tier, or fallback) with an encoder model gets its own classifier, fitted
on the step's `input` column against its `gold` column. The rows a step trains on follow
the routes: a specialist trains only on the rows whose gold label for its route step
routes to it, so a per-domain specialist learns only its domain's labels. A route step's
`fallback_step` may receive any item, so it trains on every row its route step trains on.

    builder = train_pipeline(spec, train_rows, per_label=20)
    pipeline = bind_pipeline(spec, builder)
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from shoal.calls import Budget
from shoal.errors import UserInputError
from shoal.evaluate.pipeline_data import sample_per_label
from shoal.models import load_encoder, parse_model
from shoal.pipeline.bind import StepBuilder, StepsByModel
from shoal.pipeline.graph import specialist_owners
from shoal.pipeline.spec import PipelineSpec, StepSpec
from shoal.pipeline.step_run import PipelineStep
from shoal.pricing import DEFAULT_MACHINE, MachinePrice
from shoal.providers.encoder import EncoderClassifier
from shoal.tasks.classify import EncoderStep

logger = logging.getLogger("shoal.pipeline.train")

Row = Mapping[str, Any]


def step_training_rows(spec: PipelineSpec, rows: Sequence[Row]) -> dict[str, list[Row] | None]:
    """Return the rows each step trains on, following the routes from the entry steps.

    A step that no route step picks trains on every row. A specialist of route step R
    trains on R's rows whose value in R's `gold` column is routed to it, and R's
    `fallback_step` on all of R's rows. A specialist of a route step without `gold` gets
    None, because its rows cannot be chosen.
    """
    owners = specialist_owners(spec.steps)
    chosen: dict[str, list[Row] | None] = {}

    def rows_of(name: str) -> list[Row] | None:
        if name not in chosen:
            owner = owners.get(name)
            if owner is None:
                chosen[name] = list(rows)
            else:
                owner_rows = rows_of(owner)
                routed = None if owner_rows is None else _routed_rows(spec, owner, name, owner_rows)
                chosen[name] = routed
        return chosen[name]

    for name in spec.steps:
        rows_of(name)
    return chosen


def _routed_rows(spec: PipelineSpec, owner: str, name: str, rows: list[Row]) -> list[Row] | None:
    route = spec.steps[owner]
    if route.fallback_step == name:
        return rows
    if route.gold is None:
        return None
    labels = {label for label, target in (route.routes or {}).items() if target == name}
    return [row for row in rows if _text(row.get(route.gold)) in labels]


def train_pipeline(
    spec: PipelineSpec,
    rows: Sequence[Row],
    *,
    per_label: int | None = None,
    seed: int = 0,
    otherwise: StepBuilder | None = None,
    machine: MachinePrice = DEFAULT_MACHINE,
    allow_download: bool = False,
    budget: Budget | None = None,
) -> StepsByModel:
    """Fit an EncoderStep for every encoder model of every step, and return a step builder.

    The labelled rows are sampled once: up to `per_label` seeded random rows of each
    combination of the classify and route steps' gold labels (every row when None), as a
    labelled set of `per_label` examples of each kind of item. Each classifier then trains
    on every sampled row routed to its step, so a CLINC150 router with 10 rows per intent learns each
    domain from 150 rows. Generative models go to `otherwise` (by default
    `ModelStepBuilder`), and a classify step without `labels` is given the sorted gold
    labels of its training rows (a route step with a `fallback_step` adds them to its
    routes' labels). Raises UserInputError for an encoder step without `gold`, an encoder
    specialist of a route step without `gold`, an extract step with an encoder model, or
    training rows of fewer than 2 labels.
    """
    rows = sample_training_rows(spec, rows, per_label, seed)
    by_step = step_training_rows(spec, rows)
    encoders: dict[str, EncoderClassifier] = {}  # one loaded encoder per model, shared
    trained: dict[str | tuple[str, str], PipelineStep] = {}
    gold_labels: dict[str, list[str]] = {}

    for name, step in spec.steps.items():
        step_rows = by_step[name]
        if step.gold is not None and step.task != "extract" and step_rows is not None:
            gold_labels[name] = _labels(step.gold, step_rows)
        for model in step.models_with_fallback:
            if parse_model(model).provider != "encoder":
                continue
            loaded = encoders.get(model)
            if loaded is None:
                loaded = load_encoder(model, machine=machine, allow_download=allow_download)
                encoders[model] = loaded
            classifier = EncoderClassifier(loaded.encoder, model=loaded.model, machine=machine)
            if step_rows is None:
                raise UserInputError(
                    f"step {name!r} uses {model}, which trains on the rows routed to it, but "
                    f"a route step before it has no gold column to choose them by; set gold "
                    f"on {_gold_less_router(spec, name)!r}"
                )
            texts, labels = _examples(name, step, step_rows)
            logger.info("training %s for step %s on %d rows", model, name, len(texts))
            classifier.fit(texts, labels)
            trained[(name, model)] = EncoderStep(classifier, budget=budget)

    if otherwise is None:
        from shoal.pipeline.model_steps import ModelStepBuilder

        otherwise = ModelStepBuilder(resolve_path=spec.resolve_path, budget=budget, machine=machine)
    return StepsByModel(trained, otherwise=_GoldLabels(otherwise, gold_labels))


def sample_training_rows(
    spec: PipelineSpec, rows: Sequence[Row], per_label: int | None, seed: int
) -> list[Row]:
    """Take up to `per_label` seeded rows of each combination of the steps' gold labels.

    Only classify and route steps count, since an extract step's gold value is an object.
    """
    golds = [
        step.gold for step in spec.steps.values() if step.gold is not None and step.task != "extract"
    ]
    return sample_per_label(rows, list(dict.fromkeys(golds)), per_label, seed)


def _examples(name: str, step: StepSpec, rows: list[Row]) -> tuple[list[str], list[str]]:
    """Return the texts and gold labels an encoder model of the step is fitted on."""
    if step.task == "extract":
        raise UserInputError(
            f"step {name!r} is an extract step, and an encoder model only classifies; give "
            "it a generative model"
        )
    if step.gold is None:
        raise UserInputError(
            f"step {name!r} uses an encoder model, which trains on labelled rows, but has no "
            "gold column; set gold to the column that holds its labels"
        )
    usable = [row for row in rows if _text(row.get(step.input)) and _text(row.get(step.gold))]
    labels = [_text(row[step.gold]) for row in usable]
    if len(set(labels)) < 2:
        found = f"only the label {labels[0]!r}" if labels else "no row"
        raise UserInputError(
            f"step {name!r} has {found} to train on (column {step.input!r} against "
            f"{step.gold!r}); an encoder needs rows of at least 2 labels, so add rows or "
            "check the columns and routes"
        )
    return [str(row[step.input]) for row in usable], labels


def _gold_less_router(spec: PipelineSpec, name: str) -> str:
    """Return the nearest route step above `name` without `gold` (one exists when called)."""
    owners = specialist_owners(spec.steps)
    owner = owners[name]
    while spec.steps[owner].gold is not None:
        owner = owners[owner]
    return owner


def _labels(gold: str, rows: list[Row]) -> list[str]:
    return sorted({_text(row.get(gold)) for row in rows} - {""})


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


class _GoldLabels:
    """Give a classify or route step without `labels` the gold labels of its training rows."""

    def __init__(self, builder: StepBuilder, labels: Mapping[str, list[str]]) -> None:
        self.builder = builder
        self.labels = labels

    def __call__(self, name: str, spec: StepSpec, model: str) -> PipelineStep:
        labels = self.labels.get(name)
        if spec.labels is None and labels and spec.task == "classify":
            spec = spec.model_copy(update={"labels": labels})
        elif spec.labels is None and labels and spec.fallback_step is not None:
            # The route labels come first. A gold label without a route is added only when
            # the fallback step can take the items predicted with it.
            spec = spec.model_copy(
                update={"labels": list(dict.fromkeys([*spec.route_labels, *labels]))}
            )
        return self.builder(name, spec, model)
