"""Extraction metrics as pure functions: field scores, exact match, SQuAD EM/F1 and span F1.

Field values are compared after normalisation. Text is case-folded with white space collapsed,
dates become ISO `yyyy-mm-dd` and amounts become plain decimal text. A value whose normalised
form is the empty string counts as absent, in gold and in predictions alike.

Precision, recall and F1 whose denominator is zero are 0.0, as with scikit-learn's
`zero_division=0`. Every score is a fraction in [0, 1].
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Literal, TypeAlias

from dateutil import parser as date_parser

Normaliser: TypeAlias = Callable[[Any], str]
"""A function from one scalar field value to its comparable text ("" means absent)."""

NormaliserKind: TypeAlias = Literal["text", "date", "amount"]

FieldNormalisers: TypeAlias = Mapping[str, Normaliser | NormaliserKind]
"""Field name -> normaliser, given as a function or as the name of a built-in one.

Fields missing from the mapping use `normalise_text`. For month-first dates pass
`functools.partial(normalise_date, dayfirst=False)`.
"""

Span: TypeAlias = tuple[str, int, int] | tuple[str, str]
"""An entity span: (type, start, end) with end exclusive, or (type, text) without offsets."""


# ---------------------------------------------------------------------------------------------
# Normalisers


def normalise_text(value: Any) -> str:
    """Case-fold `value`, collapse runs of white space to one space and strip both ends.

    None becomes "". Other non-string values are converted with `str` first, so 12.5 becomes
    "12.5" and True becomes "true".
    """
    if value is None:
        return ""
    text = value if isinstance(value, str) else str(value)
    return " ".join(text.casefold().split())


# A leading four-digit year (2018-03-04, 2018/3/4, 2018.03.04) or a compact 20180304. Such dates
# are read year-month-day for any value of `dayfirst`, because dateutil (checked on 4.0.0)
# reads "2018-03-04" as 3 April when dayfirst=True.
_YEAR_FIRST_DATE = re.compile(r"\d{4}[-/.]\d{1,2}[-/.]\d{1,2}(?!\d)|(?:19|20)\d{6}(?!\d)")

# These defaults differ in year, month and day, so a text parses to the same date under both
# only when it names all three itself.
_FIRST_DEFAULT = datetime(2001, 1, 1)
_SECOND_DEFAULT = datetime(2002, 2, 2)


def normalise_date(value: Any, dayfirst: bool = True) -> str:
    """Convert a date to ISO `yyyy-mm-dd` text, or fall back to `normalise_text`.

    `dayfirst=True` reads ambiguous numeric dates day first, so "03/04/2018" is 3 April 2018,
    as most countries outside the US write dates. When the day-first reading is impossible,
    dateutil reads month first, so "12/25/2018" is still 25 December. A date that starts with
    a four-digit year is always read year-month-day. Two-digit years follow dateutil's century rule
    ("25-12-18" is 2018). A time of day, if present, is dropped.

    Text that is not a complete date (no year, month or day, extra words such as
    "Date: 25/12/2018", or an impossible day) returns `normalise_text(value)`, so it can still
    equal an identical gold string. `date` and `datetime` objects are formatted directly.
    """
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()

    text = str(value).strip()
    if not text:
        return ""
    year_first = _YEAR_FIRST_DATE.match(text) is not None
    options = {"dayfirst": dayfirst and not year_first, "yearfirst": year_first}
    try:
        first = date_parser.parse(text, default=_FIRST_DEFAULT, **options)
        second = date_parser.parse(text, default=_SECOND_DEFAULT, **options)
    except (ValueError, OverflowError):
        # dateutil's ParserError is a ValueError. OverflowError comes from huge numbers.
        return normalise_text(value)
    if first.date() != second.date():
        return normalise_text(value)
    return first.date().isoformat()


# After currency symbols and white space are removed: an optional sign, an optional currency
# code of 1-3 letters before the number ("RM", "USD", "Rs."), the number, and an optional code
# of 2-3 letters after it ("USD", "kr"). A single trailing letter is not taken as a code, so
# "12k" stays text instead of becoming 12.
_AMOUNT = re.compile(
    r"(?P<sign>[+-]?)(?:[A-Za-z]{1,3}\.?)?(?P<inner_sign>[+-]?)"
    r"(?P<number>[\d.,]+)(?:[A-Za-z]{2,3}\.?)?"
)
_PLAIN_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_COMMA_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d*)?")
_DOT_THOUSANDS_COMMA_DECIMAL = re.compile(r"\d{1,3}(?:\.\d{3})+,\d+")
_DOT_THOUSANDS = re.compile(r"\d{1,3}(?:\.\d{3}){2,}")
_COMMA_DECIMAL = re.compile(r"\d+,\d{1,2}")


def _parse_number(number: str) -> Decimal | None:
    """Return the value of digits with thousands separators and a decimal point or comma."""
    if _PLAIN_NUMBER.fullmatch(number):
        plain = number
    elif _COMMA_THOUSANDS.fullmatch(number):
        plain = number.replace(",", "")
    elif _DOT_THOUSANDS_COMMA_DECIMAL.fullmatch(number):
        plain = number.replace(".", "").replace(",", ".")
    elif _DOT_THOUSANDS.fullmatch(number):
        plain = number.replace(".", "")
    elif _COMMA_DECIMAL.fullmatch(number):
        plain = number.replace(",", ".")
    else:
        return None
    return Decimal(plain)


def _parse_amount_text(text: str) -> Decimal | None:
    without_symbols = "".join(
        character for character in text if unicodedata.category(character) != "Sc"
    )
    # Spaces, including no-break and thin spaces, and apostrophes (1'234.50) can separate
    # thousands. U+2212 is the typographic minus sign.
    compact = "".join(without_symbols.split()).replace("'", "").replace("\u2019", "")
    compact = compact.replace("\u2212", "-")
    match = _AMOUNT.fullmatch(compact)
    if match is None:
        return None
    if match["sign"] and match["inner_sign"]:
        return None
    number = _parse_number(match["number"])
    if number is None:
        return None
    if (match["sign"] or match["inner_sign"]) == "-":
        number = -number
    return number


def _format_decimal(number: Decimal) -> str:
    if number == 0:
        return "0"
    # normalize() drops trailing zeros but may write 1000 as 1E+3, so format "f" removes the
    # exponent.
    return format(number.normalize(), "f")


def normalise_amount(value: Any) -> str:
    """Convert a money amount to canonical decimal text, or fall back to `normalise_text`.

    The canonical form is the exact decimal value in fixed-point notation without trailing
    zeros: "RM 1,234.50", "$1,234.50", "1234.5" and 1234.5 all become "1234.5", and "12.00"
    becomes "12". Currency symbols (Unicode category Sc, such as $, €, £) and currency codes
    of letters next to the number (RM, USD, EUR, Rs.) are removed, and so are thousands
    separators (comma, space, apostrophe). A leading "+" or "-" keeps its sign.

    A comma followed by exactly three digits groups thousands ("1,234" is 1234). A comma
    followed by one or two digits is a decimal comma ("12,50" and "1.234,50" are 12.5 and
    1234.5). One dot is a decimal point ("1.234" is 1.234). Other text, such as "12k" or
    "about 12", returns `normalise_text(value)`.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return normalise_text(value)
    if isinstance(value, int | Decimal):
        number: Decimal | None = Decimal(value)
    elif isinstance(value, float):
        # repr gives the shortest text that round-trips, so 0.1 stays 0.1 instead of the exact
        # binary value 0.1000000000000000055...
        number = Decimal(repr(value))
    else:
        number = _parse_amount_text(str(value))
    if number is None or not number.is_finite():
        return normalise_text(value)
    return _format_decimal(number)


