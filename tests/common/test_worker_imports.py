"""Workers load their jobs without any HTTP route module: a worker must not depend on the API layer."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.common.settings import REPO_ROOT

WORKER_MODULES = sorted(
    ".".join(path.relative_to(REPO_ROOT).with_suffix("").parts)
    for path in [*REPO_ROOT.glob("services/*/tasks.py"), *REPO_ROOT.glob("gateway/tasks.py")]
)

PROBE = """
import importlib, sys
importlib.import_module(sys.argv[1])
print("\\n".join(m for m in sys.modules if m.rsplit(".", 1)[-1] in ("routes", "app", "proxy")
                 and m.split(".")[0] in ("services", "gateway")))
"""


def test_every_service_has_a_worker_module():
    assert {m.split(".")[-2] for m in WORKER_MODULES} >= {"registry", "enforcement", "statistics"}


@pytest.mark.parametrize("module", WORKER_MODULES)
def test_worker_imports_no_route_module(module: str):
    result = subprocess.run(
        [sys.executable, "-c", PROBE, module], capture_output=True, text=True, cwd=REPO_ROOT, check=True
    )
    assert result.stdout.split() == []
