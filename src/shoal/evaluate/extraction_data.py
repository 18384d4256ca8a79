"""Extraction datasets: texts with gold field values and the JSON Schema of the output.

Loaders for SROIE 2019 receipts, SNIPS slot filling (the BIO files of the Goo et al. 2018
split), a SQuAD 2.0 sample, and the SNIPS sample that ships with shoal. Each returns an
`ExtractionDataset`: examples in a stable order, a JSON Schema (draft 2020-12) that a model's
output must follow, and the type of each field, which picks the metric normaliser.

The schemas keep to the subset that the structured-output modes of the OpenAI, Anthropic
and Gemini APIs and llama.cpp grammars all accept: every property is required and nullable
(null when the text does not give it), and additionalProperties is false.

Every error a user can cause raises `DatasetError` with one line that names the path or
value and the fix.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from shoal.errors import DatasetError, UserInputError

logger = logging.getLogger("shoal.evaluate.extraction_data")

FIELD_TYPES = ("text", "date", "amount")

SROIE_FIELDS = ("company", "date", "address", "total")
SROIE_DESCRIPTIONS = {
    "company": "Name of the business that issued the receipt, as printed",
    "date": "Date of the receipt, as printed",
    "address": "Address of the business, as printed, with line breaks replaced by spaces",
    "total": "Total amount paid, as printed, without the currency",
}

SNIPS_SPLITS = ("train", "valid", "test")
# Descriptions of the SNIPS slots, written from the slot names and their values in the train
# split. A slot name missing here gets a description built from the name.
SNIPS_SLOT_DESCRIPTIONS = {
    "album": "Album title",
    "artist": "Artist or band name",
    "best_rating": "Top of the rating scale, e.g. the 6 of 'out of 6'",
    "city": "City name",
    "condition_description": "Weather condition asked about, e.g. rain or snow",
    "condition_temperature": "Temperature condition asked about, e.g. hot or colder",
    "country": "Country name",
    "cuisine": "Cuisine or style of food",
    "current_location": "Words for the user's current location, e.g. here",
    "entity_name": "Title of the song or other item to add",
    "facility": "Facility that the place should have, e.g. parking or wifi",
    "genre": "Music genre",
    "geographic_poi": "Named place such as a park, reserve or landmark",
    "location_name": "Cinema or cinema chain name",
    "movie_name": "Film title",
    "movie_type": "Kind of film, e.g. animated movies",
    "music_item": "Kind of music item, e.g. song, album or track",
    "object_location_type": "Kind of venue, e.g. cinema or movie theatre",
    "object_name": "Title of the work",
    "object_part_of_series_type": "Word for the series that the book belongs to, e.g. saga",
    "object_select": "Word that picks the item, e.g. this or next",
    "object_type": "Kind of work, e.g. book, novel or tv show",
    "party_size_description": "People in the party, described in words, e.g. my parents and i",
    "party_size_number": "Number of people in the party",
    "playlist": "Playlist name",
    "playlist_owner": "Owner of the playlist, e.g. my",
    "poi": "Place that the restaurant should be near, e.g. downtown",
    "rating_unit": "Unit of the rating, e.g. stars or points",
    "rating_value": "Rating given",
    "restaurant_name": "Restaurant name",
    "restaurant_type": "Kind of place, e.g. restaurant, bar or pub",
    "served_dish": "Dish that the restaurant should serve",
    "service": "Music service, e.g. spotify",
    "sort": "Ranking word, e.g. best or most popular",
    "spatial_relation": "Distance word, e.g. nearby or close",
    "state": "State or region name, or its abbreviation",
    "timeRange": "Time or date words, e.g. tomorrow or next week",
    "track": "Song title",
    "year": "Year or decade, e.g. eighties",
}
# Slots whose meaning in one intent differs from the description above.
SNIPS_INTENT_SLOT_DESCRIPTIONS = {
    ("SearchScreeningEvent", "object_type"): "What is asked about the screening, e.g. movie times",
}

SQUAD_ANSWER_DESCRIPTION = (
    "The shortest span of the context that answers the question, copied word for word; "
    "null when the context does not answer the question"
)

BUNDLED_SNIPS_INTENTS = ("BookRestaurant", "GetWeather")
BUNDLED_SNIPS_SPLITS = ("train", "dev", "test")
BUNDLED_SNIPS_LICENSE = "CC0 1.0"


@dataclass(frozen=True)
class ExtractionExample:
    """A text and the gold values of the fields to extract from it."""

    id: str
    text: str
    gold: dict[str, Any]


@dataclass(frozen=True)
class ExtractionDataset:
    """Extraction examples with the JSON Schema of the output and each field's type."""

    name: str
    examples: list[ExtractionExample]
    schema: dict[str, Any]
    field_types: dict[str, str]  # field -> "text", "date" or "amount"

    def __len__(self) -> int:
        return len(self.examples)

    @property
    def fields(self) -> list[str]:
        """Field names in schema order."""
        return list(self.schema.get("properties", {}))

    def schema_json(self) -> str:
        """Return the schema as JSON text, the form that `Request.json_schema` takes."""
        return json.dumps(self.schema, sort_keys=True, separators=(",", ":"))