_NORMALISERS_BY_KIND: dict[str, Normaliser] = {
    "text": normalise_text,
    "date": normalise_date,
    "amount": normalise_amount,
}


def resolve_normaliser(field: str, normalisers: FieldNormalisers | None) -> Normaliser:
    """Return the normaliser for `field`: its entry in `normalisers`, else `normalise_text`.

    Raises ValueError when the entry is a string that names no built-in normaliser.
    """
    if normalisers is None or field not in normalisers:
        return normalise_text
    entry = normalisers[field]
    if callable(entry):
        return entry
    if entry in _NORMALISERS_BY_KIND:
        return _NORMALISERS_BY_KIND[entry]
    raise ValueError(
        f"invalid normaliser {entry!r} for field {field!r}: give a function or one of "
        f"{sorted(_NORMALISERS_BY_KIND)}"
    )


# ---------------------------------------------------------------------------------------------
# Field scores and exact match over documents


@dataclass(frozen=True)
class FieldScore:
    """Precision, recall and F1 of one field over all documents.

    `support` is the number of gold values, `predicted` the number of predicted values and
    `true_positives` the number of predicted values that match a gold value.
    """

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int
    true_positives: int


@dataclass(frozen=True)
class FieldScores:
    """Micro-averaged precision, recall and F1 over all fields and documents, plus each field.

    `per_field` is keyed by field name in sorted order. It includes fields that appear only
    in predictions, whose support is 0.
    """

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int
    true_positives: int
    documents: int
    per_field: dict[str, FieldScore]


