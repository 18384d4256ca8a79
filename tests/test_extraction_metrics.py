from __future__ import annotations

import functools
from datetime import date, datetime
from decimal import Decimal

import pytest

from shoal.evaluate.extraction_metrics import (
    FieldScore,
    bio_to_spans,
    exact_match,
    exact_match_rate,
    field_scores,
    normalise_amount,
    normalise_date,
    normalise_text,
    resolve_normaliser,
    span_f1,
    squad_exact,
    squad_f1,
    squad_normalise,
    squad_scores,
)

RECEIPT_NORMALISERS = {"date": "date", "total": "amount"}


# ---------------------------------------------------------------------------------------------
# Normalisers


def test_normalise_text_folds_case_and_space() -> None:
    assert normalise_text("  Hello\n\t World  ") == "hello world"
    assert normalise_text("Straße") == "strasse"
    assert normalise_text(None) == ""
    assert normalise_text("   ") == ""
    assert normalise_text(12.5) == "12.5"


@pytest.mark.parametrize(
    "value", ["25/12/2018", "2018-12-25", "Dec 25, 2018", "25 December 2018", "25.12.2018"]
)
def test_normalise_date_same_day(value: str) -> None:
    assert normalise_date(value) == "2018-12-25"


def test_normalise_date_dayfirst_parameter() -> None:
    assert normalise_date("03/04/2018") == "2018-04-03"
    assert normalise_date("03/04/2018", dayfirst=False) == "2018-03-04"
    # A day above 12 cannot be a month, so the month-first reading is used.
    assert normalise_date("12/25/2018") == "2018-12-25"


def test_normalise_date_year_first_ignores_dayfirst() -> None:
    assert normalise_date("2018-03-04") == "2018-03-04"
    assert normalise_date("2018/03/04") == "2018-03-04"
    assert normalise_date("20180304") == "2018-03-04"


def test_normalise_date_other_inputs() -> None:
    assert normalise_date("25-12-18") == "2018-12-25"
    assert normalise_date("25/12/2018 10:30") == "2018-12-25"
    assert normalise_date(date(2018, 12, 25)) == "2018-12-25"
    assert normalise_date(datetime(2018, 12, 25, 23, 59)) == "2018-12-25"
    assert normalise_date(None) == ""
    assert normalise_date("  ") == ""


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Dec 2018", "dec 2018"),  # no day
        ("25 Dec", "25 dec"),  # no year
        ("Date: 25/12/2018", "date: 25/12/2018"),  # extra words
        ("31/02/2018", "31/02/2018"),  # impossible day
        ("unknown", "unknown"),
        ("1234.50", "1234.50"),  # a number, not a date
    ],
)
def test_normalise_date_falls_back_to_text(value: str, expected: str) -> None:
    assert normalise_date(value) == expected


@pytest.mark.parametrize(
    "value",
    ["RM 1,234.50", "1234.5", "$1,234.50", "RM1234.50", "1234.50 USD", "EUR 1 234,50", 1234.5,
     Decimal("1234.50"), "1.234,50", "1'234.50"],
)
def test_normalise_amount_same_value(value: object) -> None:
    assert normalise_amount(value) == "1234.5"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("12.00", "12"),
        ("1,234", "1234"),
        ("12,50", "12.5"),
        ("1.234", "1.234"),
        ("1.234.567", "1234567"),
        ("-RM 5.00", "-5"),
        ("RM -5.00", "-5"),
        ("€0.00", "0"),
        (".5", "0.5"),
        (1000, "1000"),
        ("1,000.00", "1000"),
        (0.1, "0.1"),
    ],
)
def test_normalise_amount_canonical_form(value: object, expected: str) -> None:
    assert normalise_amount(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [("12k", "12k"), ("about 12", "about 12"), ("Free", "free"), ("1,2345", "1,2345"),
     ("USD", "usd"), (True, "true"), (None, "")],
)
def test_normalise_amount_falls_back_to_text(value: object, expected: str) -> None:
    assert normalise_amount(value) == expected


def test_resolve_normaliser_name_or_function() -> None:
    month_first = functools.partial(normalise_date, dayfirst=False)
    normalisers = {"date": "date", "when": month_first}

    assert resolve_normaliser("date", normalisers) is normalise_date
    assert resolve_normaliser("when", normalisers) is month_first
    assert resolve_normaliser("company", normalisers) is normalise_text
    assert resolve_normaliser("company", None) is normalise_text


