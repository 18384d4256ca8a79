"""Logged outcomes: per item and per model, a score, a cost and optionally the response text.

Routing and cascade strategies are simulated on these tables without calling any model. Each
loader reads one published format into `LoggedOutcomes`:

- `load_routerbench`: RouterBench-style CSV files (one score, response and cost column per model).
- `load_routellm`: RouteLLM evaluation CSV files (a correctness column per model, no costs).
- `load_llmrouter`: LLMRouter `dcrouter_preprocessed` JSON files (`question` and `scores`).
- `load_shoal_records`: the records.jsonl file that `shoal bench` writes.

A score or a cost that the file does not give is NaN. Every error a user can fix raises
`DatasetError` with one line that names the file, the column or field, and the fix.
"""

from __future__ import annotations

import ast
import csv
import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np

from shoal.errors import DatasetError, UserInputError
from shoal.evaluate.records import read_records

logger = logging.getLogger("shoal.simulate.outcomes")

# A price for one model: a float is USD per call. A pair is (USD per 1M input tokens, USD per
# 1M output tokens), applied to token counts estimated from the prompt and response text.
Price: TypeAlias = float | tuple[float, float]

# Estimate used only to turn per-token prices into per-call costs when a file has no token
# counts. NOTE: 4 characters per token is a rough average for English text with GPT-style
# tokenizers. Code, other languages and other tokenizers can differ a lot.
_CHARS_PER_TOKEN = 4.0

# RouterBench cells can hold whole multi-shot prompts, longer than csv's 128 KiB default limit.
_CSV_FIELD_LIMIT = 2**31 - 1

_SPLIT_NAMES = ("train", "test", "val", "validation", "dev")


@dataclass
class LoggedOutcomes:
    """Per-item, per-model outcomes of one task split, read from logs.

    `scores[i, j]` is the score of model `models[j]` on item `item_ids[i]`, in [0, 1] (1 is
    correct), or NaN where the log has no score. `costs[i, j]` is the cost of that call in USD,
    or NaN where it is unknown. `responses[i][j]` is the response text, or None where the log
    has none. `responses` is None when the format carries no responses at all.
    """

    task: str
    split: str
    item_ids: list[str]
    prompts: list[str]
    models: list[str]
    scores: np.ndarray
    costs: np.ndarray
    responses: list[list[str | None]] | None
    source: str
    notes: list[str] = field(default_factory=list)  # facts about the data found while loading

    def __post_init__(self) -> None:
        self.scores = np.asarray(self.scores, dtype=float)
        self.costs = np.asarray(self.costs, dtype=float)
        shape = (len(self.item_ids), len(self.models))
        self._check_lengths(shape)
        self._check_models()
        self._check_scores()
        self._check_costs()

    def __len__(self) -> int:
        return len(self.item_ids)

    def subset(self, models: Sequence[str]) -> LoggedOutcomes:
        """Return a copy with only `models`, in the order given.

        Raises KeyError naming the first model that is not in `self.models`.
        """
        missing = [model for model in models if model not in self.models]
        if missing:
            raise KeyError(
                f"model {missing[0]!r} is not in {self.source}; known models: "
                + ", ".join(self.models)
            )
        columns = [self.models.index(model) for model in models]
        responses = None
        if self.responses is not None:
            responses = [[row[column] for column in columns] for row in self.responses]
        return LoggedOutcomes(
            task=self.task,
            split=self.split,
            item_ids=list(self.item_ids),
            prompts=list(self.prompts),
            models=list(models),
            scores=self.scores[:, columns].copy(),
            costs=self.costs[:, columns].copy(),
            responses=responses,
            source=self.source,
            notes=list(self.notes),
        )

    def complete(self) -> LoggedOutcomes:
        """Return a copy without the items that lack a score for any model."""
        keep = np.flatnonzero(~np.isnan(self.scores).any(axis=1))
        return self.take(keep)

    def take(self, rows: Sequence[int] | np.ndarray, split: str | None = None) -> LoggedOutcomes:
        """Return a copy with only the items at `rows`, renamed to `split` when given."""
        rows = np.asarray(rows, dtype=int)
        responses = None
        if self.responses is not None:
            responses = [list(self.responses[row]) for row in rows]
        return LoggedOutcomes(
            task=self.task,
            split=self.split if split is None else split,
            item_ids=[self.item_ids[row] for row in rows],
            prompts=[self.prompts[row] for row in rows],
            models=list(self.models),
            scores=self.scores[rows].copy(),
            costs=self.costs[rows].copy(),
            responses=responses,
            source=self.source,
            notes=list(self.notes),
        )

    def _check_lengths(self, shape: tuple[int, int]) -> None:
        if len(self.prompts) != shape[0]:
            raise ValueError(f"{len(self.prompts)} prompts for {shape[0]} items in {self.source}")
        for name, array in (("scores", self.scores), ("costs", self.costs)):
            if array.shape != shape:
                raise ValueError(
                    f"{name} has shape {array.shape}, expected (items, models) = {shape} "
                    f"in {self.source}"
                )
        if self.responses is not None:
            if len(self.responses) != shape[0]:
                raise ValueError(f"{len(self.responses)} response rows for {shape[0]} items")
            if any(len(row) != shape[1] for row in self.responses):
                raise ValueError(f"a response row does not have {shape[1]} entries, one per model")

    def _check_models(self) -> None:
        if not self.models:
            raise DatasetError(f"{self.source} has no model columns; add one score per model")
        if len(set(self.models)) != len(self.models):
            raise DatasetError(
                f"{self.source} names a model twice in {self.models}; give each model one column"
            )

    def _check_scores(self) -> None:
        outside = np.argwhere((self.scores < 0) | (self.scores > 1))
        if len(outside):
            row, column = outside[0]
            raise DatasetError(
                f"{self.source}: score {self.scores[row, column]} of model "
                f"{self.models[column]!r} on item {self.item_ids[row]!r} is outside [0, 1]; "
                "rescale the scores to [0, 1]"
            )

    def _check_costs(self) -> None:
        invalid = np.argwhere((self.costs < 0) | np.isinf(self.costs))
        if len(invalid):
            row, column = invalid[0]
            raise DatasetError(
                f"{self.source}: cost {self.costs[row, column]} of model "
                f"{self.models[column]!r} on item {self.item_ids[row]!r} is invalid; "
                "costs must be non-negative USD, or empty when unknown"
            )


