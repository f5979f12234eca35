"""The folder conftests' hook: every test collected under a folder carries that folder's marker."""

from __future__ import annotations

from pathlib import Path

import pytest


def mark_folder(items: list[pytest.Item], folder: Path, marker: pytest.MarkDecorator) -> None:
    """Add ``marker`` to the ``items`` under ``folder`` (a conftest's hook sees every collected item)."""
    for item in items:
        if folder in Path(item.fspath).parents:
            item.add_marker(marker)