def test_resolve_normaliser_unknown_name() -> None:
    with pytest.raises(ValueError, match="'money'"):
        resolve_normaliser("total", {"total": "money"})


# ---------------------------------------------------------------------------------------------
# Field scores


def _receipt_documents() -> tuple[list[dict[str, object]], list[dict[str, object] | None]]:
    gold: list[dict[str, object]] = [
        {
            "company": "ACME Sdn Bhd",
            "date": "25/12/2018",
            "total": "RM 1,234.50",
            "items": ["pen", "ink", "pen"],
        },
        {"company": "Beta", "date": "01/02/2019", "total": "10.00", "items": []},
        {"company": "Delta", "date": "2019-03-04", "total": "5", "items": ["x"]},
    ]
    predicted: list[dict[str, object] | None] = [
        {
            "company": "acme  sdn bhd",
            "date": "2018-12-25",
            "total": "1234.5",
            "items": ["Pen", "paper"],
        },
        {
            "company": "Gamma",
            "date": "2019-02-01",
            "total": "",
            "items": ["cup"],
            "address": "Main St",
        },
        None,
    ]
    return gold, predicted


def test_field_scores_per_field_by_hand() -> None:
    gold, predicted = _receipt_documents()

    scores = field_scores(gold, predicted, RECEIPT_NORMALISERS)

    # company: doc 1 right, doc 2 wrong, doc 3 failed -> TP 1, predicted 2, gold 3.
    assert scores.per_field["company"] == FieldScore(
        precision=1 / 2, recall=1 / 3, f1=2 / 5, support=3, predicted=2, true_positives=1
    )
    # date: 01/02/2019 is read day first, so doc 2 is right too -> TP 2, predicted 2, gold 3.
    assert scores.per_field["date"] == FieldScore(
        precision=1.0, recall=2 / 3, f1=4 / 5, support=3, predicted=2, true_positives=2
    )
    # total: the empty prediction in doc 2 is not a prediction -> TP 1, predicted 1, gold 3.
    assert scores.per_field["total"] == FieldScore(
        precision=1.0, recall=1 / 3, f1=2 / 4, support=3, predicted=1, true_positives=1
    )
    # items: multiset {pen, pen, ink} vs {pen, paper} -> 1 TP, then 0/1 and 1/0 in docs 2, 3.
    assert scores.per_field["items"] == FieldScore(
        precision=1 / 3, recall=1 / 4, f1=2 / 7, support=4, predicted=3, true_positives=1
    )
    # address appears only in a prediction: a false positive with no support.
    assert scores.per_field["address"] == FieldScore(
        precision=0.0, recall=0.0, f1=0.0, support=0, predicted=1, true_positives=0
    )
    assert list(scores.per_field) == ["address", "company", "date", "items", "total"]


def test_field_scores_micro_by_hand() -> None:
    gold, predicted = _receipt_documents()

    scores = field_scores(gold, predicted, RECEIPT_NORMALISERS)

    # TP 1+2+1+1+0 = 5, predicted 2+2+1+3+1 = 9, gold 3+3+3+4+0 = 13.
    assert scores.true_positives == 5
    assert scores.predicted == 9
    assert scores.support == 13
    assert scores.documents == 3
    assert scores.precision == pytest.approx(5 / 9)
    assert scores.recall == pytest.approx(5 / 13)
    assert scores.f1 == pytest.approx(2 * 5 / (9 + 13))


def test_field_scores_text_only_by_default() -> None:
    gold = [{"date": "25/12/2018", "total": "RM 1.00"}]
    predicted = [{"date": "2018-12-25", "total": "rm  1.00"}]

    scores = field_scores(gold, predicted)

    assert scores.per_field["date"].true_positives == 0
    assert scores.per_field["total"].true_positives == 1


def test_field_scores_failed_document_only() -> None:
    scores = field_scores([{"a": "x", "b": "", "c": None}], [None])

    assert scores.support == 1
    assert scores.predicted == 0
    assert scores.precision == 0.0
    assert scores.recall == 0.0
    assert scores.f1 == 0.0


