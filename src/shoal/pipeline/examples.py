"""The example pipelines shipped with shoal, found by name.

    spec = load_pipeline(example_path("clinc150_router"))

The YAML files are package data under `shoal/assets/pipelines`. They ship no dataset
rows: each file's comments name the dataset its steps train and score on.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from shoal.errors import UserInputError

# Example name -> file name under shoal/assets/pipelines.
_FILES = {
    "clinc150_router": "clinc150_router.yaml",
    "ticket_triage": "ticket_triage.yaml",
}


def _bundled(file_name: str) -> Path:
    return Path(str(resources.files("shoal") / "assets" / "pipelines" / file_name))


EXAMPLES: dict[str, Path] = {name: _bundled(file_name) for name, file_name in _FILES.items()}


def example_path(name: str) -> Path:
    """Return the path of the example pipeline `name`, such as "ticket_triage"."""
    path = EXAMPLES.get(name)
    if path is None:
        raise UserInputError(
            f"unknown example pipeline {name!r}; the examples are: {', '.join(EXAMPLES)}"
        )
    return path
