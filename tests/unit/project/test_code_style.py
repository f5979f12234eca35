"""The tree stays as ruff lints and formats it, so a style drift fails CI rather than piling up."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.parametrize("command", [["check", "--no-cache"], ["format", "--check", "--no-cache"]])
def test_ruff_finds_nothing_to_change(command):
    if not RUFF.exists():
        pytest.fail(f"ruff is missing from {RUFF.parent}: run ./dev setup, which installs the dev extra")
    result = subprocess.run([str(RUFF), *command, "."], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"ruff {' '.join(command)}:\n{result.stdout[-3000:]}{result.stderr[-1000:]}"