# --- SROIE receipts ---


def load_sroie(root: str | Path, limit: int | None = None) -> ExtractionDataset:
    """Load SROIE 2019 receipts: OCR text in reading order, gold company, date, address, total.

    `root` is the folder that contains `data/box` and `data/key`, or the `data` folder itself.
    Each receipt's `box/<id>.csv` lines are 8 corner coordinates and the OCR text, which may
    contain commas. The text lines are sorted top to bottom, then left to right within a row,
    and joined with newlines. Gold comes from `key/<id>.json`. A field that is missing there or
    empty is None. Receipts are in id order, and `limit` keeps the first `limit` of them.
    """
    _check_limit(limit)
    folder = _find_folder(Path(root), ("data", "."), ("box", "key"), "SROIE")
    key_paths = sorted((folder / "key").glob("*.json"))
    if not key_paths:
        raise DatasetError(
            f"no receipt key files (*.json) found in {folder / 'key'}; "
            "point to the SROIE folder that holds data/box and data/key"
        )
    if limit is not None:
        key_paths = key_paths[:limit]

    examples = []
    for key_path in key_paths:
        box_path = folder / "box" / f"{key_path.stem}.csv"
        if not box_path.is_file():
            raise DatasetError(
                f"OCR file {box_path} not found for the receipt key {key_path}; "
                "every key/<id>.json needs a box/<id>.csv"
            )
        examples.append(
            ExtractionExample(
                id=key_path.stem,
                text="\n".join(_read_ocr_lines(box_path)),
                gold=_read_receipt_key(key_path),
            )
        )

    schema = _object_schema(
        "Receipt",
        "Key fields of a scanned shop receipt, read from its OCR text.",
        {name: _nullable_string(SROIE_DESCRIPTIONS[name]) for name in SROIE_FIELDS},
    )
    field_types = {"company": "text", "date": "date", "address": "text", "total": "amount"}
    logger.info("loaded %d SROIE receipts from %s", len(examples), folder)
    return ExtractionDataset("SROIE 2019 receipts", examples, schema, field_types)


@dataclass(frozen=True)
class _OcrBox:
    top: int
    bottom: int
    left: int
    text: str

    @property
    def middle(self) -> float:
        return (self.top + self.bottom) / 2


