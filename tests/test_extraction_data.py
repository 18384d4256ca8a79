from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from conftest import shared_data_dir

from shoal.errors import DatasetError, UserInputError
from shoal.evaluate.extraction_data import (
    BUNDLED_SNIPS_INTENTS,
    FIELD_TYPES,
    ExtractionDataset,
    bio_to_slots,
    load_bundled_snips,
    load_snips,
    load_squad2,
    load_sroie,
    snips_intents,
)

# The real datasets, checked out next to the repository.
DATA = shared_data_dir()
SROIE = DATA / "sroie"
SNIPS = DATA / "snips"
SQUAD2 = DATA / "squad2_sample500"

SNIPS_INTENTS = [
    "AddToPlaylist",
    "BookRestaurant",
    "GetWeather",
    "PlayMusic",
    "RateBook",
    "SearchCreativeWork",
    "SearchScreeningEvent",
]
# Items per bundled file, as written by bench/make_snips_sample.py.
BUNDLED_COUNTS = {
    ("BookRestaurant", "train"): 40,
    ("BookRestaurant", "dev"): 100,
    ("BookRestaurant", "test"): 92,
    ("GetWeather", "train"): 40,
    ("GetWeather", "dev"): 100,
    ("GetWeather", "test"): 100,
}


@pytest.fixture(scope="module")
def sroie() -> ExtractionDataset:
    return load_sroie(SROIE)


@pytest.fixture(scope="module")
def squad2() -> ExtractionDataset:
    return load_squad2(SQUAD2)


def _example(dataset: ExtractionDataset, example_id: str) -> Any:
    return next(example for example in dataset.examples if example.id == example_id)


def _write_snips(root: Path, splits: dict[str, list[tuple[str, str, str]]]) -> Path:
    """Write (text, tags, intent) rows as SNIPS split folders under root/data/snips."""
    for split, rows in splits.items():
        folder = root / "data" / "snips" / split
        folder.mkdir(parents=True)
        (folder / "seq.in").write_text("".join(f"{t}\n" for t, _, _ in rows), encoding="utf-8")
        (folder / "seq.out").write_text("".join(f"{g}\n" for _, g, _ in rows), encoding="utf-8")
        (folder / "label").write_text("".join(f"{i}\n" for _, _, i in rows), encoding="utf-8")
    return root


def _write_receipt(root: Path, receipt_id: str, box_text: str, key: dict[str, str]) -> Path:
    for name in ("box", "key"):
        (root / "data" / name).mkdir(parents=True, exist_ok=True)
    (root / "data" / "box" / f"{receipt_id}.csv").write_bytes(box_text.encode("utf-8"))
    (root / "data" / "key" / f"{receipt_id}.json").write_text(json.dumps(key), encoding="utf-8")
    return root


# --- SROIE ---


def test_sroie_loads_626_receipts(sroie: ExtractionDataset) -> None:
    ids = [example.id for example in sroie.examples]

    assert len(sroie) == 626
    assert ids == sorted(ids)
    assert ids[0] == "000"
    assert sroie.fields == ["company", "date", "address", "total"]
    assert sroie.field_types == {
        "company": "text",
        "date": "date",
        "address": "text",
        "total": "amount",
    }


def test_sroie_receipt_000(sroie: ExtractionDataset) -> None:
    receipt = _example(sroie, "000")
    lines = receipt.text.split("\n")

    assert receipt.gold == {
        "company": "BOOK TA .K (TAMAN DAYA) SDN BHD",
        "date": "25/12/2018",
        "address": "NO.53 55,57 & 59, JALAN SAGU 18, TAMAN DAYA, 81100 JOHOR BAHRU, JOHOR.",
        "total": "9.00",
    }
    assert "9.00" in lines
    assert lines[0] == "TAN WOON YANN"
    # An OCR text with commas is kept whole.
    assert "NO.53 55,57 & 59, JALAN SAGU 18," in lines


def test_sroie_same_row_left_to_right(sroie: ExtractionDataset) -> None:
    # In 001.csv the amount 60.31 sits 2 pixels higher than its label, so a sort by the
    # top edge alone would put it first.
    lines = _example(sroie, "001").text.split("\n")
    label = lines.index("TOTAL AMT................. RM")

    assert lines[label + 1] == "60.31"


