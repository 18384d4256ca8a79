"""Binding a pipeline specification to step objects that call models.

A step builder turns (step name, step spec, model name) into an object with an async
`predict(item)`. It is called once per tier of a step's cascade (or for its one model) and
once for its fallback. `ModelStepBuilder` builds steps that call real models. Tests and
Python users can pass their own builder instead, or bind steps built beforehand (such as
a trained `EncoderStep`) with `StepsByModel`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from shoal.errors import UserInputError
from shoal.pipeline.executor import Pipeline
from shoal.pipeline.spec import PipelineSpec, StepSpec
from shoal.pipeline.step_run import BoundStep, PipelineStep, StepTier

StepBuilder = Callable[[str, StepSpec, str], PipelineStep]


def bind_pipeline(spec: PipelineSpec, builder: StepBuilder | None = None) -> Pipeline:
    """Build every step's models with `builder` (by default, `ModelStepBuilder`)."""
    if builder is None:
        from shoal.pipeline.model_steps import ModelStepBuilder

        builder = ModelStepBuilder(resolve_path=spec.resolve_path)
    steps = {name: bind_step(name, step, builder) for name, step in spec.steps.items()}
    return Pipeline(spec, steps)


def bind_step(name: str, spec: StepSpec, builder: StepBuilder) -> BoundStep:
    if spec.cascade is not None:
        tiers = [StepTier(builder(name, spec, tier.model), tier.threshold) for tier in spec.cascade]
    else:
        tiers = [StepTier(builder(name, spec, model)) for model in spec.models]
    fallback = builder(name, spec, spec.fallback) if spec.fallback is not None else None
    return BoundStep(name=name, spec=spec, tiers=tiers, fallback=fallback)


class StepsByModel:
    """A step builder that returns steps built beforehand, found by model name.

    A key is a model name, or a (step name, model name) pair for a step object that only
    one step uses. The pair is looked up first. Models without a key go to `otherwise`.
    """

    def __init__(
        self,
        steps: Mapping[str | tuple[str, str], PipelineStep],
        otherwise: StepBuilder | None = None,
    ) -> None:
        self.steps = dict(steps)
        self.otherwise = otherwise

    def __call__(self, name: str, spec: StepSpec, model: str) -> PipelineStep:
        for key in ((name, model), model):
            if key in self.steps:
                return self.steps[key]
        if self.otherwise is not None:
            return self.otherwise(name, spec, model)
        raise UserInputError(
            f"no step object is bound to model {model!r} of step {name!r}; add it to the "
            "steps given to StepsByModel"
        )
