"""The deployment tests read files and start their own processes on their own databases:
the run-wide databases the other tests share are not needed here."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def platform_databases():
    """Overrides the run-wide fixture of tests/conftest.py: nothing to set up."""
    return None