@dataclass(frozen=True)
class _Counts:
    true_positives: int
    predicted: int
    gold: int

    @property
    def exact(self) -> bool:
        return self.true_positives == self.predicted == self.gold


def _precision_recall_f1(
    true_positives: int, predicted: int, gold: int
) -> tuple[float, float, float]:
    precision = true_positives / predicted if predicted else 0.0
    recall = true_positives / gold if gold else 0.0
    # F1 = 2TP / (predicted + gold), which equals 2PR / (P + R) and is 0 when both counts are 0.
    f1 = 2 * true_positives / (predicted + gold) if predicted + gold else 0.0
    return precision, recall, f1


def _normalised_values(value: Any, normaliser: Normaliser, field: str) -> list[str]:
    """Return the non-empty normalised values of a field. A list or tuple value gives several."""
    items = value if isinstance(value, list | tuple) else [value]
    values = []
    for item in items:
        if isinstance(item, Mapping | list | tuple | set | frozenset):
            raise TypeError(
                f"field {field!r} has a nested {type(item).__name__} value {item!r}; "
                "flatten nested objects into separate fields before scoring"
            )
        normalised = normaliser(item)
        if normalised:
            values.append(normalised)
    return values


def _count_field(
    gold_value: Any,
    predicted_value: Any,
    normaliser: Normaliser,
    field: str,
    alternatives: bool,
) -> _Counts:
    gold_values = _normalised_values(gold_value, normaliser, field)
    predicted_values = _normalised_values(predicted_value, normaliser, field)
    if alternatives:
        # The gold list contains acceptable answers, so the field has at most one gold value.
        accepted = set(gold_values)
        hit = any(value in accepted for value in predicted_values)
        return _Counts(int(hit), len(predicted_values), int(bool(accepted)))
    # Multiset comparison: each gold value can be matched by one predicted value.
    overlap = Counter(gold_values) & Counter(predicted_values)
    return _Counts(sum(overlap.values()), len(predicted_values), len(gold_values))


def _count_document(
    gold: Mapping[str, Any],
    predicted: Mapping[str, Any] | None,
    normalisers: FieldNormalisers | None,
    alternative_fields: Collection[str],
) -> dict[str, _Counts]:
    if not isinstance(gold, Mapping):
        raise TypeError(f"a gold document must be a mapping, got {type(gold).__name__}")
    if predicted is None:
        predicted = {}
    elif not isinstance(predicted, Mapping):
        raise TypeError(
            f"a predicted document must be a mapping or None, got {type(predicted).__name__}"
        )

    counts = {}
    for field in sorted(set(gold) | set(predicted)):
        counts[field] = _count_field(
            gold.get(field),
            predicted.get(field),
            resolve_normaliser(field, normalisers),
            field,
            field in alternative_fields,
        )
    return counts


def _check_documents(gold_docs: Sequence[object], predicted_docs: Sequence[object]) -> None:
    if len(gold_docs) != len(predicted_docs):
        raise ValueError(
            f"gold and predicted documents differ in number: {len(gold_docs)} and "
            f"{len(predicted_docs)}"
        )
    if not gold_docs:
        raise ValueError("no documents to score; give at least one gold and predicted document")


