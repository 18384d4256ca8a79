"""The config file: variables taken only where the environment lacks them, strict checks."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import pytest

from shoal.config import apply_config_file, config_path
from shoal.errors import UserInputError

KEY = "sk-from-config-file-0123456789"


def write_config(tmp_path: Path, text: str, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def test_fills_missing_variables(tmp_path: Path) -> None:
    path = write_config(tmp_path, f'[env]\nOPENAI_API_KEY = "{KEY}"\nGROQ_API_KEY = "g"\n')
    environ = {"GROQ_API_KEY": "from-env"}

    applied = apply_config_file(path, environ)

    assert applied == ["OPENAI_API_KEY"]
    assert environ["OPENAI_API_KEY"] == KEY
    assert environ["GROQ_API_KEY"] == "from-env"


def test_value_never_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write_config(tmp_path, f'[env]\nOPENAI_API_KEY = "{KEY}"\n', mode=0o644)

    with caplog.at_level(logging.DEBUG, logger="shoal.config"):
        apply_config_file(path, {})

    messages = [record.getMessage() for record in caplog.records]
    assert any("OPENAI_API_KEY" in message for message in messages)
    assert any("chmod 600" in message for message in messages)
    assert all(KEY not in message for message in messages)


def test_missing_default_file_is_fine(tmp_path: Path) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path)}

    assert apply_config_file(environ=environ) == []
    assert config_path(environ) == tmp_path / "shoal" / "config.toml"


def test_missing_named_file_rejected(tmp_path: Path) -> None:
    environ = {"SHOAL_CONFIG": str(tmp_path / "absent.toml")}

    with pytest.raises(UserInputError, match="absent.toml not found"):
        apply_config_file(environ=environ)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[env\nX = 1", "cannot read config file"),
        ('[env]\nopenai_api_key = "x"\n', "upper-case"),
        ("[env]\nOPENAI_API_KEY = 3\n", "string value"),
        ('[keys]\nOPENAI_API_KEY = "x"\n', "unknown table or key 'keys'"),
        ('env = "x"\n', "must be a table"),
    ],
)
def test_invalid_file_rejected(tmp_path: Path, text: str, match: str) -> None:
    path = write_config(tmp_path, text)

    with pytest.raises(UserInputError, match=match):
        apply_config_file(path, {})


def test_cli_reports_bad_config_in_one_line(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[env]\nbad = 1\n")
    env = {"SHOAL_CONFIG": str(path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    completed = subprocess.run(
        [sys.executable, "-m", "shoal.cli", "models", "--format", "json"],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )

    assert completed.returncode == 2
    assert "Traceback" not in completed.stderr
    assert str(path) in completed.stderr
    assert completed.stderr.count("\n") == 1