def _read_ocr_lines(path: Path) -> list[str]:
    boxes = []
    for number, line in enumerate(_read_lines(path), start=1):
        if not line.strip():
            continue
        # The text is everything after the 8th comma. It may contain commas and quotes, so a
        # CSV reader would split or unquote it wrongly.
        parts = line.split(",", 8)
        try:
            coordinates = [int(part) for part in parts[:8]]
        except ValueError:
            coordinates = []
        if len(parts) < 9 or len(coordinates) != 8:
            raise DatasetError(
                f"{path} line {number} is not 8 integer coordinates and a text: {line[:80]!r}; "
                "each line must be x1,y1,x2,y2,x3,y3,x4,y4,text"
            )
        text = parts[8].strip()
        if not text:
            continue
        xs, ys = coordinates[0::2], coordinates[1::2]
        boxes.append(_OcrBox(top=min(ys), bottom=max(ys), left=min(xs), text=text))
    return [box.text for box in _reading_order(boxes)]


def _reading_order(boxes: Sequence[_OcrBox]) -> list[_OcrBox]:
    """Sort OCR boxes into rows from top to bottom, and each row from left to right.

    Boxes on one printed row differ by a few pixels in height, so a plain sort by the top edge
    would put a price before its label. A box joins the current row when its vertical middle
    lies within the row's first box and that box's middle lies within it. The mutual check
    keeps a tall heading from pulling in the line below it.
    """
    rows: list[list[_OcrBox]] = []
    for box in sorted(boxes, key=lambda box: (box.middle, box.left)):
        if rows:
            first = rows[-1][0]
            same_row = (
                first.top <= box.middle <= first.bottom and box.top <= first.middle <= box.bottom
            )
            if same_row:
                rows[-1].append(box)
                continue
        rows.append([box])
    return [box for row in rows for box in sorted(row, key=lambda box: box.left)]


def _read_receipt_key(path: Path) -> dict[str, str | None]:
    document = _read_json(path)
    if not isinstance(document, dict):
        raise DatasetError(
            f"receipt key {path} is a JSON {type(document).__name__}, not an object; "
            f"it must map {', '.join(SROIE_FIELDS)} to strings"
        )
    gold: dict[str, str | None] = {}
    for name in SROIE_FIELDS:
        value = document.get(name)
        if value is not None and not isinstance(value, str):
            raise DatasetError(
                f"receipt key {path} has a {type(value).__name__} in {name!r}; "
                "every field must be a string"
            )
        gold[name] = value if value and value.strip() else None
    return gold


# --- SNIPS slot filling ---


def snips_intents(root: str | Path) -> list[str]:
    """List the intents of the SNIPS train split, sorted."""
    folder = _snips_folder(Path(root))
    return sorted(set(_read_lines(folder / "train" / "label")) - {""})


def load_snips(
    root: str | Path, intent: str, split: str = "test", limit: int | None = None
) -> ExtractionDataset:
    """Load one intent's SNIPS requests with their slots as gold.

    `root` is the SNIPS folder that contains `data/snips/<split>/{seq.in, seq.out, label}`, or
    the folder that contains the split folders. The text is the request's tokens joined by
    spaces. Gold maps each slot that the BIO tags mark to its words (see `bio_to_slots`): a
    string, or a list of strings when the slot occurs more than once in the request. A request
    without slots has empty gold. The schema has one property per slot that the train split
    tags for this intent. Example ids are `<split>-<0-based line number>`, in file order, and
    `limit` keeps the first `limit` requests of the intent.
    """
    _check_limit(limit)
    folder = _snips_folder(Path(root))
    if split not in SNIPS_SPLITS:
        raise DatasetError(f"unknown SNIPS split {split!r}; use one of {', '.join(SNIPS_SPLITS)}")

    train_items = _read_snips_split(folder, "train")
    known = sorted({label for label, _, _, _ in train_items})
    if intent not in known:
        raise DatasetError(f"unknown SNIPS intent {intent!r}; use one of {', '.join(known)}")
    items = train_items if split == "train" else _read_snips_split(folder, split)

    examples = []
    for label, index, tokens, tags in items:
        if label != intent:
            continue
        examples.append(
            ExtractionExample(
                id=f"{split}-{index:05d}", text=" ".join(tokens), gold=bio_to_slots(tokens, tags)
            )
        )
        if limit is not None and len(examples) == limit:
            break
    if not examples:
        raise DatasetError(
            f"SNIPS split {split!r} in {folder} has no requests of intent {intent!r}; "
            "choose another split or intent"
        )

    schema = snips_schema(intent, _slot_counts(train_items, intent))
    field_types = dict.fromkeys(schema["properties"], "text")
    logger.info("loaded %d SNIPS %s requests (%s) from %s", len(examples), intent, split, folder)
    return ExtractionDataset(f"SNIPS {intent} ({split})", examples, schema, field_types)