def field_scores(
    gold_docs: Sequence[Mapping[str, Any]],
    predicted_docs: Sequence[Mapping[str, Any] | None],
    normalisers: FieldNormalisers | None = None,
    alternative_fields: Collection[str] = (),
) -> FieldScores:
    """Score predicted field values against gold, micro-averaged and per field.

    Each non-empty normalised gold value is one gold item, each non-empty normalised
    predicted value one predicted item, and a true positive is a predicted value equal to a
    gold value of the same field in the same document. A predicted document of None (the
    extraction failed) has every field missing, so it adds only false negatives.

    A list or tuple value is multi-valued and compares as a multiset: gold ["a", "b"] against
    predicted ["b", "c"] is 1 true positive, 2 predicted and 2 gold. For a field named in
    `alternative_fields`, the gold list instead contains acceptable answers to one question: the
    field has one gold item when any answer is non-empty, and one true positive when a
    predicted value equals any of them. Nested mappings raise TypeError.

    Raises ValueError when the sequences differ in length or are empty.
    """
    _check_documents(gold_docs, predicted_docs)
    totals: dict[str, list[int]] = {}
    for gold, predicted in zip(gold_docs, predicted_docs):
        for field, counts in _count_document(
            gold, predicted, normalisers, alternative_fields
        ).items():
            field_totals = totals.setdefault(field, [0, 0, 0])
            field_totals[0] += counts.true_positives
            field_totals[1] += counts.predicted
            field_totals[2] += counts.gold

    per_field = {}
    for field in sorted(totals):
        true_positives, predicted, gold = totals[field]
        precision, recall, f1 = _precision_recall_f1(true_positives, predicted, gold)
        per_field[field] = FieldScore(precision, recall, f1, gold, predicted, true_positives)

    true_positives = sum(score.true_positives for score in per_field.values())
    predicted = sum(score.predicted for score in per_field.values())
    gold = sum(score.support for score in per_field.values())
    precision, recall, f1 = _precision_recall_f1(true_positives, predicted, gold)
    return FieldScores(
        precision=precision,
        recall=recall,
        f1=f1,
        support=gold,
        predicted=predicted,
        true_positives=true_positives,
        documents=len(gold_docs),
        per_field=per_field,
    )


def exact_match(
    gold: Mapping[str, Any],
    predicted: Mapping[str, Any] | None,
    normalisers: FieldNormalisers | None = None,
    alternative_fields: Collection[str] = (),
) -> bool:
    """Return whether every gold field is right and no extra non-empty field is predicted.

    Values are compared as in `field_scores`, so a multi-valued field must match as a
    multiset, and a field in `alternative_fields` needs exactly one predicted value that
    equals one of the gold answers. A None prediction has no fields, so it matches only a
    gold document whose fields are all empty.
    """
    counts = _count_document(gold, predicted, normalisers, alternative_fields)
    return all(field_counts.exact for field_counts in counts.values())


def exact_match_rate(
    gold_docs: Sequence[Mapping[str, Any]],
    predicted_docs: Sequence[Mapping[str, Any] | None],
    normalisers: FieldNormalisers | None = None,
    alternative_fields: Collection[str] = (),
) -> float:
    """Return the share of documents for which `exact_match` is true.

    Raises ValueError when the sequences differ in length or are empty.
    """
    _check_documents(gold_docs, predicted_docs)
    matches = sum(
        exact_match(gold, predicted, normalisers, alternative_fields)
        for gold, predicted in zip(gold_docs, predicted_docs)
    )
    return matches / len(gold_docs)


# ---------------------------------------------------------------------------------------------
# SQuAD exact match and F1 (definitions of the official SQuAD v1.1 and v2.0 evaluation scripts)

_PUNCTUATION_TABLE = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(?:a|an|the)\b")


def squad_normalise(text: str) -> str:
    """Normalise answer text as the official SQuAD v1.1 and v2.0 evaluation scripts do.

    The steps, in order: lower-case, delete every character of `string.punctuation` (so
    "don't" becomes "dont"), replace the whole words "a", "an" and "the" by a space, and
    collapse white space to single spaces without leading or trailing space.
    """
    lowered = text.lower()
    without_punctuation = lowered.translate(_PUNCTUATION_TABLE)
    without_articles = _ARTICLES.sub(" ", without_punctuation)
    return " ".join(without_articles.split())