def test_sroie_missing_and_empty_fields_are_none(sroie: ExtractionDataset) -> None:
    assert _example(sroie, "033").gold["total"] is None  # "" in the key file
    assert _example(sroie, "104").gold["address"] is None  # absent from the key file
    assert _example(sroie, "104").gold["total"] == "102.40"


def test_sroie_totals_appear_in_text(sroie: ExtractionDataset) -> None:
    missing = [
        example.id
        for example in sroie.examples
        if example.gold["total"] is not None and example.gold["total"] not in example.text
    ]

    # 210 prints its total 7838.80 as "7,838.80".
    assert missing == ["210"]


def test_sroie_limit_keeps_first_ids() -> None:
    dataset = load_sroie(SROIE, limit=3)

    assert [example.id for example in dataset.examples] == ["000", "001", "002"]


def test_sroie_accepts_data_folder() -> None:
    dataset = load_sroie(SROIE / "data", limit=1)

    assert dataset.examples[0].id == "000"


def test_sroie_box_parsing_and_order(tmp_path: Path) -> None:
    box_text = (
        '300,52,360,52,360,70,300,70,12.50\r\n'  # right of TOTAL, 2 pixels higher
        '10,10,200,10,200,30,10,30,SHOP, "THE" BEST\r\n'
        "\r\n"
        "10,54,100,54,100,72,10,72,TOTAL\r\n"
        "10,90,100,90,100,110,10,110,   \r\n"  # empty text
    )
    root = _write_receipt(tmp_path, "x1", box_text, {"company": "SHOP", "total": "12.50"})

    receipt = load_sroie(root).examples[0]

    assert receipt.text == 'SHOP, "THE" BEST\nTOTAL\n12.50'
    assert receipt.gold == {"company": "SHOP", "date": None, "address": None, "total": "12.50"}


def test_sroie_tall_box_keeps_own_row(tmp_path: Path) -> None:
    # The heading's middle (25) is above the next line's box (40 to 60), so they are two rows.
    box_text = "200,0,400,0,400,50,200,50,HEADING\n10,40,100,40,100,60,10,60,NEXT\n"
    root = _write_receipt(tmp_path, "x2", box_text, {})

    assert load_sroie(root).examples[0].text == "HEADING\nNEXT"


def test_sroie_malformed_line_raises(tmp_path: Path) -> None:
    root = _write_receipt(tmp_path, "x3", "10,10,20,20,TEXT\n", {})

    with pytest.raises(DatasetError, match=r"x3\.csv line 1"):
        load_sroie(root)


def test_sroie_missing_box_file_raises(tmp_path: Path) -> None:
    root = _write_receipt(tmp_path, "x4", "", {})
    (root / "data" / "box" / "x4.csv").unlink()

    with pytest.raises(DatasetError, match="x4.csv not found"):
        load_sroie(root)


# --- SNIPS ---


def test_snips_intents_lists_seven() -> None:
    assert snips_intents(SNIPS) == SNIPS_INTENTS


def test_snips_bio_to_slots_real_line() -> None:
    # Line 2 of test/seq.in and test/seq.out, tags checked by hand:
    # i want to bring four/B-party_size_number people to a place that s close/B-spatial_relation
    # to downtown/B-poi that serves churrascaria/B-restaurant_type cuisine
    dataset = load_snips(SNIPS, "BookRestaurant", "test")
    example = dataset.examples[0]

    assert example.id == "test-00001"
    assert example.text == (
        "i want to bring four people to a place that s close to downtown that serves "
        "churrascaria cuisine"
    )
    assert example.gold == {
        "party_size_number": "four",
        "spatial_relation": "close",
        "poi": "downtown",
        "restaurant_type": "churrascaria",
    }


def test_snips_multiword_slots_real_line() -> None:
    # Line 4 of test/seq.in: "will it snow in mt on june 13  2038" (two spaces before 2038).
    example = load_snips(SNIPS, "GetWeather", "test", limit=1).examples[0]

    assert example.id == "test-00003"
    assert example.text == "will it snow in mt on june 13 2038"
    assert example.gold == {
        "condition_description": "snow",
        "state": "mt",
        "timeRange": "june 13 2038",
    }


