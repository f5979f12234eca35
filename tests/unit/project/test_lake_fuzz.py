"""Every reader of a lake file ends hostile input in a named error: 1,000 generated variants per file kind.

Each kind runs in its own process under a 2 GiB address-space cap (``tests/support/lake_fuzz.py``),
so a reader that allocates without bound fails with ``MemoryError`` there instead of swapping here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import lake_fuzz

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("kind", sorted(lake_fuzz.KINDS))
def test_hostile_files_of_this_kind_end_in_named_errors(kind):
    done = subprocess.run(
        [sys.executable, "-m", "tests.support.lake_fuzz", kind],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    stats = json.loads(done.stdout.strip().splitlines()[-1])
    assert stats["unnamed"] == []
    assert stats["examples"] >= lake_fuzz.EXAMPLES
    assert stats["slowest_s"] < lake_fuzz.DEADLINE_MS / 1000
