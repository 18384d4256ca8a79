"""Pipelines: graphs of classify, route and extract steps, written in YAML or built in Python.

    spec = load_pipeline("tickets.yaml")        # or PipelineSpec(name=..., steps={...})
    pipeline = bind_pipeline(spec)              # or bind_pipeline(spec, builder)
    trace = await pipeline.run_item({"text": "My card has not arrived."})
    trace.cost_usd, trace.to_record()
"""

from shoal.pipeline.bind import StepBuilder, StepsByModel, bind_pipeline, bind_step
from shoal.pipeline.executor import Pipeline, choose_route
from shoal.pipeline.model_steps import LabelChoiceStep, ModelStepBuilder
from shoal.pipeline.spec import PipelineSpec, StepSpec, TierSpec
from shoal.pipeline.step_run import BoundStep, PipelineStep, StepTier
from shoal.pipeline.trace import CallRecord, ItemTrace, StepRecord
from shoal.pipeline.yaml_loader import load_pipeline, parse_pipeline, pipeline_from_dict

__all__ = [
    "BoundStep",
    "CallRecord",
    "ItemTrace",
    "LabelChoiceStep",
    "ModelStepBuilder",
    "Pipeline",
    "PipelineSpec",
    "PipelineStep",
    "StepBuilder",
    "StepRecord",
    "StepSpec",
    "StepTier",
    "StepsByModel",
    "TierSpec",
    "bind_pipeline",
    "bind_step",
    "choose_route",
    "load_pipeline",
    "parse_pipeline",
    "pipeline_from_dict",
]