def bio_to_slots(tokens: Sequence[str], tags: Sequence[str]) -> dict[str, str | list[str]]:
    """Convert BIO tags to a map from slot name to the words of its span, joined by spaces.

    A slot that occurs more than once maps to a list of its values in text order. An I- tag
    that does not continue a span of the same slot starts a new span, as conlleval counts it.
    """
    if len(tokens) != len(tags):
        raise ValueError(f"BIO tags need one tag per token: got {len(tokens)} and {len(tags)}")
    spans: list[tuple[str, list[str]]] = []
    current: str | None = None
    for token, tag in zip(tokens, tags, strict=True):
        prefix, _, slot = tag.partition("-")
        if prefix == "I" and slot == current:
            spans[-1][1].append(token)
        elif prefix in ("B", "I") and slot:
            spans.append((slot, [token]))
            current = slot
        else:
            current = None

    slots: dict[str, str | list[str]] = {}
    for slot, words in spans:
        value = " ".join(words)
        previous = slots.get(slot)
        if previous is None:
            slots[slot] = value
        elif isinstance(previous, list):
            previous.append(value)
        else:
            slots[slot] = [previous, value]
    return slots


def snips_schema(intent: str, slot_counts: dict[str, int]) -> dict[str, Any]:
    """Build the output schema of one SNIPS intent.

    `slot_counts` maps each slot to the maximum number of times it occurs in one request.
    Every slot is a nullable string, and a slot that occurs more than once in some request
    may also be a list of strings.
    """
    properties = {}
    for slot in sorted(slot_counts):
        description = SNIPS_INTENT_SLOT_DESCRIPTIONS.get(
            (intent, slot), SNIPS_SLOT_DESCRIPTIONS.get(slot, _describe_slot(slot))
        )
        if slot_counts[slot] > 1:
            properties[slot] = {
                "anyOf": [
                    {"type": "string"},
                    {"type": "array", "items": {"type": "string"}},
                    {"type": "null"},
                ],
                "description": f"{description}; a list when the request gives several",
            }
        else:
            properties[slot] = _nullable_string(description)
    return _object_schema(
        f"SNIPS {intent}",
        f"Slots of a {intent} request. Copy each value word for word from the request, and "
        "use null for a slot that the request does not fill.",
        properties,
    )


def _describe_slot(slot: str) -> str:
    return f"The {slot.replace('_', ' ')} named in the request"


def _snips_folder(root: Path) -> Path:
    return _find_folder(root, ("data/snips", "."), ("train",), "SNIPS")


