"""Rows for pipeline evaluation: one dict per item, with a column for each step to read or score.

A pipeline step reads its `input` column and is scored against its `gold` column, so a
pipeline dataset is a list of rows rather than (text, label) pairs. `read_rows` reads any
CSV or JSON Lines file. Two loaders build the rows of the public datasets used by the
example pipelines. shoal ships none of their rows, and the loaders read a local copy:

- CLINC150 (Larson et al., 2019, "An Evaluation Dataset for Intent Classification and
  Out-of-Scope Prediction"; github.com/clinc/oos-eval, licence CC BY 3.0): 150 intents in
  10 domains, plus out-of-scope queries with the intent "oos".
- The synthetic customer-support tickets of Tobias Bueck (Softoft) on Hugging Face,
  licence CC BY-NC 4.0, which forbids commercial use: subject, body, queue, priority,
  type and language columns.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from shoal.errors import DatasetError
from shoal.evaluate.datasets import read_table

Row = dict[str, Any]

OOS = "oos"  # CLINC150's intent, and here its domain, for out-of-scope queries
CLINC150_SPLITS = ("train", "val", "test")


def read_rows(path: str | Path) -> list[Row]:
    """Read a .csv file (UTF-8, header row) or a JSON Lines file as one dict per row."""
    path = Path(path)
    _, rows = read_table(path)
    if not rows:
        raise DatasetError(f"dataset {path} has no rows; add rows to the file")
    return [row.values for row in rows]


def sample_per_label(
    rows: Sequence[Row], column: str | Sequence[str], per_label: int | None, seed: int
) -> list[Row]:
    """Take up to `per_label` random rows of each value of `column`, kept in row order.

    With several columns, the rows are grouped by their combination of values.
    `per_label=None` keeps every row. The same seed always takes the same rows.
    """
    columns = [column] if isinstance(column, str) else list(column)
    if per_label is None:
        return list(rows)
    if per_label < 1:
        raise DatasetError(f"rows per label must be at least 1, got {per_label}")
    positions: dict[Any, list[int]] = {}
    for position, row in enumerate(rows):
        positions.setdefault(tuple(row.get(name) for name in columns), []).append(position)
    rng = random.Random(seed)
    chosen: list[int] = []
    for value in sorted(positions, key=str):
        found = positions[value]
        chosen += found if len(found) <= per_label else rng.sample(found, per_label)
    return [rows[position] for position in sorted(chosen)]


def load_clinc150(
    root: str | Path,
    split: str = "train",
    *,
    domains: Sequence[str] | None = None,
    per_intent: int | None = None,
    seed: int = 0,
    out_of_scope: bool = True,
) -> list[Row]:
    """Read one CLINC150 split as rows with the columns text, intent and domain.

    `root` is the repository folder that contains data/data_full.json and data/domains.json.
    The split's out-of-scope queries (oos_train, oos_val or oos_test) come after the
    in-scope ones when `out_of_scope` is true, with intent and domain "oos". `domains`
    keeps only the intents of those domains (and "oos"). `per_intent` takes a seeded
    random sample of that many rows of each intent.
    """
    if split not in CLINC150_SPLITS:
        raise DatasetError(
            f"unknown CLINC150 split {split!r}; use one of {', '.join(CLINC150_SPLITS)}"
        )
    folder = Path(root) / "data"
    data = _read_json(folder / "data_full.json")
    domain_of = _intent_domains(_read_json(folder / "domains.json"), folder / "domains.json")
    if domains is not None:
        unknown = sorted(set(domains) - set(domain_of.values()))
        if unknown:
            known = ", ".join(sorted(set(domain_of.values())))
            raise DatasetError(f"unknown CLINC150 domain {unknown[0]!r}; the domains are: {known}")

    pairs = list(data.get(split, []))
    if out_of_scope:
        pairs += data.get(f"oos_{split}", [])
    rows: list[Row] = []
    for text, intent in pairs:
        domain = OOS if intent == OOS else domain_of.get(intent)
        if domain is None:
            raise DatasetError(
                f"CLINC150 intent {intent!r} is in no domain of {folder / 'domains.json'}; "
                "use the domains.json of the same release"
            )
        if domains is None or domain in domains or domain == OOS:
            rows.append({"text": text, "intent": intent, "domain": domain})
    return sample_per_label(rows, "intent", per_intent, seed)


def _intent_domains(document: Any, path: Path) -> dict[str, str]:
    if not isinstance(document, dict):
        raise DatasetError(f"{path} is not a mapping of domain to intents; use CLINC150's file")
    return {intent: domain for domain, intents in document.items() for intent in intents}


def load_support_tickets(path: str | Path, *, limit: int | None = None) -> list[Row]:
    """Read the support-ticket CSV as rows with `text` = subject, a blank line, then body.

    Every other column (queue, priority, type, language, ...) is kept as written. A ticket
    without a subject has its body as text. `limit` keeps the first rows.
    """
    path = Path(path)
    rows = read_rows(path)
    for column in ("subject", "body"):
        if column not in rows[0]:
            raise DatasetError(
                f"column {column!r} not found in {path}; give the support-ticket CSV, whose "
                "columns include subject, body, queue and priority"
            )
    tickets = []
    for row in rows[:limit]:
        subject = (row.get("subject") or "").strip()
        body = row.get("body") or ""
        text = f"{subject}\n\n{body}" if subject else body
        tickets.append({**row, "text": text})
    return tickets


def _read_json(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except FileNotFoundError:
        raise DatasetError(
            f"{path} not found; give the folder of a CLINC150 (oos-eval) checkout"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
