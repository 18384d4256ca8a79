"""Reading a pipeline from YAML, with errors that name the file, the line and the key.

The file is parsed once into a node tree, which keeps the line of every key, and the
nodes are then built into Python values. pydantic's validation errors are located by
walking the node tree along each error's key path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from shoal.errors import UserInputError
from shoal.pipeline.spec import PipelineSpec, SpecError, StepSpec, TierSpec

MAX_LISTED_ERRORS = 3
Loc = tuple[str | int, ...]


def load_pipeline(path: str | Path) -> PipelineSpec:
    """Read and validate a pipeline YAML file. Errors name the line and the key at fault."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"pipeline file {path} not found; check the path") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserInputError(f"cannot read pipeline file {path}: {exc}") from exc
    return parse_pipeline(text, source=str(path), base_dir=path.parent)


def parse_pipeline(
    text: str, source: str = "<pipeline>", base_dir: Path | None = None
) -> PipelineSpec:
    """Validate a pipeline written as YAML text; `source` names it in error messages.

    Relative `schema_file` paths start at `base_dir` (the working directory when None), and
    each file must exist.
    """
    root, data = _compose(text, source)
    try:
        spec = PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise UserInputError(format_errors(exc, source, root)) from None
    spec._base_dir = base_dir
    _check_schema_files(spec, source, root)
    return spec


def _check_schema_files(spec: PipelineSpec, source: str, root: yaml.Node) -> None:
    for name, step in spec.steps.items():
        if step.schema_file is None:
            continue
        path = spec.resolve_path(step.schema_file)
        if not path.is_file():
            loc: Loc = ("steps", name, "schema_file")
            raise UserInputError(
                f"{_where(source, find_line(root, loc), loc)}schema file {path} not found; "
                "give a JSON Schema file's path, relative to the pipeline file"
            )


def pipeline_from_dict(data: Any, source: str = "<pipeline>") -> PipelineSpec:
    """Validate a pipeline given as Python values, with the same one-line errors (no lines)."""
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as exc:
        raise UserInputError(format_errors(exc, source, None)) from None


def _compose(text: str, source: str) -> tuple[yaml.Node, Any]:
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise UserInputError(
                f"{source} is empty; write a pipeline with name and steps"
            )
        _reject_duplicate_keys(root, source)
        data = loader.construct_document(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f" line {mark.line + 1}" if mark is not None else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise UserInputError(f"{source}{line}: invalid YAML: {problem}") from exc
    except yaml.YAMLError as exc:
        raise UserInputError(f"{source}: invalid YAML: {exc}") from exc
    finally:
        loader.dispose()
    if not isinstance(data, dict):
        raise UserInputError(
            f"{source} line {root.start_mark.line + 1}: a pipeline is a mapping with the keys "
            f"name and steps, not a {type(data).__name__}"
        )
    return root, data


def _reject_duplicate_keys(node: yaml.Node, source: str) -> None:
    """Raise for a key written twice in one mapping, which YAML loaders silently overwrite."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode):
                if key.value in seen:
                    raise UserInputError(
                        f"{source} line {key.start_mark.line + 1}: key {key.value!r} is "
                        "written twice in the same mapping; keep one"
                    )
                seen.add(key.value)
            _reject_duplicate_keys(value, source)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _reject_duplicate_keys(item, source)


def format_errors(error: ValidationError, source: str, root: yaml.Node | None) -> str:
    """Turn validation errors into one line each: `source line N: key.path: problem`."""
    found = []
    for detail in error.errors():
        loc: Loc = tuple(detail["loc"])
        cause = (detail.get("ctx") or {}).get("error")
        if isinstance(cause, SpecError):
            loc = (*loc, *cause.key)
            message = str(cause)
        else:
            message = _message(detail, loc)
        line = find_line(root, loc) if root is not None else None
        found.append((line or 0, _where(source, line, loc) + message))
    found.sort(key=lambda pair: pair[0])
    messages = [message for _, message in found]
    text = "\n".join(messages[:MAX_LISTED_ERRORS])
    if len(messages) > MAX_LISTED_ERRORS:
        text += f" (and {len(messages) - MAX_LISTED_ERRORS} more errors)"
    return text


def _where(source: str, line: int | None, loc: Loc) -> str:
    at_line = f" line {line}" if line is not None else ""
    return f"{source}{at_line}: {key_path(loc) or '(top level)'}: "


def key_path(loc: Sequence[str | int]) -> str:
    """Write a key path as `steps.queue.cascade[0].threshold`."""
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        elif text:
            text += f".{part}"
        else:
            text = str(part)
    return text


def _message(detail: Any, loc: Loc) -> str:
    kind = detail["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(loc[:-1])
        listed = f"; allowed keys: {', '.join(allowed)}" if allowed else ""
        return f"unknown key {str(loc[-1])!r}{listed}"
    if kind == "missing":
        return "missing; add this key"
    message = str(detail["msg"]).removeprefix("Value error, ")
    value = detail.get("input")
    if kind != "value_error" and isinstance(value, str | int | float | bool):
        # The value explains errors such as a label read as True, because YAML reads
        # unquoted yes, no, on and off as booleans.
        message += f" (got {value!r})"
    if kind == "string_type":
        message += "; put quotes around a value that is meant as text"
    return message


def _allowed_keys(parent: Loc) -> list[str]:
    model: type[BaseModel] | None = None
    if parent == ():
        model = PipelineSpec
    elif len(parent) == 2 and parent[0] == "steps":
        model = StepSpec
    elif len(parent) == 4 and parent[0] == "steps" and parent[2] == "cascade":
        model = TierSpec
    if model is None:
        return []
    return [field.alias or name for name, field in model.model_fields.items()]


def find_line(root: yaml.Node, loc: Loc) -> int | None:
    """Return the 1-based line of the deepest key of `loc` that the file contains."""
    node: yaml.Node = root
    line = root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(
                ((key, value) for key, value in node.value if key.value == str(part)), None
            )
            if match is None:
                break
            line = match[0].start_mark.line + 1
            node = match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if not 0 <= part < len(node.value):
                break
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line