def test_snips_repeated_slot_is_list() -> None:
    dataset = load_snips(SNIPS, "BookRestaurant", "train")
    example = _example(dataset, "train-00236")
    restaurant_type = dataset.schema["properties"]["restaurant_type"]

    assert example.text == "book a restaurant for 2 at a cafe that i can get a croissant at"
    assert example.gold == {
        "restaurant_type": ["restaurant", "cafe"],
        "party_size_number": "2",
        "served_dish": "croissant",
    }
    assert {"type": "array", "items": {"type": "string"}} in restaurant_type["anyOf"]


def test_snips_counts_per_split() -> None:
    assert len(load_snips(SNIPS, "BookRestaurant", "test")) == 92
    assert len(load_snips(SNIPS, "GetWeather", "test")) == 104
    assert len(load_snips(SNIPS, "GetWeather", "valid")) == 100
    assert len(load_snips(SNIPS, "GetWeather", "train")) == 1896
    assert len(load_snips(SNIPS, "GetWeather", "test", limit=5)) == 5


def test_snips_schema_has_train_slots() -> None:
    dataset = load_snips(SNIPS, "GetWeather", "test")

    assert dataset.fields == [
        "city",
        "condition_description",
        "condition_temperature",
        "country",
        "current_location",
        "geographic_poi",
        "spatial_relation",
        "state",
        "timeRange",
    ]
    assert set(dataset.field_types.values()) == {"text"}
    assert dataset.name == "SNIPS GetWeather (test)"


def test_snips_gold_slots_are_in_schema() -> None:
    for intent in SNIPS_INTENTS:
        dataset = load_snips(SNIPS, intent, "test")
        slots = {slot for example in dataset.examples for slot in example.gold}
        assert slots <= set(dataset.fields), intent


def test_bio_to_slots_cases() -> None:
    tokens = ["a", "b", "c", "d", "e", "f"]

    assert bio_to_slots(tokens, ["B-x", "I-x", "O", "B-y", "B-x", "O"]) == {
        "x": ["a b", "e"],
        "y": "d",
    }
    # An I- tag after O, or after another slot, starts a new span.
    assert bio_to_slots(tokens, ["O", "I-x", "I-x", "I-y", "O", "O"]) == {"x": "b c", "y": "d"}
    assert bio_to_slots(tokens, ["O"] * 6) == {}
    assert bio_to_slots(["a", "b", "c"], ["B-x", "B-x", "B-x"]) == {"x": ["a", "b", "c"]}


def test_bio_to_slots_length_mismatch() -> None:
    with pytest.raises(ValueError, match="one tag per token"):
        bio_to_slots(["a", "b"], ["O"])


def test_snips_misaligned_files_raise(tmp_path: Path) -> None:
    root = _write_snips(tmp_path, {"train": [("a b", "O", "X")]})

    with pytest.raises(DatasetError, match="1 tags for 2 tokens"):
        load_snips(root, "X", "train")


def test_snips_unequal_line_counts_raise(tmp_path: Path) -> None:
    root = _write_snips(tmp_path, {"train": [("a", "O", "X")]})
    (root / "data" / "snips" / "train" / "label").write_text("X\nX\n", encoding="utf-8")

    with pytest.raises(DatasetError, match="differ in length"):
        load_snips(root, "X", "train")


# --- SQuAD 2.0 ---


def test_squad2_counts(squad2: ExtractionDataset) -> None:
    unanswerable = [example for example in squad2.examples if example.gold["answer"] == []]

    assert len(squad2) == 500
    assert len(unanswerable) == 258
    assert squad2.field_types == {"answer": "text"}


def test_squad2_first_question(squad2: ExtractionDataset) -> None:
    example = squad2.examples[0]

    assert example.id == "572a06af3f37b3190047866a"
    assert example.text.startswith("Context: Pattern recognition receptors are proteins")
    assert example.text.endswith(
        "\nQuestion: What pathway that plays a role in immune response to viruses is present "
        "in all eukaryotes?"
    )
    # The file lists "RNA interference pathway" twice.
    assert example.gold == {"answer": ["RNA interference pathway", "RNA interference"]}