# RouterBench ----------------------------------------------------------------------------------

_ROUTERBENCH_COST = "|total_cost"
_ROUTERBENCH_RESPONSE = "|model_response"


def load_routerbench(path: str | Path) -> LoggedOutcomes:
    """Load one RouterBench-style CSV file.

    The file needs the columns sample_id, prompt and, per model, a score column named after the
    model and a `<model>|total_cost` column in USD. `<model>|model_response` columns are read
    when present, and eval_name names the task when present (else the file name does). An empty
    score or cost cell becomes NaN. Prompts and responses stored as a Python list of one string,
    as RouterBench writes them, are unwrapped to that string.
    """
    path = Path(path)
    header, rows = _read_csv(path)
    for column in ("sample_id", "prompt"):
        _require_column(path, header, column)

    cost_models = [c.removesuffix(_ROUTERBENCH_COST) for c in header if c.endswith(_ROUTERBENCH_COST)]
    if not cost_models:
        raise DatasetError(
            f"{path} has no `<model>|total_cost` columns; add one score column and one "
            "`<model>|total_cost` column per model"
        )
    for model in cost_models:
        _require_column(path, header, model)
    # Models in the order of their score columns.
    models = [column for column in header if column in cost_models]

    has_responses = any(model + _ROUTERBENCH_RESPONSE in header for model in models)
    scores = np.full((len(rows), len(models)), np.nan)
    costs = np.full((len(rows), len(models)), np.nan)
    responses: list[list[str | None]] = []
    for row_index, row in enumerate(rows):
        row_number = row_index + 1  # data rows counted from 1, header excluded
        for column, model in enumerate(models):
            scores[row_index, column] = _parse_number(path, row_number, model, row[model])
            cost_column = model + _ROUTERBENCH_COST
            costs[row_index, column] = _parse_number(
                path, row_number, cost_column, row[cost_column]
            )
        if has_responses:
            responses.append([
                _unwrap_text(row.get(model + _ROUTERBENCH_RESPONSE, "")) or None
                for model in models
            ])

    task_names = {row["eval_name"] for row in rows} if "eval_name" in header else set()
    split = _split_from_name(path)
    task = task_names.pop() if len(task_names) == 1 else _task_from_name(path, split)
    return LoggedOutcomes(
        task=task,
        split=split,
        item_ids=[row["sample_id"] for row in rows],
        prompts=[_unwrap_text(row["prompt"]) for row in rows],
        models=models,
        scores=scores,
        costs=costs,
        responses=responses if has_responses else None,
        source=str(path),
        notes=_routerbench_notes(rows, scores),
    )


def load_routerbench_dir(folder: str | Path) -> list[LoggedOutcomes]:
    """Load every *.csv file in `folder` with `load_routerbench`, in file name order."""
    return [load_routerbench(path) for path in _csv_files(folder)]


