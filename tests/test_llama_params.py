"""The AMX guard: which CPUs load llama.cpp models without extra buffer types."""

from __future__ import annotations

from pathlib import Path

import pytest

from shoal.providers import llama_params
from shoal.providers.llama_params import EXTRA_BUFFERS_ENV, cpu_lists_amx, load_params


def _cpuinfo(tmp_path: Path, flags: str) -> Path:
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Test CPU\nflags\t\t: {flags}\n\n")
    return path


def test_amx_flag_detected(tmp_path: Path) -> None:
    assert cpu_lists_amx(_cpuinfo(tmp_path, "fpu avx2 avx512f amx_bf16 amx_tile amx_int8"))


def test_no_amx_flag(tmp_path: Path) -> None:
    assert not cpu_lists_amx(_cpuinfo(tmp_path, "fpu avx2 amx_bf16"))


def test_unreadable_cpuinfo_means_no_amx(tmp_path: Path) -> None:
    assert not cpu_lists_amx(tmp_path / "missing")


@pytest.mark.parametrize(("setting", "expected"), [("1", True), ("0", False)])
def test_environment_overrides_detection(
    monkeypatch: pytest.MonkeyPatch, setting: str, expected: bool
) -> None:
    monkeypatch.setenv(EXTRA_BUFFERS_ENV, setting)

    assert llama_params.use_extra_buffers() is expected


def test_patch_sets_parameter_and_restores() -> None:
    from llama_cpp import llama as llama_module

    bindings = llama_module.llama_cpp
    original = bindings.llama_model_default_params

    with load_params(extra_buffers=False):
        patched = bindings.llama_model_default_params()
        assert patched.use_extra_bufts is False
    assert bindings.llama_model_default_params is original
    assert original().use_extra_bufts is True


def test_no_patch_with_extra_buffers() -> None:
    from llama_cpp import llama as llama_module

    original = llama_module.llama_cpp.llama_model_default_params

    with load_params(extra_buffers=True):
        assert llama_module.llama_cpp.llama_model_default_params is original