def test_squad2_unanswerable_gold_is_empty(squad2: ExtractionDataset) -> None:
    # The file gives this unanswerable question the answers [""].
    assert _example(squad2, "5ad0421177cf76001a686f15").gold == {"answer": []}


def test_squad2_schema_allows_null_answer(squad2: ExtractionDataset) -> None:
    answer = squad2.schema["properties"]["answer"]

    assert answer["type"] == ["string", "null"]
    assert "null" in answer["description"]


def test_squad2_limit_and_folder() -> None:
    dataset = load_squad2(SQUAD2 / "squad2", limit=2)

    assert len(dataset) == 2


# --- schemas ---


def _all_datasets() -> list[ExtractionDataset]:
    datasets = [load_sroie(SROIE, limit=2), load_squad2(SQUAD2, limit=2)]
    datasets += [load_snips(SNIPS, intent, "test", limit=2) for intent in SNIPS_INTENTS]
    datasets += [load_bundled_snips(intent) for intent in BUNDLED_SNIPS_INTENTS]
    return datasets


def _allowed_types(field_schema: dict[str, Any]) -> set[str]:
    if "anyOf" in field_schema:
        return {branch["type"] for branch in field_schema["anyOf"]}
    return set(field_schema["type"])


def test_schemas_are_closed_nullable_objects() -> None:
    for dataset in _all_datasets():
        schema = dataset.schema
        properties = schema["properties"]
        assert schema["type"] == "object", dataset.name
        assert schema["additionalProperties"] is False, dataset.name
        assert schema["required"] == list(properties), dataset.name
        assert isinstance(schema["title"], str), dataset.name
        assert properties, dataset.name
        assert set(dataset.field_types) == set(properties), dataset.name
        assert set(dataset.field_types.values()) <= set(FIELD_TYPES), dataset.name
        for name, field_schema in properties.items():
            assert {"string", "null"} <= _allowed_types(field_schema), (dataset.name, name)
            assert field_schema["description"].strip(), (dataset.name, name)


def test_schemas_pass_jsonschema_check() -> None:
    jsonschema = pytest.importorskip("jsonschema")

    for dataset in _all_datasets():
        jsonschema.Draft202012Validator.check_schema(dataset.schema)


def test_schemas_accept_filled_gold() -> None:
    jsonschema = pytest.importorskip("jsonschema")

    for dataset in _all_datasets():
        validator = jsonschema.Draft202012Validator(dataset.schema)
        for example in dataset.examples:
            output = dict.fromkeys(dataset.fields)
            if dataset.name.startswith("SQuAD"):
                output["answer"] = (example.gold["answer"] or [None])[0]
            else:
                output.update(example.gold)
            assert validator.is_valid(output), (dataset.name, example.id)


def test_schemas_reject_extra_and_wrong_types() -> None:
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(load_squad2(SQUAD2, limit=1).schema)

    assert validator.is_valid({"answer": None})
    assert not validator.is_valid({"answer": 3})
    assert not validator.is_valid({"answer": None, "note": "x"})
    assert not validator.is_valid({})


def test_schema_json_round_trips(sroie: ExtractionDataset) -> None:
    assert json.loads(sroie.schema_json()) == sroie.schema


# --- the bundled sample ---


def test_bundled_snips_counts() -> None:
    for (intent, split), count in BUNDLED_COUNTS.items():
        assert len(load_bundled_snips(intent, split)) == count, (intent, split)


def test_bundled_snips_matches_source() -> None:
    sources = {"train": "train", "dev": "valid", "test": "test"}
    for intent, split in BUNDLED_COUNTS:
        bundled = load_bundled_snips(intent, split)
        source = load_snips(SNIPS, intent, sources[split])
        by_id = {example.id: example for example in source.examples}
        assert bundled.schema == source.schema, (intent, split)
        for example in bundled.examples:
            assert example == by_id[example.id], (intent, split, example.id)


def test_bundled_snips_defaults() -> None:
    dataset = load_bundled_snips()

    assert dataset.name == "SNIPS BookRestaurant sample (test, CC0 1.0)"
    assert len(dataset) == 92