def test_field_scores_alternative_answers() -> None:
    gold = [
        {"answer": ["Denver Broncos", "The Broncos"]},
        {"answer": ["Paris"]},
        {"answer": []},
    ]
    predicted = [{"answer": "the  broncos"}, None, {"answer": "London"}]

    scores = field_scores(gold, predicted, alternative_fields={"answer"})
    as_multiset = field_scores(gold, predicted)

    # One gold item per answerable question: TP 1, predicted 2, gold 2.
    assert (scores.true_positives, scores.predicted, scores.support) == (1, 2, 2)
    assert scores.f1 == pytest.approx(0.5)
    # As a multiset, both answers of the first question are gold items: gold 2 + 1 = 3.
    assert (as_multiset.true_positives, as_multiset.predicted, as_multiset.support) == (1, 2, 3)


def test_field_scores_callable_normaliser() -> None:
    scores = field_scores([{"code": "AB-12"}], [{"code": "ab12"}], {"code": lambda v: v.lower()})

    assert scores.true_positives == 0


def test_field_scores_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="differ in number: 2 and 1"):
        field_scores([{}, {}], [{}])
    with pytest.raises(ValueError, match="no documents"):
        field_scores([], [])
    with pytest.raises(TypeError, match="nested dict"):
        field_scores([{"address": {"city": "Ipoh"}}], [{"address": "Ipoh"}])
    with pytest.raises(TypeError, match="mapping or None"):
        field_scores([{"a": "x"}], ["x"])  # type: ignore[list-item]


# ---------------------------------------------------------------------------------------------
# Exact match


def test_exact_match_after_normalisation() -> None:
    gold = {"company": "ACME", "date": "25/12/2018", "total": "RM 1,234.50"}
    predicted = {"company": " acme ", "date": "Dec 25, 2018", "total": "$1234.5"}

    assert exact_match(gold, predicted, RECEIPT_NORMALISERS)


def test_exact_match_extra_field() -> None:
    gold = {"company": "ACME"}

    assert not exact_match(gold, {"company": "ACME", "address": "Ipoh"})
    assert exact_match(gold, {"company": "ACME", "address": ""})
    assert exact_match(gold, {"company": "ACME", "address": None})


def test_exact_match_missing_or_wrong_field() -> None:
    gold = {"company": "ACME", "total": "5"}

    assert not exact_match(gold, {"company": "ACME"})
    assert not exact_match(gold, {"company": "ACME", "total": "6"}, RECEIPT_NORMALISERS)


def test_exact_match_multi_valued() -> None:
    assert exact_match({"items": ["a", "b"]}, {"items": ["B", "a"]})
    assert not exact_match({"items": ["a", "a"]}, {"items": ["a"]})
    assert not exact_match({"items": ["a"]}, {"items": ["a", "b"]})


def test_exact_match_alternatives() -> None:
    gold = {"answer": ["Denver Broncos", "Broncos"]}

    assert exact_match(gold, {"answer": "broncos"}, alternative_fields={"answer"})
    assert not exact_match(gold, {"answer": "broncos"})
    assert not exact_match(
        gold, {"answer": ["broncos", "denver broncos"]}, alternative_fields={"answer"}
    )


def test_exact_match_failed_document() -> None:
    assert not exact_match({"company": "ACME"}, None)
    assert exact_match({"company": "", "total": None}, None)


def test_exact_match_rate_by_hand() -> None:
    gold = [{"a": "x"}, {"a": "y"}, {"a": "z"}]
    predicted = [{"a": "X"}, None, {"a": "z"}]

    assert exact_match_rate(gold, predicted) == pytest.approx(2 / 3)


def test_exact_match_rate_rejects_mismatch() -> None:
    with pytest.raises(ValueError, match="differ in number"):
        exact_match_rate([{"a": "x"}], [])


# ---------------------------------------------------------------------------------------------
# SQuAD


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The Cat", "cat"),
        ("an apple and a pear", "apple and pear"),
        ("another theory", "another theory"),  # articles only as whole words
        ("don't", "dont"),  # punctuation is deleted, not replaced by a space
        ("U.S.A.!", "usa"),
        ("(the)", ""),  # punctuation goes first, so "the" is then a whole word
        ("the-end", "theend"),
        ("  big\tred \n dog ", "big red dog"),
        ("", ""),
    ],
)
def test_squad_normalise(text: str, expected: str) -> None:
    assert squad_normalise(text) == expected


