"""The image's Dockerfile, read as Docker would (no engine runs here): two stages, the locked
dependencies only, a non-root user, the serve module as entrypoint, nothing secret inside."""

from __future__ import annotations

import importlib.util
import re
import tomllib

import pytest

from services.common.serve import parse_args
from services.common.settings import REPO_ROOT
from tests.deploy.dockerfile import exec_form, instructions, stages

DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = REPO_ROOT / ".dockerignore"


@pytest.fixture(scope="module")
def parsed():
    return stages(DOCKERFILE)


@pytest.fixture(scope="module")
def runtime(parsed):
    return parsed[1][-1]


def test_every_instruction_is_known():
    known = {
        "ARG",
        "FROM",
        "RUN",
        "ENV",
        "WORKDIR",
        "COPY",
        "USER",
        "EXPOSE",
        "HEALTHCHECK",
        "ENTRYPOINT",
        "CMD",
    }
    assert {kw for kw, _ in instructions(DOCKERFILE)} <= known


def test_multi_stage_builder_then_runtime(parsed):
    args, found = parsed
    assert [s.name for s in found] == ["builder", "runtime"]
    # Both on the same Python, the one the project requires (the venv's interpreter path must hold).
    assert found[0].base == found[1].base == "${PYTHON_IMAGE}"
    assert re.fullmatch(r"python:3\.11-slim-\w+", args["PYTHON_IMAGE"])
    assert tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["requires-python"].startswith(
        ">=3.11"
    )
    runtime = found[1]
    assert any("--from=builder /opt/venv /opt/venv" in c for c in runtime.all("COPY"))
    # The build tool stays in the builder.
    assert not any("uv" in r.split() or "uv==" in r for r in runtime.all("RUN"))


def test_the_builder_installs_exactly_the_locked_dependencies(parsed):
    builder = parsed[1][0]
    assert any(c.split()[:2] == ["pyproject.toml", "uv.lock"] for c in builder.all("COPY"))
    sync = [r for r in builder.all("RUN") if "uv sync" in r]
    assert len(sync) == 1
    assert {"--frozen", "--no-dev"} <= set(sync[0].split())
    assert re.fullmatch(r"\d+\.\d+\.\d+", parsed[0]["UV_VERSION"])  # a pinned uv


def test_runs_as_a_non_root_user(runtime):
    user = runtime.last("USER")
    assert user is not None
    name, _, group = user.partition(":")
    assert name not in {"root", "0"} and group not in {"root", "0"}
    assert name.isdigit()  # numeric: Kubernetes' runAsNonRoot can verify it
    assert any(f"--uid {name}" in r for r in runtime.all("RUN"))


def test_the_entrypoint_is_the_serve_module_and_the_default_part_is_valid(runtime):
    entrypoint = exec_form(runtime.last("ENTRYPOINT"))
    assert entrypoint == ["python", "-m", "services.common.serve"]
    assert importlib.util.find_spec(entrypoint[2]) is not None
    command = exec_form(runtime.last("CMD"))
    assert parse_args(command).part == "gateway"
    assert runtime.last("HEALTHCHECK").split()[-1].endswith('"]')  # exec form too


def test_the_source_copied_exists_and_nothing_secret_is(runtime):
    copied = []
    for copy in runtime.all("COPY"):
        words = [w for w in copy.split() if not w.startswith("--")]
        if "--from=" not in copy:
            copied += words[:-1]
    for path in copied:
        assert (REPO_ROOT / path).exists(), path
    assert {"services", "gateway", "tools", "alembic.ini"} <= set(copied)
    assert not any(p.startswith("var") or p.endswith((".pem", ".env")) for p in copied)
    ignored = set(DOCKERIGNORE.read_text().split())
    assert {".venv", "var", "**/*.pem", ".git", "tests"} <= ignored
