"""The running platform keeps the contract of its merged OpenAPI document.

Schemathesis (its CLI, configured by ``schemathesis.toml`` beside this file) reads
``/openapi.json`` from the gateway and runs its four phases against the real
processes: the documented examples, boundary values of every constraint
(coverage), random valid and invalid requests (fuzzing), and sequences that
follow the links it infers between operations (stateful: a created bureau is
read, updated, listed). Every check is on: no 5xx; status codes, content types,
headers and bodies as declared; invalid data refused and valid data accepted;
undeclared methods answered 405 with ``Allow``; a missing token refused.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import pytest

from services.common.openapi import operation_ids
from tests.conftest import RUN_DIR

CONFIG = Path(__file__).with_name("schemathesis.toml")


def run_schemathesis(gateway_url: str, token: str) -> subprocess.CompletedProcess[str]:
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "--config-file",
        str(CONFIG),
        "--no-color",
        "run",
        f"{gateway_url}/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
    ]
    # Run from the test run's directory so nothing is written into the repository.
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False, cwd=RUN_DIR)


async def test_the_merged_document_names_every_operation_once(through_gateway):
    doc = (await through_gateway.get("/openapi.json")).json()
    assert "x-unavailable-services" not in doc
    ids = operation_ids(doc)
    assert len(ids) == len(set(ids)) > 20
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", i) for i in ids), ids


@pytest.mark.parametrize("administrator", ["national", "provincial"])
async def test_the_platform_answers_as_its_document_says(
    platform, national_admin_token, provincial_admin_token, administrator
):
    token = national_admin_token if administrator == "national" else provincial_admin_token
    result = await asyncio.to_thread(run_schemathesis, platform.gateway_url, token)
    # The report ends with the failures, each with a curl line to reproduce it, and the seed.
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-5000:]
    tested = re.search(r"Tested: (\d+)", result.stdout)
    assert tested and int(tested.group(1)) >= 20, result.stdout[-3000:]