def test_bundled_snips_license_files() -> None:
    folder = resources.files("shoal") / "assets" / "snips"
    notice = (folder / "NOTICE.md").read_text(encoding="utf-8")

    assert (folder / "LICENSE").read_text(encoding="utf-8").startswith("CC0 1.0 Universal")
    assert "github.com/sonos/nlu-benchmark" in notice
    assert "github.com/MiuLab/SlotGated-SLU" in notice


# --- errors ---


def test_dataset_error_is_user_input_error() -> None:
    assert issubclass(DatasetError, UserInputError)


def test_missing_folders_raise(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    with pytest.raises(DatasetError, match="SROIE folder .*nowhere not found"):
        load_sroie(missing)
    with pytest.raises(DatasetError, match="SNIPS folder .*nowhere not found"):
        load_snips(missing, "GetWeather")
    with pytest.raises(DatasetError, match="SNIPS folder .*nowhere not found"):
        snips_intents(missing)
    with pytest.raises(DatasetError, match="SQuAD 2.0 folder .*nowhere not found"):
        load_squad2(missing)


def test_wrong_folder_names_expected_files(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="must contain box, key"):
        load_sroie(tmp_path)
    with pytest.raises(DatasetError, match="must contain queries.json, ground_truth.json"):
        load_squad2(tmp_path)


def test_unknown_intent_lists_known() -> None:
    with pytest.raises(DatasetError) as raised:
        load_snips(SNIPS, "OrderPizza")

    message = str(raised.value)
    assert "'OrderPizza'" in message
    assert ", ".join(SNIPS_INTENTS) in message


def test_unknown_split_raises() -> None:
    with pytest.raises(DatasetError, match="use one of train, valid, test"):
        load_snips(SNIPS, "GetWeather", "dev")


def test_empty_results_raise(tmp_path: Path) -> None:
    snips = _write_snips(
        tmp_path / "snips",
        {"train": [("a b", "B-x O", "X"), ("c", "O", "Y")], "test": [("d", "O", "Y")]},
    )
    (tmp_path / "sroie" / "data" / "box").mkdir(parents=True)
    (tmp_path / "sroie" / "data" / "key").mkdir(parents=True)

    with pytest.raises(DatasetError, match="no requests of intent 'X'"):
        load_snips(snips, "X", "test")
    with pytest.raises(DatasetError, match="no receipt key files"):
        load_sroie(tmp_path / "sroie")


def test_empty_squad_queries_raise(tmp_path: Path) -> None:
    (tmp_path / "queries.json").write_text('{"queries": []}', encoding="utf-8")
    (tmp_path / "ground_truth.json").write_text("{}", encoding="utf-8")

    with pytest.raises(DatasetError, match="has no questions"):
        load_squad2(tmp_path)


def test_squad_missing_answers_raise(tmp_path: Path) -> None:
    query = {"id": "q1", "context": "c", "question": "q"}
    (tmp_path / "queries.json").write_text(json.dumps({"queries": [query]}), encoding="utf-8")
    (tmp_path / "ground_truth.json").write_text("{}", encoding="utf-8")

    with pytest.raises(DatasetError, match="no answers list for the question id 'q1'"):
        load_squad2(tmp_path)


def test_invalid_json_raises(tmp_path: Path) -> None:
    (tmp_path / "queries.json").write_text("{not json", encoding="utf-8")
    (tmp_path / "ground_truth.json").write_text("{}", encoding="utf-8")

    with pytest.raises(DatasetError, match="queries.json is not valid JSON"):
        load_squad2(tmp_path)


def test_bundled_unknown_intent_and_split() -> None:
    with pytest.raises(DatasetError, match="use one of BookRestaurant, GetWeather"):
        load_bundled_snips("PlayMusic")
    with pytest.raises(DatasetError, match="use one of train, dev, test"):
        load_bundled_snips("GetWeather", "valid")


def test_limit_below_one_raises() -> None:
    with pytest.raises(UserInputError, match="limit must be at least 1, got 0"):
        load_sroie(SROIE, limit=0)
    with pytest.raises(UserInputError, match="limit must be at least 1, got -1"):
        load_snips(SNIPS, "GetWeather", limit=-1)
    with pytest.raises(UserInputError, match="limit must be at least 1, got 0"):
        load_squad2(SQUAD2, limit=0)