def _read_snips_split(folder: Path, split: str) -> list[tuple[str, int, list[str], list[str]]]:
    """Read a split's aligned lines as (intent, 0-based line number, tokens, tags)."""
    split_folder = folder / split
    if not split_folder.is_dir():
        raise DatasetError(
            f"SNIPS split folder {split_folder} not found; "
            f"{folder} must contain {', '.join(SNIPS_SPLITS)} folders"
        )
    texts = _read_lines(split_folder / "seq.in")
    tag_lines = _read_lines(split_folder / "seq.out")
    labels = _read_lines(split_folder / "label")
    if not len(texts) == len(tag_lines) == len(labels):
        raise DatasetError(
            f"SNIPS files in {split_folder} differ in length: seq.in has {len(texts)} lines, "
            f"seq.out {len(tag_lines)} and label {len(labels)}; they must be aligned line by line"
        )

    items = []
    for index, (text, tag_line, label) in enumerate(zip(texts, tag_lines, labels, strict=True)):
        tokens, tags, label = text.split(), tag_line.split(), label.strip()
        if not tokens:
            continue
        if len(tokens) != len(tags):
            raise DatasetError(
                f"{split_folder / 'seq.out'} line {index + 1} has {len(tags)} tags for "
                f"{len(tokens)} tokens in seq.in; give one BIO tag per token"
            )
        items.append((label, index, tokens, tags))
    return items


def _slot_counts(
    items: Sequence[tuple[str, int, list[str], list[str]]], intent: str
) -> dict[str, int]:
    """Map each slot of an intent to the maximum number of times it occurs in one request."""
    counts: dict[str, int] = {}
    for label, _, tokens, tags in items:
        if label != intent:
            continue
        for slot, value in bio_to_slots(tokens, tags).items():
            occurrences = len(value) if isinstance(value, list) else 1
            counts[slot] = max(counts.get(slot, 0), occurrences)
    return counts


# --- SQuAD 2.0 sample ---


def load_squad2(root: str | Path, limit: int | None = None) -> ExtractionDataset:
    """Load a SQuAD 2.0 sample: context and question as text, gold answers as a list.

    `root` is the folder that contains `squad2/queries.json` and `squad2/ground_truth.json`,
    or the `squad2` folder itself. The text is "Context: ...\\nQuestion: ...". Gold is
    {"answer": [distinct non-empty answers, in file order]}, which is [] for an unanswerable
    question. Questions are in file order, and `limit` keeps the first `limit` of them.
    """
    _check_limit(limit)
    required = ("queries.json", "ground_truth.json")
    folder = _find_folder(Path(root), ("squad2", "."), required, "SQuAD 2.0")
    queries_path, truth_path = folder / "queries.json", folder / "ground_truth.json"
    queries = _read_json(queries_path)
    truth = _read_json(truth_path)
    if not isinstance(queries, dict) or not isinstance(queries.get("queries"), list):
        raise DatasetError(
            f"{queries_path} must be a JSON object with a 'queries' list of "
            "{id, context, question} objects"
        )
    if not isinstance(truth, dict):
        raise DatasetError(f"{truth_path} must be a JSON object that maps question ids to answers")

    records = queries["queries"][:limit] if limit is not None else queries["queries"]
    examples = [_squad_example(record, truth, queries_path, truth_path) for record in records]
    if not examples:
        raise DatasetError(f"{queries_path} has no questions; check that it is the right file")

    schema = _object_schema(
        "Answer",
        "The answer to a question about the given context.",
        {"answer": _nullable_string(SQUAD_ANSWER_DESCRIPTION)},
    )
    logger.info("loaded %d SQuAD 2.0 questions from %s", len(examples), folder)
    return ExtractionDataset("SQuAD 2.0 sample", examples, schema, {"answer": "text"})


def _squad_example(
    record: Any, truth: dict[str, Any], queries_path: Path, truth_path: Path
) -> ExtractionExample:
    fields = ("id", "context", "question")
    if not isinstance(record, dict) or not all(isinstance(record.get(f), str) for f in fields):
        raise DatasetError(
            f"{queries_path} has a question that is not an object with string id, context and "
            f"question: {str(record)[:80]!r}"
        )
    entry = truth.get(record["id"])
    if not isinstance(entry, dict) or not isinstance(entry.get("answers"), list):
        raise DatasetError(
            f"{truth_path} has no answers list for the question id {record['id']!r}; "
            "every question needs an entry {\"answers\": [...]}"
        )
    # Unanswerable questions list one empty answer, and answerable ones often repeat an answer.
    answers = list(dict.fromkeys(a for a in entry["answers"] if isinstance(a, str) and a.strip()))
    return ExtractionExample(
        id=record["id"],
        text=f"Context: {record['context']}\nQuestion: {record['question']}",
        gold={"answer": answers},
    )


