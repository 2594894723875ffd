"""Fixtures shared by the system-wide engine's tests."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest


@pytest.fixture
def work():
    """A directory every uid can reach (pytest's tmp_path sits under a 0700 parent)."""
    path = Path(tempfile.mkdtemp(prefix="sct-"))
    os.chmod(path, 0o777)
    yield path
    shutil.rmtree(path, ignore_errors=True)