def test_squad_exact_after_normalisation() -> None:
    assert squad_exact("the Denver Broncos!", ["Denver Broncos"]) == 1.0
    assert squad_exact("Denver", ["Denver Broncos"]) == 0.0


def test_squad_scores_take_max_over_gold() -> None:
    gold = ["Broncos", "Denver Broncos", "the broncos team"]

    assert squad_exact("denver broncos", gold) == 1.0
    # Against "broncos team": overlap 1, P = 1/1, R = 1/2 -> F1 = 2/3. Against "Broncos": 1.0.
    assert squad_f1("Broncos", gold) == 1.0
    assert squad_f1("Broncos", ["the broncos team"]) == pytest.approx(2 / 3)


def test_squad_f1_partial_overlap_by_hand() -> None:
    # Prediction tokens: big red dog barked (4). Gold tokens: red dog (2). Overlap 2.
    # P = 2/4, R = 2/2, F1 = 2 * 0.5 * 1 / 1.5 = 2/3.
    assert squad_f1("The big red dog barked.", ["a red dog"]) == pytest.approx(2 / 3)
    assert squad_exact("The big red dog barked.", ["a red dog"]) == 0.0


def test_squad_f1_counts_repeated_tokens_once_each() -> None:
    # Prediction dog dog dog (3), gold dog cat (2): overlap min(3, 1) = 1.
    # P = 1/3, R = 1/2, F1 = 2 * (1/6) / (5/6) = 0.4.
    assert squad_f1("dog dog dog", ["dog cat"]) == pytest.approx(0.4)


def test_squad_f1_no_overlap() -> None:
    assert squad_f1("London", ["Paris"]) == 0.0


def test_squad_unanswerable_right() -> None:
    for gold in ([], [""], ["  "]):
        assert squad_exact("", gold) == 1.0
        assert squad_f1("", gold) == 1.0
    assert squad_exact(None, []) == 1.0
    assert squad_f1(None, []) == 1.0
    # "The." normalises to the empty string, so it is an empty prediction.
    assert squad_exact("The.", []) == 1.0


def test_squad_unanswerable_wrong() -> None:
    assert squad_exact("Paris", []) == 0.0
    assert squad_f1("Paris", []) == 0.0


def test_squad_empty_prediction_answerable() -> None:
    assert squad_exact("", ["Paris"]) == 0.0
    assert squad_f1("", ["Paris"]) == 0.0
    assert squad_f1(None, ["Paris"]) == 0.0


def test_squad_rejects_string_gold() -> None:
    with pytest.raises(TypeError, match="wrap a single answer in a list"):
        squad_exact("Paris", "Paris")


