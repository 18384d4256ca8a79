"""Steps that call real models, built from a step's spec and a model name.

Classify and route steps ask a generative model to pick one of the step's labels, shown
as lettered options. Extract steps use `ExtractStep`. Encoder models are rejected here,
because they need labelled training examples: `train_pipeline` trains them on labelled rows
and defers the other models to this builder.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from shoal.calls import Budget, CallLimits, GuardedProvider, RetryPolicy
from shoal.errors import UserInputError
from shoal.models import load_provider, parse_model
from shoal.pipeline.spec import StepSpec
from shoal.pipeline.step_run import PipelineStep
from shoal.pricing import DEFAULT_MACHINE, Cost, MachinePrice, Price
from shoal.providers.base import Provider, Usage
from shoal.providers.local import LlamaCppProvider
from shoal.tasks.classify import OPTION_LETTERS, CandidateChoiceStep
from shoal.tasks.extract import DEFAULT_INSTRUCTIONS as EXTRACT_INSTRUCTIONS
from shoal.tasks.extract import ExtractStep, Schema
from shoal.tasks.prediction import ItemContext, Prediction

LABEL_INSTRUCTIONS = (
    "You sort texts into categories. Answer with the letter of the category that fits the "
    "text, and nothing else."
)
# The cost of the placeholder prediction below, which stands for no call at all.
_NO_CALL = Cost(Decimal(0), Price("no call", "shoal", None), datetime(2000, 1, 1, tzinfo=UTC))


class LabelChoiceStep:
    """A generative model picks one of a fixed set of labels, shown as lettered options.

    It runs `CandidateChoiceStep` after a placeholder prediction that gives every label the
    same probability, so that all labels are candidates, in the order given, and the model's
    own probabilities become the prediction (`model_weight` 1.0). The placeholder is not
    a call and is never recorded. Earlier tiers' predictions are not used.
    """

    def __init__(
        self, provider: Provider, labels: Sequence[str], instructions: str | None = None
    ) -> None:
        if not 2 <= len(labels) <= len(OPTION_LETTERS):
            raise ValueError(f"between 2 and {len(OPTION_LETTERS)} labels, got {len(labels)}")
        self.model = provider.model
        self.labels = list(labels)
        self._choice = CandidateChoiceStep(
            provider,
            instructions=instructions or LABEL_INSTRUCTIONS,
            top_k=len(labels),
            model_weight=1.0,
        )
        share = 1.0 / len(labels)
        self._uniform = Prediction(
            model="(all labels)",
            label=self.labels[0],
            confidence=share,
            probs=dict.fromkeys(self.labels, share),
            cost=_NO_CALL,
            latency_s=0.0,
            usage=Usage(),
        )

    async def predict(self, item: ItemContext) -> Prediction:
        context = ItemContext(text=item.text, predictions=[self._uniform])
        return await self._choice.predict(context)


class ModelStepBuilder:
    """The default step builder: loads each model's provider once, behind GuardedProvider.

    Every provider shares `budget`, `retry` and `limits`. The retry policy repeats
    transient HTTP failures inside one call of a step. A step's `retries` repeat whole
    calls on top of that.
    """

    def __init__(
        self,
        *,
        resolve_path: Callable[[str], Path] = Path,
        budget: Budget | None = None,
        retry: RetryPolicy | None = None,
        limits: CallLimits | None = None,
        machine: MachinePrice = DEFAULT_MACHINE,
        allow_download: bool = False,
    ) -> None:
        self.resolve_path = resolve_path
        self.budget = budget
        self.retry = retry
        self.limits = limits
        self.machine = machine
        self.allow_download = allow_download
        self._providers: dict[str, GuardedProvider] = {}

    def __call__(self, name: str, spec: StepSpec, model: str) -> PipelineStep:
        if parse_model(model).provider == "encoder":
            raise UserInputError(
                f"step {name!r} uses {model}, which must first be trained on labelled "
                "examples; bind the pipeline with the builder that shoal.pipeline."
                "train_pipeline returns, or use a generative model"
            )
        provider = self._provider(model)
        if spec.task == "extract":
            return ExtractStep(
                provider,
                self._schema(name, spec),
                instructions=spec.instructions or EXTRACT_INSTRUCTIONS,
                max_retries=spec.retries,
            )
        labels = spec.route_labels
        if not labels:
            raise UserInputError(
                f"step {name!r} has no labels for {model} to choose among; list them under labels"
            )
        if len(labels) > len(OPTION_LETTERS):
            raise UserInputError(
                f"step {name!r} has {len(labels)} labels, but a generative model chooses among "
                f"at most {len(OPTION_LETTERS)}; use fewer labels, or a cascade whose first "
                "tier is a trained EncoderStep bound with StepsByModel"
            )
        return LabelChoiceStep(provider, labels, spec.instructions)

    def _provider(self, model: str) -> GuardedProvider:
        if model not in self._providers:
            provider = loaded_provider(model, self.machine, allow_download=self.allow_download)
            self._providers[model] = GuardedProvider(
                provider, retry=self.retry, limits=self.limits, budget=self.budget
            )
        return self._providers[model]

    def _schema(self, name: str, spec: StepSpec) -> Schema:
        if spec.json_schema is not None:
            return Schema(spec.json_schema, name=name)
        if spec.schema_file is None:
            raise UserInputError(f"step {name!r} needs a schema or a schema_file")
        return Schema.from_file(self.resolve_path(spec.schema_file))


def loaded_provider(
    model: str, machine: MachinePrice, *, allow_download: bool = False
) -> Provider:
    """Return the provider of a generative model, with a local model's weights loaded.

    Loading here, before any item runs, keeps the load time out of the first item's
    latency and compute cost.
    """
    provider = load_provider(model, machine=machine, allow_download=allow_download)
    if isinstance(provider, LlamaCppProvider):
        provider.load()
    return provider
