"""Write the BANKING77 sample that ships with shoal (src/shoal/assets/banking77/).

Usage: python bench/make_banking77_sample.py PATH/TO/banking_data

From the upstream train.csv: a train pool of 40 messages per intent. From test.csv: a test
sample of 4 per intent (308 items) and, disjoint from it, a dev sample of 4 per intent. The
dev sample comes from test.csv because many train.csv messages are close rephrasings of each
other, so dev items drawn from there resemble the training examples more than test items do,
and thresholds fitted on them were too optimistic. Seed 0 throughout, so the files can be
rebuilt byte for byte.
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from shoal.evaluate.datasets import LabelledDataset, load_dataset, stratified_split

TRAIN_POOL_PER_INTENT = 40
DEV_PER_INTENT = 4
TEST_PER_INTENT = 4
SEED = 0


def write(dataset: LabelledDataset, path: Path) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["text", "label"])
        writer.writerows(zip(dataset.texts, dataset.labels, strict=True))
    print(f"{path}: {len(dataset)} items, {len(dataset.labels_set)} labels")


def main(source: Path) -> None:
    target = Path(__file__).resolve().parents[1] / "src" / "shoal" / "assets" / "banking77"
    train = load_dataset(source / "train.csv", "text", "category")
    test = load_dataset(source / "test.csv", "text", "category")
    pool, _ = stratified_split(train, TRAIN_POOL_PER_INTENT, SEED)
    test_sample, rest = stratified_split(test, TEST_PER_INTENT, SEED)
    dev, _ = stratified_split(rest, DEV_PER_INTENT, SEED)
    write(pool, target / "train.csv")
    write(dev, target / "dev.csv")
    write(test_sample, target / "test.csv")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