def test_squad_scores_split_by_hand() -> None:
    pairs = [
        ("Paris", ["Paris", "the city of Paris"]),  # EM 1, F1 1
        ("The big red dog barked.", ["a red dog"]),  # EM 0, F1 2/3
        ("", []),  # EM 1, F1 1
        ("London", []),  # EM 0, F1 0
    ]

    scores = squad_scores(pairs)

    assert scores["exact"] == pytest.approx(2 / 4)
    assert scores["f1"] == pytest.approx((1 + 2 / 3 + 1 + 0) / 4)
    assert scores["total"] == 4
    assert scores["HasAns_exact"] == pytest.approx(1 / 2)
    assert scores["HasAns_f1"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["HasAns_total"] == 2
    assert scores["NoAns_exact"] == pytest.approx(1 / 2)
    assert scores["NoAns_f1"] == pytest.approx(1 / 2)
    assert scores["NoAns_total"] == 2


def test_squad_scores_leave_out_empty_subset() -> None:
    scores = squad_scores([("Paris", ["Paris"])])

    assert scores == {
        "exact": 1.0,
        "f1": 1.0,
        "total": 1,
        "HasAns_exact": 1.0,
        "HasAns_f1": 1.0,
        "HasAns_total": 1,
    }


def test_squad_scores_rejects_no_pairs() -> None:
    with pytest.raises(ValueError, match="no \\(prediction, gold_answers\\) pairs"):
        squad_scores([])


# ---------------------------------------------------------------------------------------------
# Entity spans and BIO tags


def test_span_f1_offsets_by_hand() -> None:
    gold = [
        [("PER", 0, 2), ("LOC", 5, 6)],
        [("ORG", 1, 2)],
    ]
    predicted = [
        [("PER", 0, 2), ("LOC", 4, 6)],  # LOC starts one token early
        [("ORG", 1, 2), ("PER", 3, 4)],
    ]

    scores = span_f1(gold, predicted)

    # TP 2 (PER, ORG), predicted 4, gold 3: P = 1/2, R = 2/3, F1 = 4/7.
    assert (scores.true_positives, scores.predicted, scores.support) == (2, 4, 3)
    assert scores.precision == pytest.approx(1 / 2)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(4 / 7)


def test_span_f1_wrong_type_is_no_match() -> None:
    scores = span_f1([[("PER", 0, 2)]], [[("ORG", 0, 2)]])

    assert scores.true_positives == 0
    assert scores.f1 == 0.0


def test_span_f1_text_spans_normalised() -> None:
    gold = [[("city", "New  York"), ("city", "new york"), ("date", "Today")]]
    predicted = [[("city", "NEW YORK"), ("date", "tomorrow")]]

    scores = span_f1(gold, predicted)

    # The two gold mentions of New York are one span: TP 1, predicted 2, gold 2.
    assert (scores.true_positives, scores.predicted, scores.support) == (1, 2, 2)
    assert scores.f1 == pytest.approx(0.5)


def test_span_f1_no_spans_at_all() -> None:
    scores = span_f1([[], []], [[], []])

    assert (scores.precision, scores.recall, scores.f1) == (0.0, 0.0, 0.0)


def test_span_f1_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="mixes"):
        span_f1([[("PER", 0, 2)]], [[("PER", "Ann Lee")]])
    with pytest.raises(ValueError, match="invalid span"):
        span_f1([[("PER", 0)]], [[]])
    with pytest.raises(ValueError, match="invalid span"):
        span_f1([[("PER", "0", "2")]], [[]])
    with pytest.raises(ValueError, match="differ in number"):
        span_f1([[]], [])
    with pytest.raises(ValueError, match="no documents"):
        span_f1([], [])


def test_bio_to_spans_offsets() -> None:
    tags = ["B-PER", "I-PER", "O", "B-LOC", "B-LOC", "I-LOC"]

    assert bio_to_spans(tags) == [("PER", 0, 2), ("LOC", 3, 4), ("LOC", 4, 6)]


def test_bio_to_spans_orphan_inside_tag() -> None:
    assert bio_to_spans(["O", "I-PER", "I-PER", "O"]) == [("PER", 1, 3)]
    assert bio_to_spans(["I-LOC"]) == [("LOC", 0, 1)]


def test_bio_to_spans_type_change_splits() -> None:
    assert bio_to_spans(["B-PER", "I-LOC", "I-LOC"]) == [("PER", 0, 1), ("LOC", 1, 3)]


def test_bio_to_spans_edge_sequences() -> None:
    assert bio_to_spans([]) == []
    assert bio_to_spans(["O", "O"]) == []
    assert bio_to_spans(["O", "B-PER"]) == [("PER", 1, 2)]


def test_bio_to_spans_with_tokens() -> None:
    tokens = ["play", "yesterday", "by", "the", "beatles"]
    tags = ["O", "B-track", "O", "B-artist", "I-artist"]

    assert bio_to_spans(tags, tokens) == [("track", "yesterday"), ("artist", "the beatles")]


def test_bio_to_spans_rejects_bad_input() -> None:
    for tag in ("X-PER", "B-", "PER", "b-PER"):
        with pytest.raises(ValueError, match="invalid BIO tag"):
            bio_to_spans(["O", tag])
    with pytest.raises(ValueError, match="differ in length: 2 and 1"):
        bio_to_spans(["O", "O"], ["a"])


def test_span_f1_from_bio_by_hand() -> None:
    gold_tags = [["B-PER", "I-PER", "O", "B-LOC"], ["O", "B-ORG"]]
    predicted_tags = [["B-PER", "O", "O", "B-LOC"], ["I-ORG", "I-ORG"]]

    scores = span_f1(
        [bio_to_spans(tags) for tags in gold_tags],
        [bio_to_spans(tags) for tags in predicted_tags],
    )

    # Gold: PER 0-2, LOC 3-4, ORG 1-2. Predicted: PER 0-1, LOC 3-4, ORG 0-2. Only LOC matches.
    assert (scores.true_positives, scores.predicted, scores.support) == (1, 3, 3)
    assert scores.f1 == pytest.approx(1 / 3)