def _routerbench_notes(rows: list[dict[str, str]], scores: np.ndarray) -> list[str]:
    notes = []
    incomplete = int(np.isnan(scores).any(axis=1).sum())
    if incomplete:
        notes.append(
            f"{incomplete} items lack a score for some models; `complete()` drops them"
        )
    repeated = len(rows) - len({row["sample_id"] for row in rows})
    if repeated:
        notes.append(f"{repeated} sample_id values repeat on another row")
    return notes


def _unwrap_text(text: str) -> str:
    """Return the string inside a Python list literal of one string, else `text` unchanged."""
    if not text.startswith("["):
        return text
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], str):
        return value[0]
    return text


# RouteLLM -------------------------------------------------------------------------------------

_ROUTELLM_RESPONSE = "_response"


def load_routellm(path: str | Path, prices: Mapping[str, Price] | None = None) -> LoggedOutcomes:
    """Load one RouteLLM evaluation CSV file, such as gsm8k_responses.csv or mmlu_anatomy.csv.

    The file needs a prompt column and one True/False correctness column per model;
    `<model>_response` columns are read when present. The files carry no costs, so costs are
    NaN unless `prices` gives a `Price` for a model. A float is USD per call. A pair is
    (USD per 1M input tokens, USD per 1M output tokens), applied to token counts estimated at
    4 characters per token of prompt and response, so it needs the response column. The split
    is "test", because RouteLLM evaluates on the benchmarks' test sets.
    """
    path = Path(path)
    header, rows = _read_csv(path)
    _require_column(path, header, "prompt")
    models = [c for c in header if c != "prompt" and not c.endswith(_ROUTELLM_RESPONSE)]
    if not models:
        raise DatasetError(
            f"{path} has no model columns; add one True/False correctness column per model"
        )

    scores = np.full((len(rows), len(models)), np.nan)
    for row_index, row in enumerate(rows):
        for column, model in enumerate(models):
            scores[row_index, column] = _parse_correct(path, row_index + 1, model, row[model])

    has_responses = any(model + _ROUTELLM_RESPONSE in header for model in models)
    responses = None
    if has_responses:
        responses = [
            [row.get(model + _ROUTELLM_RESPONSE) or None for model in models] for row in rows
        ]
    prompts = [row["prompt"] for row in rows]
    costs = _costs_from_prices(path, models, prompts, responses, prices)

    stem = path.stem.removesuffix("_responses")
    return LoggedOutcomes(
        task=stem,
        split="test",
        item_ids=[str(index) for index in range(len(rows))],
        prompts=prompts,
        models=models,
        scores=scores,
        costs=costs,
        responses=responses,
        source=str(path),
    )


def load_routellm_dir(
    folder: str | Path, prices: Mapping[str, Price] | None = None
) -> list[LoggedOutcomes]:
    """Load every *.csv file in `folder` with `load_routellm`, in file name order."""
    return [load_routellm(path, prices) for path in _csv_files(folder)]


def _parse_correct(path: Path, row_number: int, column: str, text: str) -> float:
    value = text.strip().lower()
    if value in ("true", "1", "1.0"):
        return 1.0
    if value in ("false", "0", "0.0"):
        return 0.0
    if value in ("", "nan"):
        return math.nan
    raise DatasetError(
        f"{path} data row {row_number}, column {column!r}: {text!r} is not True or False; "
        "write the correctness as True or False"
    )


def _costs_from_prices(
    path: Path,
    models: list[str],
    prompts: list[str],
    responses: list[list[str | None]] | None,
    prices: Mapping[str, Price] | None,
) -> np.ndarray:
    costs = np.full((len(prompts), len(models)), np.nan)
    if not prices:
        return costs
    unknown = [model for model in prices if model not in models]
    if unknown:
        raise DatasetError(
            f"price given for {unknown[0]!r}, which is not a model in {path}; "
            f"use one of: {', '.join(models)}"
        )
    for column, model in enumerate(models):
        if model not in prices:
            continue
        price = prices[model]
        if isinstance(price, (int, float)):
            costs[:, column] = float(price)
            continue
        if responses is None:
            raise DatasetError(
                f"{path} has no response text to estimate output tokens for {model!r}; "
                "give a price per call (a float, USD) instead of per-token prices"
            )
        input_per_million, output_per_million = price
        for row_index, prompt in enumerate(prompts):
            response = responses[row_index][column] or ""
            input_tokens = len(prompt) / _CHARS_PER_TOKEN
            output_tokens = len(response) / _CHARS_PER_TOKEN
            costs[row_index, column] = (
                input_tokens * input_per_million + output_tokens * output_per_million
            ) / 1e6
    return costs