def _answerable_gold(gold_answers: Sequence[str]) -> list[str]:
    """Return the gold answers that are non-empty after normalisation, as SQuAD 2.0 scores them."""
    if isinstance(gold_answers, str):
        raise TypeError(
            f"gold_answers must be a sequence of strings, got the string {gold_answers!r}; "
            "wrap a single answer in a list"
        )
    return [answer for answer in gold_answers if squad_normalise(answer)]


def _token_f1(prediction_tokens: list[str], gold_tokens: list[str]) -> float:
    if not prediction_tokens or not gold_tokens:
        # With one side empty, F1 is 1 only when both are empty.
        return float(prediction_tokens == gold_tokens)
    overlap = sum((Counter(prediction_tokens) & Counter(gold_tokens)).values())
    if overlap == 0:
        return 0.0
    precision = overlap / len(prediction_tokens)
    recall = overlap / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def squad_exact(prediction: str | None, gold_answers: Sequence[str]) -> float:
    """Return 1.0 when the normalised prediction equals any normalised gold answer, else 0.0.

    A question is unanswerable (SQuAD 2.0) when `gold_answers` is empty or every answer
    normalises to "". Then the score is 1.0 when the normalised prediction is empty and 0.0
    otherwise. A None prediction counts as the empty string.
    """
    answers = _answerable_gold(gold_answers) or [""]
    predicted = squad_normalise(prediction or "")
    return float(any(predicted == squad_normalise(answer) for answer in answers))


def squad_f1(prediction: str | None, gold_answers: Sequence[str]) -> float:
    """Return the maximum token F1 of the prediction over the gold answers.

    Tokens are the white-space-separated words of `squad_normalise`, and the overlap is the
    size of the multiset intersection. An empty prediction scores 0.0 on an answerable
    question. Unanswerable questions score as in `squad_exact`. A None prediction counts as
    the empty string.
    """
    answers = _answerable_gold(gold_answers) or [""]
    prediction_tokens = squad_normalise(prediction or "").split()
    return max(_token_f1(prediction_tokens, squad_normalise(answer).split()) for answer in answers)


def squad_scores(pairs: Iterable[tuple[str | None, Sequence[str]]]) -> dict[str, float | int]:
    """Average SQuAD exact match and F1 over (prediction, gold_answers) pairs.

    Returns the keys of the official SQuAD 2.0 script: "exact", "f1" and "total" over all
    pairs, and "HasAns_exact", "HasAns_f1", "HasAns_total" and the same for "NoAns" over
    answerable and unanswerable questions. Unlike the official script, which prints
    percentages, the scores are fractions in [0, 1]. As in that script, the keys of a subset
    with no questions are left out.

    Here a question is answerable when one of its gold answers is non-empty after
    `squad_normalise`, the rule that `squad_exact` and `squad_f1` score by. The official
    script splits on whether the answer list is non-empty, which differs only for answers
    such as "the" or "." that normalise to nothing.

    Raises ValueError when there are no pairs.
    """
    groups: dict[str, list[tuple[float, float]]] = {"HasAns": [], "NoAns": []}
    for prediction, gold_answers in pairs:
        group = "HasAns" if _answerable_gold(gold_answers) else "NoAns"
        scores = (squad_exact(prediction, gold_answers), squad_f1(prediction, gold_answers))
        groups[group].append(scores)

    everything = groups["HasAns"] + groups["NoAns"]
    if not everything:
        raise ValueError("no (prediction, gold_answers) pairs to score; give at least one")

    result: dict[str, float | int] = _mean_squad(everything, prefix="")
    for name, group_scores in groups.items():
        if group_scores:
            result.update(_mean_squad(group_scores, prefix=f"{name}_"))
    return result


def _mean_squad(scores: list[tuple[float, float]], prefix: str) -> dict[str, float | int]:
    return {
        f"{prefix}exact": sum(exact for exact, _ in scores) / len(scores),
        f"{prefix}f1": sum(f1 for _, f1 in scores) / len(scores),
        f"{prefix}total": len(scores),
    }


# ---------------------------------------------------------------------------------------------
# Entity spans


@dataclass(frozen=True)
class SpanScores:
    """Micro-averaged precision, recall and F1 over the entity spans of all documents."""

    precision: float
    recall: float
    f1: float
    support: int
    predicted: int
    true_positives: int


