"""Write the SNIPS sample that ships with shoal (src/shoal/assets/snips/).

Usage: python bench/make_snips_sample.py PATH/TO/snips

PATH/TO/snips must contain data/snips/{train,valid,test}/{seq.in,seq.out,label}, the SNIPS
split of Goo et al. (2018) as published in github.com/MiuLab/SlotGated-SLU, and
sonos_original/LICENSE, the CC0 1.0 text of github.com/sonos/nlu-benchmark.

For each intent in BUNDLED_SNIPS_INTENTS the script writes <intent>/train.jsonl (a pool for
few-shot examples), dev.jsonl, test.jsonl and schema.json, plus LICENSE and NOTICE.md. Items
are drawn at random with seed 0 and kept in file order, so the files can be rebuilt byte for
byte.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np

from shoal.evaluate.extraction_data import (
    BUNDLED_SNIPS_INTENTS,
    ExtractionExample,
    load_snips,
)

# Bundled split -> (source split, maximum number of items per intent). The source test
# split has fewer than 100 items of some intents (92 of BookRestaurant), which are all kept.
SPLITS = {"train": ("train", 40), "dev": ("valid", 100), "test": ("test", 100)}
SEED = 0
SONOS_COMMIT = "b86ac7f1577868c42158d0dec77db50956046696"
SLOT_GATED_COMMIT = "61f0307c729b1fad479ef1de94aa5ac5dee601b0"


def draw(examples: list[ExtractionExample], size: int) -> list[ExtractionExample]:
    """Take `size` random examples, kept in their original order, or all when there are fewer."""
    if size >= len(examples):
        return list(examples)
    rng = np.random.default_rng(SEED)
    chosen = sorted(int(i) for i in rng.choice(len(examples), size=size, replace=False))
    return [examples[i] for i in chosen]


def write_jsonl(examples: list[ExtractionExample], path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as handle:
        for example in examples:
            record = {"id": example.id, "text": example.text, "gold": example.gold}
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    print(f"{path}: {len(examples)} items")


def notice(counts: dict[tuple[str, str], int]) -> str:
    rows = "\n".join(
        f"| {intent} | {split} | {source} | {counts[intent, split]} |"
        for intent in BUNDLED_SNIPS_INTENTS
        for split, (source, _) in SPLITS.items()
    )
    return f"""# SNIPS sample

These files are a sample of the SNIPS natural language understanding benchmark, published
at github.com/sonos/nlu-benchmark (commit {SONOS_COMMIT})
under the Creative Commons CC0 1.0 Universal public domain dedication (LICENSE in this
folder).

The requests and their slot tags come from the SNIPS split of Goo et al. (2018), published
at github.com/MiuLab/SlotGated-SLU (commit {SLOT_GATED_COMMIT}),
folder data/snips: lower-cased, tokenised requests with one BIO slot tag per token. That
repository has no license file of its own.

Changes: `bench/make_snips_sample.py` drew the items at random with seed 0 and kept them in
file order. Each item's BIO tags became `gold`, a map from slot name to the words of the
slot. A slot that occurs twice in one request maps to a list. The id is the source split and
the 0-based line number in that split's files. `schema.json` is the JSON Schema of an
intent's output, with one property per slot that the source train split tags for the
intent.

| intent | file | source split | items |
|---|---|---|---|
{rows}
"""


def main(source: Path) -> None:
    target = Path(__file__).resolve().parents[1] / "src" / "shoal" / "assets" / "snips"
    counts: dict[tuple[str, str], int] = {}
    for intent in BUNDLED_SNIPS_INTENTS:
        folder = target / intent
        folder.mkdir(parents=True, exist_ok=True)
        for split, (source_split, size) in SPLITS.items():
            dataset = load_snips(source, intent, source_split)
            examples = draw(dataset.examples, size)
            write_jsonl(examples, folder / f"{split}.jsonl")
            counts[intent, split] = len(examples)
        # The schema depends only on the train split, so every source split gives the same one.
        schema_text = json.dumps(dataset.schema, indent=2, ensure_ascii=False) + "\n"
        (folder / "schema.json").write_text(schema_text, encoding="utf-8")

    shutil.copyfile(source / "sonos_original" / "LICENSE", target / "LICENSE")
    (target / "NOTICE.md").write_text(notice(counts), encoding="utf-8")
    print(f"{target}: LICENSE, NOTICE.md")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
