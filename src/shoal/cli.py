"""The `shoal` command line."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from shoal.calibrate_command import calibrate_command
from shoal.catalogue.command import models_command
from shoal.config import apply_config_file
from shoal.errors import ShoalError, UserInputError
from shoal.options import parse_max_cost, parse_per_label
from shoal.pipeline.compare_command import compare_command
from shoal.pricing.compute import MachinePrice
from shoal.simulate.command import simulate_command

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Small models first: classify with cascades and measure accuracy per dollar.",
)
stderr = Console(stderr=True)


@app.callback()
def _root() -> None:
    """Small models first: classify with cascades and measure accuracy per dollar."""
    # API keys and base URLs may come from the config file; the environment wins.
    apply_config_file()


def _fail(message: str, code: int) -> None:
    # The message is escaped because paths and labels may contain rich markup such as "[/]".
    stderr.print(
        f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, markup=True
    )
    sys.exit(code)


def _use_prices_file(option: Path | None) -> None:
    """Check the prices file now, so a bad file fails before any paid call, and use it."""
    from shoal.catalogue.prices_file import PRICES_ENV, load_prices_file, prices_file_path

    path = prices_file_path(option)
    if path is not None:
        load_prices_file(path)
        os.environ[PRICES_ENV] = str(path)


@app.command()
def bench(
    task: Annotated[str, typer.Option(help="'classify' (the default) or 'extract': extract the slots of a bundled SNIPS intent with each model in --escalate (default: the 0.5B then the 1.5B local model) and a fitted cascade of the first two.")] = "classify",
    intent: Annotated[str, typer.Option(help="With --task extract: the bundled SNIPS intent, GetWeather or BookRestaurant.")] = "GetWeather",
    data: Annotated[Path | None, typer.Option(help="A labelled CSV or JSONL file to split into train, dev and test (default: the bundled BANKING77 sample).")] = None,
    train_data: Annotated[Path | None, typer.Option(help="A labelled file that replaces the train pool.")] = None,
    dev_data: Annotated[Path | None, typer.Option(help="A labelled file that replaces the dev split.")] = None,
    test_data: Annotated[Path | None, typer.Option(help="A labelled file that replaces the test split.")] = None,
    text_column: Annotated[str, typer.Option(help="Column (CSV) or key (JSONL) holding the text.")] = "text",
    label_column: Annotated[str, typer.Option(help="Column (CSV) or key (JSONL) holding the label.")] = "label",
    per_label: Annotated[str, typer.Option(help="Labelled examples per label tier 0 is trained on, or 'all'.")] = "10",
    encoder: Annotated[str, typer.Option(help="Tier 0 model.")] = "encoder:minilm",
    escalate: Annotated[list[str] | None, typer.Option(help="An escalation tier's model, in order; repeat for more tiers (default: local:qwen2.5-coder-1.5b). 'none' evaluates tier 0 alone.")] = None,
    top_k: Annotated[int, typer.Option(min=2, max=10, help="Labels of the previous tier an escalation model re-scores.")] = 3,
    llm_sample: Annotated[int, typer.Option(min=1, help="Test items each escalation model is measured on alone (a random subsample).")] = 100,
    examples_per_label: Annotated[int, typer.Option(min=0, max=10, help="Labelled examples shown with each candidate label, nearest to the item first.")] = 2,
    scoring: Annotated[str, typer.Option(help="How escalation models score the candidate labels: 'channel' (the text's probability after each label's examples; local models only), 'choice' (the letter of an option) or 'auto' (channel for local models, choice for API models).")] = "auto",
    text_kind: Annotated[str | None, typer.Option(help="What the texts are, named in channel prompts, e.g. 'Support tickets' (default: 'Messages from bank customers' for the bundled data, else 'Texts').")] = None,
    instructions: Annotated[str | None, typer.Option(help="System prompt for escalation models that use letter choice (default: one that names the bundled data, or a generic one).")] = None,
    pool_share: Annotated[float, typer.Option(min=0.0, max=1.0, help="Share of dev items, least confident first, the escalation tiers are run on to fit thresholds.")] = 0.3,
    tolerance: Annotated[float, typer.Option(min=0.0, max=1.0, help="Dev accuracy (0-1) a cheaper threshold setting may give up.")] = 0.005,
    machine_usd_per_hour: Annotated[str | None, typer.Option(help="Hourly price in USD of the machine that runs in-process models (default: AWS m7g.large on-demand, $0.0816).")] = None,
    prices: Annotated[Path | None, typer.Option(help="A YAML prices file that overrides or adds model prices (default: $SHOAL_PRICES); checked before any work.")] = None,
    max_cost: Annotated[str | None, typer.Option(help="Spending cap in USD for the whole run; it stops cleanly, records kept, before a call could cross it.")] = None,
    cache: Annotated[bool, typer.Option(help="Answer repeated API requests from the response cache on disk, at no cost (local models are never cached).")] = True,
    download: Annotated[bool, typer.Option(help="Download missing weights from the Hugging Face hub (needs network and the hub extra of shoal).")] = False,
    thresholds: Annotated[Path | None, typer.Option(help="A thresholds file from `shoal calibrate`: the cascade uses its tier-0 threshold and model weight instead of fitting them on dev. Its models must be --encoder and the single --escalate model.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of every random sample.")] = 0,
    output: Annotated[Path | None, typer.Option(help="Folder for records.jsonl, summary.json, fit.json and the plot.")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details to stderr.")] = False,
) -> None:
    """Compare tier 0, each escalation model and the fitted cascade in accuracy per dollar."""
    from shoal.bench.data import load_bench_data
    from shoal.bench.run import BenchOptions, run_bench
    from shoal.bench.view import RichProgress, show_result
    from shoal.pricing.compute import machine_from_env, machine_price_override
    from shoal.weights import default_cache_dir

    _configure_logging(verbose)
    _use_prices_file(prices)
    machine = (
        machine_price_override(machine_usd_per_hour, source="--machine-usd-per-hour")
        if machine_usd_per_hour is not None
        else machine_from_env()
    )
    if task == "extract" and thresholds is not None:
        raise UserInputError("--thresholds applies only to --task classify; drop it for extract")
    if task == "extract":
        _bench_extract(escalate, intent, output, max_cost, machine)
        return
    if task != "classify":
        raise UserInputError(f"unknown --task {task!r}; use classify or extract")
    escalation = ["local:qwen2.5-coder-1.5b"] if escalate is None else escalate
    if any(name.lower() == "none" for name in escalation):
        if len(escalation) > 1:
            raise UserInputError(
                "--escalate none cannot be combined with escalation models; give either "
                "'none' or one or more models"
            )
        escalation = []
    options = BenchOptions(
        encoder=encoder, escalate=escalation, per_label=parse_per_label(per_label),
        top_k=top_k, llm_sample=llm_sample, examples_per_label=examples_per_label,
        instructions=instructions, scoring=scoring, text_kind=text_kind,
        pool_share=pool_share, tolerance=tolerance,
        seed=seed, machine=machine, allow_download=download, output=output,
        max_cost=parse_max_cost(max_cost) if max_cost is not None else None,
        cache_path=default_cache_dir() / "responses.sqlite" if cache else None,
        thresholds=thresholds,
    )
    bench_data = load_bench_data(
        data, train_data=train_data, dev_data=dev_data, test_data=test_data,
        text_column=text_column, label_column=label_column, seed=seed,
    )
    # Outside a terminal rich assumes 80 columns, too narrow for the table.
    console = Console() if sys.stdout.isatty() else Console(width=150)
    with RichProgress(console) as progress:
        result = asyncio.run(run_bench(bench_data, options, progress))
    show_result(result, console)
    if result.stopped is not None:
        raise typer.Exit(code=1)


def _bench_extract(
    models: list[str] | None,
    intent: str,
    output: Path | None,
    max_cost: str | None,
    machine: MachinePrice,
) -> None:
    from shoal.bench.extract import DEFAULT_MODELS, ExtractBenchOptions, run_extract_bench
    from shoal.bench.view import RichProgress
    from shoal.bench.view_extract import show_extract_result

    options = ExtractBenchOptions(
        intent=intent,
        models=list(models) if models else list(DEFAULT_MODELS),
        output=output,
        machine=machine,
        max_cost=parse_max_cost(max_cost) if max_cost is not None else None,
    )
    console = Console() if sys.stdout.isatty() else Console(width=150)
    with RichProgress(console) as progress:
        result = asyncio.run(run_extract_bench(options, progress))
    show_extract_result(result, console)
    if result.stopped is not None:
        raise typer.Exit(code=1)


# Defaults of the shoal eval options that apply to one kind of run. Setting one to another
# value on the other kind of run is rejected.
DEFAULT_INTENT = "GetWeather"
DEFAULT_MAX_RETRIES = 1
DEFAULT_PER_LABEL = "10"
DEFAULT_CONCURRENCY = 4
DEFAULT_SEED = 0


@app.command("eval")
def eval_command(
    dataset: Annotated[str, typer.Argument(help="sroie, snips or squad2 (extraction), or a pipeline: a YAML file or a shipped example (clinc150_router, ticket_triage).")],
    path: Annotated[Path, typer.Argument(help="The dataset: a folder such as ../shared/data/sroie, a CLINC150 folder, or a CSV or JSON Lines file for a pipeline.")],
    model: Annotated[list[str] | None, typer.Option(help="A model to evaluate; repeat for more (default: the 0.5B and 1.5B local models).", rich_help_panel="Extraction only")] = None,
    limit: Annotated[int | None, typer.Option(min=1, help="Items to evaluate: the first in file order for extraction (default 20), a seeded sample of the test rows for a pipeline (default: all).")] = None,
    intent: Annotated[str, typer.Option(help="The SNIPS intent whose slots are extracted.", rich_help_panel="Extraction only")] = DEFAULT_INTENT,
    max_retries: Annotated[int, typer.Option(min=0, help="Extra attempts after a reply that does not validate.", rich_help_panel="Extraction only")] = DEFAULT_MAX_RETRIES,
    train: Annotated[Path | None, typer.Option(help="Labelled rows the encoder steps train on (default: a seeded 70% of PATH, or CLINC150's train split).", rich_help_panel="Pipeline only")] = None,
    per_label: Annotated[str, typer.Option(help="Labelled rows kept of each label (of each combination of the steps' gold labels) to train the encoder steps on, or 'all'.", rich_help_panel="Pipeline only")] = DEFAULT_PER_LABEL,
    concurrency: Annotated[int, typer.Option(min=1, help="Items run at the same time.", rich_help_panel="Pipeline only")] = DEFAULT_CONCURRENCY,
    seed: Annotated[int, typer.Option(help="Seed of the train/test split and samples.", rich_help_panel="Pipeline only")] = DEFAULT_SEED,
    max_cost: Annotated[str | None, typer.Option(help="Spending cap in USD for the run.")] = None,
    output: Annotated[Path | None, typer.Option(help="Folder for records.jsonl and summary.json (a pipeline's default: eval- and the name in its file, with pipeline.png).")] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log progress details to stderr.")] = False,
) -> None:
    """Evaluate extraction models on SROIE, SNIPS or SQuAD 2.0, or a pipeline step by step."""
    _configure_logging(verbose)
    from shoal.pipeline.command import is_pipeline

    if is_pipeline(dataset):
        from shoal.pipeline.command import PipelineEvalOptions, run_pipeline_eval

        _reject_options(
            "a pipeline, whose models are in its file",
            {
                "--model": model is not None, "--intent": intent != DEFAULT_INTENT,
                "--max-retries": max_retries != DEFAULT_MAX_RETRIES,
            },
        )

        cap = parse_max_cost(max_cost) if max_cost is not None else None
        options = PipelineEvalOptions(train, parse_per_label(per_label), limit, concurrency, seed, cap)
        if not run_pipeline_eval(dataset, path, options, output):
            raise typer.Exit(code=1)
        return
    from shoal.bench.extract import DEFAULT_MODELS
    from shoal.bench.extract_eval import ExtractEvalOptions, check_dataset_name, run_extract_eval
    from shoal.bench.view import RichProgress
    from shoal.bench.view_extract import show_eval_result
    from shoal.pricing.compute import machine_from_env

    check_dataset_name(dataset)  # before the progress display starts
    _reject_options(
        f"the extraction dataset {dataset!r}",
        {
            "--train": train is not None, "--per-label": per_label != DEFAULT_PER_LABEL,
            "--concurrency": concurrency != DEFAULT_CONCURRENCY, "--seed": seed != DEFAULT_SEED,
        },
    )

    options = ExtractEvalOptions(
        dataset=dataset, path=path, models=list(model) if model else list(DEFAULT_MODELS),
        limit=limit or 20, intent=intent, max_retries=max_retries, machine=machine_from_env(),
        output=output, max_cost=parse_max_cost(max_cost) if max_cost is not None else None,
    )
    console = Console() if sys.stdout.isatty() else Console(width=150)
    with RichProgress(console) as progress:
        result = asyncio.run(run_extract_eval(options, progress))
    show_eval_result(result, console)
    if result.stopped is not None:
        raise typer.Exit(code=1)


app.command("models")(models_command)
app.command("calibrate")(calibrate_command)
app.command("simulate")(simulate_command)
app.command("compare")(compare_command)


def _reject_options(target: str, options_set: dict[str, bool]) -> None:
    """Raise UserInputError naming the options set on the command line that do not apply to `target`."""
    named = [option for option, is_set in options_set.items() if is_set]
    if named:
        verb = "does" if len(named) == 1 else "do"
        raise UserInputError(
            f"{', '.join(named)} {verb} not apply to {target}; see `shoal eval --help`, whose "
            "options are grouped by what they apply to"
        )


def _configure_logging(verbose: bool) -> None:
    if verbose:
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )


def main() -> None:
    """Run the CLI; a user error prints one line and exits 2, with no traceback."""
    try:
        app()
    except UserInputError as exc:
        _fail(str(exc), 2)
    except ShoalError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        _fail("interrupted", 130)


if __name__ == "__main__":
    sys.exit(main())
