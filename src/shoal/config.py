"""A config file for settings that would otherwise be environment variables, API keys included.

The file is TOML, at $SHOAL_CONFIG, else $XDG_CONFIG_HOME/shoal/config.toml, else
~/.config/shoal/config.toml. Its `[env]` table names environment variables and their values:

    [env]
    OPENAI_API_KEY = "sk-..."
    GROQ_BASE_URL = "http://127.0.0.1:9000/v1"

A variable already set in the environment wins over the file. The values are never logged:
only the names of the variables taken from the file are.
"""

from __future__ import annotations

import logging
import os
import re
import stat
import tomllib
from collections.abc import MutableMapping
from pathlib import Path

from shoal.errors import UserInputError

logger = logging.getLogger("shoal.config")

CONFIG_ENV = "SHOAL_CONFIG"
_VARIABLE_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def config_path(environ: MutableMapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    explicit = env.get(CONFIG_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = env.get("XDG_CONFIG_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".config"
    return base / "shoal" / "config.toml"


def apply_config_file(
    path: Path | None = None, environ: MutableMapping[str, str] | None = None
) -> list[str]:
    """Set the config file's variables that the environment lacks; return their names.

    A missing file is no error unless $SHOAL_CONFIG names it. Raises UserInputError for a file
    that is not valid TOML or whose `[env]` table holds anything but upper-case names with
    string values.
    """
    env = os.environ if environ is None else environ
    chosen = path or config_path(env)
    if not chosen.is_file():
        if path is not None or env.get(CONFIG_ENV):
            raise UserInputError(
                f"config file {chosen} not found; create it or unset {CONFIG_ENV}"
            )
        return []
    try:
        document = tomllib.loads(chosen.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UserInputError(f"cannot read config file {chosen}: {exc}") from exc

    table = document.get("env", {})
    if not isinstance(table, dict):
        raise UserInputError(f"invalid config file {chosen}: 'env' must be a table, [env]")
    unknown = sorted(set(document) - {"env"})
    if unknown:
        raise UserInputError(
            f"invalid config file {chosen}: unknown table or key {unknown[0]!r}; "
            "put variables under [env]"
        )
    applied = []
    for name, value in table.items():
        if not _VARIABLE_NAME.fullmatch(name) or not isinstance(value, str):
            raise UserInputError(
                f"invalid config file {chosen}: [env] entry {name!r} must be an upper-case "
                'variable name with a string value, e.g. OPENAI_API_KEY = "sk-..."'
            )
        if name not in env:
            env[name] = value
            applied.append(name)
    if applied:
        _warn_if_readable_by_others(chosen)
        logger.info("took %s from config file %s", ", ".join(applied), chosen)
    return applied


def _warn_if_readable_by_others(path: Path) -> None:
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRGRP | stat.S_IROTH):
        logger.warning(
            "config file %s can be read by other users; it may hold API keys, so run "
            "chmod 600 %s",
            path, path,
        )