def _span_key(span: Sequence[object]) -> tuple[str, int, int] | tuple[str, str]:
    """Return the comparable form of a span, with the text of a (type, text) span normalised."""
    if isinstance(span, tuple | list):
        if len(span) == 3:
            entity_type, start, end = span
            if (
                isinstance(entity_type, str)
                and isinstance(start, int)
                and isinstance(end, int)
                and not isinstance(start, bool)
                and not isinstance(end, bool)
            ):
                return (entity_type, start, end)
        elif len(span) == 2:
            entity_type, text = span
            if isinstance(entity_type, str) and isinstance(text, str):
                return (entity_type, normalise_text(text))
    raise ValueError(
        f"invalid span {span!r}: give (type, start, end) with int offsets or (type, text)"
    )


def span_f1(
    gold_spans: Sequence[Iterable[Span]],
    predicted_spans: Sequence[Iterable[Span]],
) -> SpanScores:
    """Score predicted entity spans against gold, micro-averaged over documents.

    Each element of the two sequences contains the spans of one document. Within a document the
    spans form a set, so a duplicate counts once, and a true positive is a predicted span
    equal to a gold span. A (type, start, end) span must match type and both offsets. A
    (type, text) span matches on type and `normalise_text` of the text, so two mentions of
    the same text in one document are one span.

    Raises ValueError when the sequences differ in length or are empty, when a span has
    another shape, or when one document mixes offset spans and text spans across gold and
    prediction.
    """
    _check_documents(gold_spans, predicted_spans)

    true_positives = predicted = gold = 0
    for index, (gold_document, predicted_document) in enumerate(
        zip(gold_spans, predicted_spans)
    ):
        gold_set = {_span_key(span) for span in gold_document}
        predicted_set = {_span_key(span) for span in predicted_document}
        shapes = {len(span) for span in gold_set | predicted_set}
        if len(shapes) > 1:
            raise ValueError(
                f"document {index} mixes (type, start, end) and (type, text) spans, which "
                "never match each other; use one form for gold and prediction"
            )
        true_positives += len(gold_set & predicted_set)
        predicted += len(predicted_set)
        gold += len(gold_set)

    precision, recall, f1 = _precision_recall_f1(true_positives, predicted, gold)
    return SpanScores(precision, recall, f1, gold, predicted, true_positives)


def _split_tag(tag: str, position: int) -> tuple[str, str]:
    """Return (prefix, type) of a BIO tag: ("O", "") for outside, else ("B" or "I", type)."""
    if tag == "O":
        return "O", ""
    prefix, separator, entity_type = tag.partition("-")
    if prefix not in ("B", "I") or not separator or not entity_type:
        raise ValueError(
            f"invalid BIO tag {tag!r} at position {position}: expected 'O', 'B-<type>' or "
            "'I-<type>'"
        )
    return prefix, entity_type


def bio_to_spans(tags: Sequence[str], tokens: Sequence[str] | None = None) -> list[Span]:
    """Convert a BIO tag sequence to entity spans, in order of their start.

    A span starts at "B-x", or at "I-x" that does not continue a span of type x (after "O",
    after another type, or at the start), as conlleval reads IOB2 tags. The span ends
    before the next "O", "B-" tag or change of type.

    Without `tokens`, spans are (type, start, end) token indices with end exclusive, so
    ["B-PER", "I-PER", "O"] gives [("PER", 0, 2)]. With `tokens`, spans are (type, text)
    with the span's tokens joined by single spaces. Raises ValueError on a tag other than
    "O", "B-<type>" and "I-<type>", or when `tokens` differs in length from `tags`.
    """
    if tokens is not None and len(tokens) != len(tags):
        raise ValueError(f"tags and tokens differ in length: {len(tags)} and {len(tokens)}")

    offsets: list[tuple[str, int, int]] = []
    current_type = ""
    current_start = 0
    for position, tag in enumerate(tags):
        prefix, entity_type = _split_tag(tag, position)
        continues = prefix == "I" and entity_type == current_type
        if current_type and not continues:
            offsets.append((current_type, current_start, position))
            current_type = ""
        if prefix != "O" and not continues:
            current_type = entity_type
            current_start = position
    if current_type:
        offsets.append((current_type, current_start, len(tags)))

    if tokens is None:
        return list(offsets)
    return [(entity_type, " ".join(tokens[start:end])) for entity_type, start, end in offsets]