# LLMRouter ------------------------------------------------------------------------------------


def load_llmrouter(path: str | Path, prices: Mapping[str, float] | None = None) -> LoggedOutcomes:
    """Load an LLMRouter `dcrouter_preprocessed` JSON file: a list of {question, scores}.

    `scores` maps each model to a score in [0, 1]; every item must name the same models, and
    `models` lists them sorted by name. Item ids are list positions. The split is the file stem (train.json gives "train") and the task
    is the folder name. Costs are NaN unless `prices` gives a model's USD per call.
    """
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}; check the path and try again")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise DatasetError(f"{path} is not valid UTF-8 JSON ({error}); repair the file") from None
    if not isinstance(items, list) or not items:
        raise DatasetError(f"{path} contains no items; expected a JSON list of {{question, scores}}")

    models: list[str] = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or "question" not in item or "scores" not in item:
            raise DatasetError(
                f"{path} item {index} is missing 'question' or 'scores'; "
                "each item needs both fields"
            )
        if not isinstance(item["scores"], dict):
            raise DatasetError(f"{path} item {index}: 'scores' must map model names to numbers")
        if index == 0:
            # Sorted, because key order varies between items and between train and test.
            models = sorted(item["scores"])
        elif set(item["scores"]) != set(models):
            raise DatasetError(
                f"{path} item {index} scores models {sorted(item['scores'])}, but item 0 scores "
                f"{sorted(models)}; give every item a score for the same models"
            )

    scores = np.full((len(items), len(models)), np.nan)
    for index, item in enumerate(items):
        for column, model in enumerate(models):
            value = item["scores"][model]
            if value is not None and not isinstance(value, (int, float)):
                raise DatasetError(
                    f"{path} item {index}: score of {model!r} is {value!r}, not a number"
                )
            scores[index, column] = math.nan if value is None else float(value)

    for model in prices or {}:
        if model not in models:
            raise DatasetError(
                f"price given for {model!r}, which is not a model in {path}; "
                f"use one of: {', '.join(models)}"
            )
    costs = np.full(scores.shape, np.nan)
    for column, model in enumerate(models):
        if prices and model in prices:
            costs[:, column] = float(prices[model])

    return LoggedOutcomes(
        task=path.parent.name,
        split=path.stem,
        item_ids=[str(index) for index in range(len(items))],
        prompts=[str(item["question"]) for item in items],
        models=models,
        scores=scores,
        costs=costs,
        responses=None,
        source=str(path),
    )


# shoal run records ----------------------------------------------------------------------------


def load_shoal_records(path: str | Path) -> LoggedOutcomes:
    """Load a records.jsonl file written by `shoal bench`; each model's config becomes a model.

    Items are matched across configs by their "item" index. Items that some config has no
    record for (a run stopped early, or a model measured on a subsample) are dropped, with a
    warning and a line in `notes`, so every model is compared on the same items. When a config
    has several records for one item (a resumed run), the last is used, as
    `shoal.evaluate.summary` does. The score is "correct" as 1.0 or 0.0, the cost is
    "cost_usd", and the response is "prediction". A config that is not named `provider:id`,
    such as "cascade", combines several models and is left out. The task is the name of the
    folder that contains the file, and the split is empty.
    """
    path = Path(path)
    by_config, notes = _model_configs(path)
    models = list(by_config)
    common = set.intersection(*(set(items) for items in by_config.values()))
    every = set().union(*(set(items) for items in by_config.values()))
    if len(common) < len(every):
        message = (
            f"kept the {len(common)} of {len(every)} items that every model has a record for "
            f"in {path}"
        )
        logger.warning(message)
        notes.append(message)
    if not common:
        raise DatasetError(
            f"run record {path} has no item that every config has a record for; "
            "finish the run, or load each config's records separately"
        )
    return _records_table(path, by_config, models, sorted(common), notes)


def load_shoal_records_per_model(path: str | Path) -> list[LoggedOutcomes]:
    """Load a records.jsonl file as one table per model config, each with all of its items.

    Unlike `load_shoal_records`, no item is dropped, so every logged response can be
    replayed. Configs that are not named `provider:id` are left out, as there.
    """
    path = Path(path)
    by_config, notes = _model_configs(path)
    return [
        _records_table(path, {model: items}, [model], sorted(items), list(notes))
        for model, items in by_config.items()
    ]


