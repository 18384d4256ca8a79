"""Pipelines: graphs of classify, route and extract steps, written in YAML or built in Python.

    spec = load_pipeline("tickets.yaml")        # or PipelineSpec(name=..., steps={...})
    pipeline = bind_pipeline(spec)              # or bind_pipeline(spec, builder)
    trace = await pipeline.run_item({"text": "My card has not arrived."})
    trace.cost_usd, trace.to_record()

    builder = train_pipeline(spec, train_rows)  # fits the encoder:* steps on labelled rows
    result = evaluate_pipeline(bind_pipeline(spec, builder), test_rows, output=Path("out"))
    result.end_to_end_accuracy, result.steps["queue"].accuracy
"""

from shoal.pipeline.bind import StepBuilder, StepsByModel, bind_pipeline, bind_step
from shoal.pipeline.eval_summary import PipelineEvalResult, StepEvalSummary, summarize_pipeline
from shoal.pipeline.evaluate import evaluate_pipeline, evaluate_pipeline_async, item_record
from shoal.pipeline.executor import Pipeline, choose_route
from shoal.pipeline.model_steps import LabelChoiceStep, ModelStepBuilder
from shoal.pipeline.spec import PipelineSpec, StepSpec, TierSpec
from shoal.pipeline.step_run import BoundStep, PipelineStep, StepTier
from shoal.pipeline.trace import CallRecord, ItemTrace, StepRecord
from shoal.pipeline.train import step_training_rows, train_pipeline
from shoal.pipeline.yaml_loader import load_pipeline, parse_pipeline, pipeline_from_dict

__all__ = [
    "BoundStep",
    "CallRecord",
    "ItemTrace",
    "LabelChoiceStep",
    "ModelStepBuilder",
    "Pipeline",
    "PipelineEvalResult",
    "PipelineSpec",
    "PipelineStep",
    "StepBuilder",
    "StepEvalSummary",
    "StepRecord",
    "StepSpec",
    "StepTier",
    "StepsByModel",
    "TierSpec",
    "bind_pipeline",
    "bind_step",
    "choose_route",
    "evaluate_pipeline",
    "evaluate_pipeline_async",
    "item_record",
    "load_pipeline",
    "parse_pipeline",
    "pipeline_from_dict",
    "step_training_rows",
    "summarize_pipeline",
    "train_pipeline",
]
