"""Run records: one JSON object per line and per item, appended as each item finishes.

Each line is flushed as soon as it is written, so a stopped run keeps every item it finished and
can resume from the file. Decimal values are written as fixed-point strings ("0.0000001", not
"1E-7"), so that no cost passes through a float. Every reported figure is computed from these
lines (see `shoal.evaluate.summary`).

One item of one config:

    {"config": "cascade",            # the pipeline or model being measured
     "item": 17,                      # index of the item in the dataset
     "label": "card_arrival",         # gold label
     "prediction": "card_arrival",    # accepted prediction, null when none was usable
     "confidence": 0.93,              # confidence of the accepted prediction, in [0, 1]
     "correct": true,
     "tier": 0,                       # index in "steps" of the accepted prediction
     "answered_by": "encoder:minilm", # model of that step
     "cost_usd": "0.0000001",         # Decimal dollars of all steps, failed attempts included
     "latency_ms": 3.1,               # wall time for the whole item
     "note": "...",                   # optional text shown under reports, e.g. the sampling
     "steps": [                       # one per tier the item reached; a single model has one
        {"model": "encoder:minilm",
         "prediction": "card_arrival",
         "confidence": 0.41,
         "accepted": false,
         "cost": {"usd": "0.0000001", "rates": "...", "source": "...",
                  "valid_from": "2026-06-17", "priced_at": "2026-06-17T10:00:00+00:00"},
         "latency_ms": 2.9,
         "usage": {"input_tokens": 0, "output_tokens": 0, "compute_seconds": 0.0029}},
        ...]}

`cost` in a step is `shoal.pricing.money.Cost.to_record()`.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

from shoal.errors import UserInputError
from shoal.pricing.money import Cost

logger = logging.getLogger("shoal.evaluate.records")

_TAIL_CHUNK = 64 * 1024


def _to_json(value: Any) -> Any:
    if isinstance(value, Decimal):
        # Fixed-point, because str() writes small amounts in exponent form, e.g. "1E-7".
        return f"{value:f}"
    if isinstance(value, Cost):
        return {**value.to_record(), "usd": f"{value.amount:f}"}
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"a run record cannot hold a {type(value).__name__}: {value!r}")


def encode_record(record: dict[str, Any]) -> str:
    """Return one record as a single JSON line without the newline, with Decimals as strings."""
    return json.dumps(record, default=_to_json, ensure_ascii=False, allow_nan=False)


class RunRecordWriter:
    """Append records to a run record file, one flushed line each.

    Use as a context manager. Parent folders are created. When the file ends in a partial line
    (a run killed while writing), that line is removed before appending, so its item is run again.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle: IO[str] | None = None

    def __enter__(self) -> Self:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            _repair_tail(self.path)
        self._handle = self.path.open("a", encoding="utf-8", newline="\n")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a line and flush it to the operating system."""
        if self._handle is None:
            raise RuntimeError("RunRecordWriter.write called outside its `with` block")
        line = encode_record(record)  # encode first, so a bad value writes nothing
        self._handle.write(line + "\n")
        self._handle.flush()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


def _repair_tail(path: Path) -> None:
    """Make the file end with a newline, dropping a partial last line that is not valid JSON."""
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size == 0:
            return
        handle.seek(size - 1)
        if handle.read(1) == b"\n":
            return

        start = _last_line_start(handle, size)
        handle.seek(start)
        tail = handle.read()
        if _is_json_object(tail):
            handle.write(b"\n")
            return
        logger.warning(
            "removed a partial last line (%d bytes) from run record %s; its item will run again",
            size - start, path,
        )
        handle.truncate(start)


def _last_line_start(handle: IO[bytes], size: int) -> int:
    """Return the offset just after the last newline, or 0 when there is none."""
    end = size
    while end > 0:
        start = max(0, end - _TAIL_CHUNK)
        handle.seek(start)
        chunk = handle.read(end - start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return start + newline + 1
        end = start
    return 0


def _is_json_object(data: bytes) -> bool:
    return _parse_line(data) is not None


def read_records(path: str | Path) -> list[dict[str, Any]]:
    """Read every record of a run record file, in file order.

    A last line that is not valid JSON (a run killed while writing) is skipped with a warning.
    Raises UserInputError for a missing file, or for an invalid line anywhere else.
    Decimal values come back as the strings they were written as.
    """
    path = Path(path)
    if not path.is_file():
        raise UserInputError(
            f"run record not found: {path}; check the path, or run the pipeline first"
        )

    # Lines are decoded one by one, so a multi-byte character cut by a kill spoils only its line.
    lines = path.read_bytes().split(b"\n")
    numbered = [(number, line) for number, line in enumerate(lines, start=1) if line.strip()]

    records: list[dict[str, Any]] = []
    for position, (number, line) in enumerate(numbered):
        record = _parse_line(line)
        if record is not None:
            records.append(record)
            continue
        if position == len(numbered) - 1:
            logger.warning("skipped a partial last line (line %d) in run record %s", number, path)
            continue
        raise UserInputError(
            f"run record {path} line {number} is not a JSON object; "
            "remove or repair that line, then try again"
        )
    return records


def _parse_line(line: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(line.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    return value if isinstance(value, dict) else None