def _model_configs(path: Path) -> tuple[dict[str, dict[int, dict[str, Any]]], list[str]]:
    """Read the records of each `provider:id` config, by item index, and notes on what was left out."""
    if not path.is_file():
        raise DatasetError(f"run record not found: {path}; check the path, or run shoal bench first")
    try:
        records = read_records(path)
    except UserInputError as error:
        raise DatasetError(str(error)) from None
    if not records:
        raise DatasetError(f"run record {path} has no records; run shoal bench first")

    by_config: dict[str, dict[int, dict[str, Any]]] = {}
    for line, record in enumerate(records, start=1):
        for key in ("config", "item", "correct", "cost_usd"):
            if key not in record:
                raise DatasetError(
                    f"run record {path}, record {line} has no {key!r} field; "
                    "regenerate it with this version of shoal"
                )
        by_config.setdefault(str(record["config"]), {})[int(record["item"])] = record

    combined = [config for config in by_config if ":" not in config]
    notes = [
        f"left out config {config!r}, which combines several models" for config in combined
    ]
    for config in combined:
        del by_config[config]
    if not by_config:
        raise DatasetError(
            f"run record {path} has no config named after a model (provider:id); "
            "load the records of a run that evaluated models alone"
        )
    return by_config, notes


def _records_table(
    path: Path,
    by_config: dict[str, dict[int, dict[str, Any]]],
    models: list[str],
    items: list[int],
    notes: list[str],
) -> LoggedOutcomes:
    scores = np.empty((len(items), len(models)))
    costs = np.empty((len(items), len(models)))
    responses: list[list[str | None]] = []
    for row, item in enumerate(items):
        response_row: list[str | None] = []
        for column, model in enumerate(models):
            record = by_config[model][item]
            scores[row, column] = 1.0 if record["correct"] else 0.0
            costs[row, column] = _record_cost(path, record)
            prediction = record.get("prediction")
            response_row.append(None if prediction is None else str(prediction))
        responses.append(response_row)

    first = by_config[models[0]]
    return LoggedOutcomes(
        task=path.parent.name,
        split="",
        item_ids=[str(item) for item in items],
        prompts=[str(first[item].get("text", "")) for item in items],
        models=models,
        scores=scores,
        costs=costs,
        responses=responses,
        source=str(path),
        notes=notes,
    )


def _record_cost(path: Path, record: dict[str, Any]) -> float:
    try:
        return float(Decimal(str(record["cost_usd"])))
    except InvalidOperation:
        raise DatasetError(
            f"run record {path}: config {record['config']!r}, item {record['item']!r} has "
            f"cost_usd {record['cost_usd']!r}, not a number; regenerate the run record"
        ) from None


# Shared CSV helpers ---------------------------------------------------------------------------


def _read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    if not path.is_file():
        raise DatasetError(f"dataset file not found: {path}; check the path and try again")
    # NOTE: the limit is process-wide in the csv module, so this raises it for other readers too.
    if csv.field_size_limit() < _CSV_FIELD_LIMIT:
        csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            header = list(reader.fieldnames or [])
            rows = list(reader)
    except UnicodeDecodeError:
        raise DatasetError(f"{path} is not UTF-8 text; save it as UTF-8 and try again") from None
    except csv.Error as error:
        raise DatasetError(f"{path} is not a valid CSV file ({error}); repair the file") from None
    if not header:
        raise DatasetError(f"{path} is empty; expected a header line and rows")
    if not rows:
        raise DatasetError(f"{path} has a header but no rows; add rows to the file")
    return header, rows


def _require_column(path: Path, header: Iterable[str], column: str) -> None:
    if column not in header:
        raise DatasetError(f"{path} has no {column!r} column; add it, or check the file format")


def _parse_number(path: Path, row_number: int, column: str, text: str | None) -> float:
    if text is None or not text.strip():
        return math.nan
    try:
        return float(text)
    except ValueError:
        raise DatasetError(
            f"{path} data row {row_number}, column {column!r}: {text!r} is not a number; "
            "write a number or leave the cell empty"
        ) from None


def _csv_files(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"folder not found: {folder}; check the path and try again")
    files = sorted(folder.glob("*.csv"))
    if not files:
        raise DatasetError(
            f"{folder} has no .csv files; point to the folder that holds them, or to the "
            "records.jsonl of a shoal bench run"
        )
    return files


def _split_from_name(path: Path) -> str:
    """Return the split named at the end of the file stem ("arc_challenge_test" -> "test")."""
    last = path.stem.lower().rsplit("_", 1)[-1]
    return last if last in _SPLIT_NAMES else ""


def _task_from_name(path: Path, split: str) -> str:
    return path.stem.removesuffix("_" + split) if split else path.stem