# --- the bundled SNIPS sample ---


def load_bundled_snips(intent: str = "BookRestaurant", split: str = "test") -> ExtractionDataset:
    """Load one intent and split of the SNIPS sample that ships with shoal.

    The intents are BUNDLED_SNIPS_INTENTS. The splits are "train" (a pool for few-shot
    examples), "dev" and "test". bench/make_snips_sample.py wrote the files, and NOTICE.md
    next to them states the source, license and sizes.
    """
    if intent not in BUNDLED_SNIPS_INTENTS:
        raise DatasetError(
            f"the bundled SNIPS sample has no intent {intent!r}; "
            f"use one of {', '.join(BUNDLED_SNIPS_INTENTS)}"
        )
    if split not in BUNDLED_SNIPS_SPLITS:
        raise DatasetError(
            f"the bundled SNIPS sample has no split {split!r}; "
            f"use one of {', '.join(BUNDLED_SNIPS_SPLITS)}"
        )
    folder = resources.files("shoal") / "assets" / "snips" / intent
    schema = json.loads((folder / "schema.json").read_text(encoding="utf-8"))
    examples = []
    for number, line in enumerate(
        (folder / f"{split}.jsonl").read_text(encoding="utf-8").splitlines(), start=1
    ):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            examples.append(ExtractionExample(record["id"], record["text"], record["gold"]))
        except (json.JSONDecodeError, KeyError, TypeError) as error:
            raise DatasetError(
                f"bundled SNIPS file {intent}/{split}.jsonl line {number} is not a JSON object "
                "with id, text and gold; rebuild it with bench/make_snips_sample.py"
            ) from error
    field_types = dict.fromkeys(schema["properties"], "text")
    name = f"SNIPS {intent} sample ({split}, {BUNDLED_SNIPS_LICENSE})"
    return ExtractionDataset(name, examples, schema, field_types)


# --- shared helpers ---


def _nullable_string(description: str) -> dict[str, Any]:
    return {"type": ["string", "null"], "description": description}


def _object_schema(title: str, description: str, properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "title": title,
        "description": description,
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise UserInputError(
            f"limit must be at least 1, got {limit}; give a positive number, or none for all"
        )


def _find_folder(
    root: Path, candidates: Sequence[str], required: Sequence[str], dataset: str
) -> Path:
    """Return the first of `root`/candidate that contains every name in `required`."""
    if not root.is_dir():
        raise DatasetError(f"{dataset} folder {root} not found; check the path")
    for candidate in candidates:
        folder = root / candidate
        if all((folder / name).exists() for name in required):
            return folder
    looked = " or ".join(str(root / candidate) for candidate in candidates)
    raise DatasetError(
        f"{dataset} files not found: {looked} must contain {', '.join(required)}; "
        f"point to the {dataset} folder"
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DatasetError(f"file {path} not found; check the dataset folder") from None
    except UnicodeDecodeError as error:
        raise DatasetError(f"{path} is not valid UTF-8 ({error.reason}); save it as UTF-8") from None


def _read_lines(path: Path) -> list[str]:
    """Read a file's lines without line ends. A final line end does not add an empty line.

    Only \n and \r\n end a line. str.splitlines would also split at characters such as
    U+2028 inside a text, which would misalign files that are read line by line together.
    """
    lines = _read_text(path).split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line.removesuffix("\r") for line in lines]


def _read_json(path: Path) -> Any:
    try:
        return json.loads(_read_text(path))
    except json.JSONDecodeError as error:
        raise DatasetError(
            f"{path} is not valid JSON ({error.msg} at line {error.lineno}); fix or replace it"
        ) from None
