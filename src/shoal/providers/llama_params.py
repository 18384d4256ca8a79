"""Model parameters llama-cpp-python does not expose, set while a model loads.

llama.cpp repacks weights into "extra buffer types" for faster CPU kernels, AMX among them on
Intel CPUs that list the amx_tile flag. Some virtual machines list the flag but do not enable
AMX tile state, and the first matrix product then dies with SIGILL ("Illegal instruction"),
which no Python code can catch. On such CPUs shoal loads models without the extra buffer types.
`Llama()` has no argument for this, so the default parameters it starts from are patched while
it loads.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Iterator
from pathlib import Path

from shoal.errors import WeightsError

logger = logging.getLogger("shoal.providers.local")

# "1" keeps llama.cpp's extra buffer types (and AMX) even on a CPU that lists AMX.
EXTRA_BUFFERS_ENV = "SHOAL_LLAMA_EXTRA_BUFFERS"
_PATCH_LOCK = threading.Lock()


def cpu_lists_amx(cpuinfo: Path = Path("/proc/cpuinfo")) -> bool:
    """Return True when the CPU flags name amx_tile, False when they do not or are unreadable."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    for line in text.splitlines():
        if line.startswith("flags"):
            return "amx_tile" in line.split(":", 1)[-1].split()
    return False


def use_extra_buffers() -> bool:
    """Return whether llama.cpp may use its extra buffer types on this machine."""
    setting = os.environ.get(EXTRA_BUFFERS_ENV)
    if setting is not None:
        return setting.strip() == "1"
    return not cpu_lists_amx()


@contextlib.contextmanager
def load_params(extra_buffers: bool) -> Iterator[None]:
    """Make `Llama()` calls inside the block load with `use_extra_bufts` set as given."""
    if extra_buffers:
        yield
        return
    from llama_cpp import llama as llama_module

    bindings = llama_module.llama_cpp
    with _PATCH_LOCK:
        original = bindings.llama_model_default_params

        def without_extra_buffers():  # type: ignore[no-untyped-def]
            params = original()
            # Setting an unknown name on a ctypes structure would pass silently, so check it.
            if "use_extra_bufts" not in dict(params._fields_):
                raise WeightsError(
                    "this llama-cpp-python has no use_extra_bufts parameter; set "
                    f"{EXTRA_BUFFERS_ENV}=1 to load models with its defaults"
                )
            params.use_extra_bufts = False
            return params

        bindings.llama_model_default_params = without_extra_buffers
        logger.info("loading without llama.cpp's extra buffer types, because the CPU lists AMX")
        try:
            yield
        finally:
            bindings.llama_model_default_params = original
